#include "common/net/x509_check.h"

#include <arpa/inet.h>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

namespace edgepair::net {
namespace {

struct FileCloser {
    void operator()(FILE* f) const { std::fclose(f); }
};
using FilePtr = std::unique_ptr<FILE, FileCloser>;

std::string ssl_error_text() {
    unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (e == 0) return "unknown OpenSSL error";
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    return buf;
}

Result<FilePtr> open_file(const std::string& path) {
    FILE* f = std::fopen(path.c_str(), "r");
    if (!f) return make_error("cannot read \"" + path + "\": " + std::strerror(errno));
    return FilePtr(f);
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out)
        if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
    return out;
}

bool is_ip_literal(std::string_view s) {
    std::string z(s);
    unsigned char buf[16];
    return inet_pton(AF_INET, z.c_str(), buf) == 1 || inet_pton(AF_INET6, z.c_str(), buf) == 1;
}

std::string canonical_ip(std::string_view s) {
    std::string z(s);
    unsigned char buf[16];
    char out[INET6_ADDRSTRLEN];
    if (inet_pton(AF_INET, z.c_str(), buf) == 1) return inet_ntop(AF_INET, buf, out, sizeof out);
    if (inet_pton(AF_INET6, z.c_str(), buf) == 1) return inet_ntop(AF_INET6, buf, out, sizeof out);
    return {};
}

} // namespace

CertInfo cert_info(X509* cert) {
    CertInfo info;
    char cn[256];
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn) > 0)
        info.subject_cn = cn;

    auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
    for (int i = 0; names && i < sk_GENERAL_NAME_num(names); ++i) {
        const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names, i);
        if (gn->type == GEN_DNS) {
            const ASN1_IA5STRING* s = gn->d.dNSName;
            info.dns_sans.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                       size_t(ASN1_STRING_length(s)));
        } else if (gn->type == GEN_IPADD) {
            const ASN1_OCTET_STRING* s = gn->d.iPAddress;
            char out[INET6_ADDRSTRLEN];
            int len = ASN1_STRING_length(s);
            int af = len == 4 ? AF_INET : len == 16 ? AF_INET6 : 0;
            if (af && inet_ntop(af, ASN1_STRING_get0_data(s), out, sizeof out))
                info.ip_sans.emplace_back(out);
        }
    }
    GENERAL_NAMES_free(names);

    uint32_t flags = X509_get_extension_flags(cert);
    if (flags & EXFLAG_XKUSAGE) {
        info.has_eku = true;
        uint32_t xku = X509_get_extended_key_usage(cert);
        info.server_auth = xku & XKU_SSL_SERVER;
        info.client_auth = xku & XKU_SSL_CLIENT;
    }
    int days = 0, secs = 0;
    if (ASN1_TIME_diff(&days, &secs, nullptr, X509_get0_notAfter(cert))) info.not_after_days = days;
    return info;
}

Result<CertInfo> load_cert_info(const std::string& pem_path) {
    auto f = open_file(pem_path);
    if (!f) return f.error();
    X509* cert = PEM_read_X509(f->get(), nullptr, nullptr, nullptr);
    if (!cert) return make_error("\"" + pem_path + "\" holds no PEM certificate: " + ssl_error_text());
    CertInfo info = cert_info(cert);
    X509_free(cert);
    return info;
}

Result<void> check_key_pair(const std::string& cert_path, const std::string& key_path) {
    auto kf = open_file(key_path);
    if (!kf) return kf.error();
    // An empty passphrase callback: a key that needs a passphrase must fail here, not prompt on a tty.
    EVP_PKEY* key = PEM_read_PrivateKey(
        kf->get(), nullptr, [](char*, int, int, void*) { return 0; }, nullptr);
    if (!key)
        return make_error("\"" + key_path + "\" holds no unencrypted PEM private key: " + ssl_error_text());
    auto cf = open_file(cert_path);
    if (!cf) {
        EVP_PKEY_free(key);
        return cf.error();
    }
    X509* cert = PEM_read_X509(cf->get(), nullptr, nullptr, nullptr);
    if (!cert) {
        EVP_PKEY_free(key);
        return make_error("\"" + cert_path + "\" holds no PEM certificate: " + ssl_error_text());
    }
    bool match = X509_check_private_key(cert, key) == 1;
    ERR_clear_error();
    X509_free(cert);
    EVP_PKEY_free(key);
    if (!match)
        return make_error("private key \"" + key_path + "\" does not match certificate \"" + cert_path +
                          "\"");
    return {};
}

Result<void> check_ca_file(const std::string& path) {
    auto f = open_file(path);
    if (!f) return f.error();
    int n = 0;
    while (X509* c = PEM_read_X509(f->get(), nullptr, nullptr, nullptr)) {
        ++n;
        X509_free(c);
    }
    ERR_clear_error();
    if (n == 0) return make_error("\"" + path + "\" holds no PEM certificate");
    return {};
}

bool dns_name_matches(std::string_view pattern, std::string_view name) {
    if (!pattern.empty() && pattern.back() == '.') pattern.remove_suffix(1);
    if (!name.empty() && name.back() == '.') name.remove_suffix(1);
    if (pattern.empty() || name.empty() || is_ip_literal(name)) return false;
    std::string p = lower(pattern), n = lower(name);
    if (p.rfind("*.", 0) == 0) {
        auto dot = n.find('.');
        // The wildcard covers exactly one non-empty label; "*.example.com" never matches "example.com".
        if (dot == std::string::npos || dot == 0) return false;
        std::string_view rest = std::string_view(p).substr(1);
        // Refuse wildcards directly under a single-label suffix ("*.com").
        if (rest.find('.', 1) == std::string_view::npos) return false;
        return std::string_view(n).substr(dot) == rest;
    }
    if (p.find('*') != std::string::npos) return false; // partial-label wildcards are not honoured
    return p == n;
}

bool san_matches(const CertInfo& info, std::string_view name) {
    if (is_ip_literal(name)) {
        std::string ip = canonical_ip(name);
        for (const auto& s : info.ip_sans)
            if (s == ip) return true;
        return false;
    }
    for (const auto& s : info.dns_sans)
        if (dns_name_matches(s, name)) return true;
    return false;
}

std::string check_usage(const CertInfo& info, Eku eku, std::string_view required_name) {
    if (info.dns_sans.empty() && info.ip_sans.empty()) return "certificate has no subjectAltName";
    if (!info.has_eku) return "certificate has no extendedKeyUsage";
    if (eku == Eku::ServerAuth && !info.server_auth)
        return "certificate lacks the serverAuth extended key usage";
    if (eku == Eku::ClientAuth && !info.client_auth)
        return "certificate lacks the clientAuth extended key usage";
    if (!required_name.empty() && !san_matches(info, required_name))
        return "certificate subjectAltName does not contain \"" + std::string(required_name) + "\"";
    if (info.not_after_days < 0) return "certificate has expired";
    return {};
}

} // namespace edgepair::net
