#pragma once
// When the certificates of a PEM file expire: every certificate in it, since a trusted-CA bundle holds many
// and each one's expiry breaks the links or the clients it verifies.
#include <cstdint>
#include <string>
#include <vector>

#include "common/core/result.h"

namespace edgepair::app {

struct CertExpiry {
    std::string subject;        // RFC 2253 distinguished name
    int64_t not_after_unix = 0; // wall clock, seconds
};

// At least one certificate, or the error says why not.
Result<std::vector<CertExpiry>> read_cert_expiry(const std::string& pem_path);

} // namespace edgepair::app
