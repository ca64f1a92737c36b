#include "common/link/peer_cert.h"

#include <openssl/x509.h>

#include "common/net/x509_check.h"

namespace edgepair::link {

std::string check_link_peer_cert(SSL* ssl, std::string_view required_san, std::string* label) {
    auto fail = [&](const char* lbl, std::string why) {
        if (label) *label = lbl;
        return why;
    };
    if (!ssl) return fail("no_client_cert", "no client certificate (not a TLS connection)");
    X509* cert = SSL_get0_peer_certificate(ssl);
    if (!cert) return fail("no_client_cert", "no client certificate");
    long vr = SSL_get_verify_result(ssl);
    if (vr != X509_V_OK)
        return fail("tls_handshake",
                    std::string("client certificate verify failed: ") + X509_verify_cert_error_string(vr));
    auto info = net::cert_info(cert);
    if (!info.has_eku || !info.client_auth)
        return fail("no_client_auth_eku", "certificate lacks the clientAuth extended key usage");
    if (info.dns_sans.empty() && info.ip_sans.empty())
        return fail("wrong_san", "certificate has no subjectAltName");
    if (!required_san.empty() && !net::san_matches(info, required_san))
        return fail("wrong_san",
                    "certificate subjectAltName does not contain \"" + std::string(required_san) + "\"");
    if (auto why = net::check_usage(info, net::Eku::ClientAuth, required_san); !why.empty())
        return fail("tls_handshake", why);
    if (label) label->clear();
    return {};
}

} // namespace edgepair::link
