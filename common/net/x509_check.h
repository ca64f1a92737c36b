#pragma once
// Certificate facts and checks used both when a config is validated (files on disk) and when a peer's
// certificate is verified on a live connection. Names are matched against SubjectAltName only, never the
// CN (RFC 6125 6.4.4: clients must not fall back to CN when SANs exist, and we require SANs).
#include <string>
#include <string_view>
#include <vector>

#include <openssl/types.h>

#include "common/core/result.h"

namespace edgepair::net {

struct CertInfo {
    std::string subject_cn;
    std::vector<std::string> dns_sans;
    std::vector<std::string> ip_sans; // canonical text form (inet_ntop)
    bool has_eku = false;             // absent EKU means "any purpose" to OpenSSL; we require it explicitly
    bool server_auth = false;
    bool client_auth = false;
    long not_after_days = 0; // days until expiry (negative once expired)
};

CertInfo cert_info(X509* cert);
// First certificate in a PEM file.
Result<CertInfo> load_cert_info(const std::string& pem_path);
// Key readable (and not encrypted) and matching the first certificate of cert_path.
Result<void> check_key_pair(const std::string& cert_path, const std::string& key_path);
// A CA bundle that loads at least one certificate.
Result<void> check_ca_file(const std::string& path);

// DNS name match against one SAN pattern: case-insensitive, one trailing dot ignored, a wildcard only as
// the whole left-most label and never matching across dots or an IP literal.
bool dns_name_matches(std::string_view pattern, std::string_view name);
// `name` may be a DNS name or an IP literal; an IP only matches IP SANs.
bool san_matches(const CertInfo& info, std::string_view name);

enum class Eku { ServerAuth, ClientAuth };
// Empty string when fine, else the reason ("no subjectAltName", "SAN does not contain x", ...).
std::string check_usage(const CertInfo& info, Eku eku, std::string_view required_name = {});

} // namespace edgepair::net
