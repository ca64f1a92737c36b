#pragma once
// edge-e's check of the certificate edge-c presented on the link, after OpenSSL has verified the chain
// (a certificate from an untrusted CA already failed the handshake). OpenSSL knows nothing of our policy:
// clientAuth must be present explicitly and the configured name must be in the SAN, never the CN.
#include <string>
#include <string_view>

#include <openssl/ssl.h>

namespace edgepair::link {

// Empty when the certificate is acceptable, else a reason for logs and for the peer ("no client
// certificate", "certificate lacks the clientAuth extended key usage", "certificate subjectAltName does not
// contain \"x\"", ...). `label`, when given, receives the metrics reason: no_client_cert,
// no_client_auth_eku, wrong_san or tls_handshake. An empty required_san skips the name check.
std::string check_link_peer_cert(SSL* ssl, std::string_view required_san, std::string* label = nullptr);

} // namespace edgepair::link
