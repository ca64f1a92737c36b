// libFuzzer target: what a browser on the internet posts to /<b64 domain>/fedlet reaches edge-c's SAML
// service provider (edge-c/saml_sp.h): the form parser, the xs:dateTime reader, and the Response itself
// through liblasso and edgepair's checks on it. Invariant beyond "no crash": no input signs anyone in (the
// fuzzer does not hold the IdP's key, so an accepted Response would mean a bypass). The input is tried as the
// form body, and as the Response XML itself (base64-encoded for the form, as a browser would post it).
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>
#include <unistd.h>
#include <variant>

#include "common/http/b64_domain.h"
#include "edge-c/saml_sp.h"

using namespace edgepair;

namespace {

// A fresh RSA key and self-signed certificate, written as PEM files; returns the certificate's base64 DER.
std::string make_key_files(const std::string& key_path, const std::string& cert_path) {
    EVP_PKEY* pk = EVP_RSA_gen(2048);
    X509* x = X509_new();
    if (!pk || !x) std::abort();
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 365);
    X509_set_pubkey(x, pk);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("fuzz"), -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    if (!X509_sign(x, pk, EVP_sha256())) std::abort();
    FILE* f = std::fopen(key_path.c_str(), "w");
    PEM_write_PrivateKey(f, pk, nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(f);
    f = std::fopen(cert_path.c_str(), "w");
    PEM_write_X509(f, x);
    std::fclose(f);
    unsigned char* der = nullptr;
    int n = i2d_X509(x, &der);
    std::string b64 = http::base64_encode(std::string_view(reinterpret_cast<char*>(der), size_t(n)));
    OPENSSL_free(der);
    X509_free(x);
    EVP_PKEY_free(pk);
    return b64;
}

constexpr const char* kAcs = "https://expe1.example.com:8443/ZXhhbXBsZS5jb20/fedlet";

edge_c::SamlServiceProvider& sp() {
    static std::shared_ptr<edge_c::SamlServiceProvider> p = [] {
        char dir[] = "/tmp/edgepair-saml-fuzz-XXXXXX";
        if (!mkdtemp(dir)) std::abort();
        const std::string d = dir;
        config::SsoConfig cfg;
        cfg.entity_id = "https://expc1.example.com/saml/sp";
        cfg.signing = {d + "/sp.crt", d + "/sp.key"};
        make_key_files(cfg.signing.key, cfg.signing.cert);
        const std::string idp_cert = make_key_files(d + "/idp.key", d + "/idp.crt");
        std::ofstream(d + "/idp.xml")
            << R"(<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" )"
            << R"(xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="https://idp.example.com/idp">)"
            << R"(<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">)"
            << R"(<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>)" << idp_cert
            << R"(</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>)"
            << R"(<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" )"
            << R"(Location="https://idp.example.com/sso"/></md:IDPSSODescriptor></md:EntityDescriptor>)";
        cfg.identity_providers.push_back({"idp1", d + "/idp.xml"});
        auto r = edge_c::SamlServiceProvider::create(cfg, {kAcs});
        if (!r) std::abort();
        return *r;
    }();
    return *p;
}

void try_consume(const edge_c::SamlPostForm& form) {
    std::string detail;
    auto r = sp().consume(form, "idp1", kAcs, 1'800'000'000, detail);
    if (std::holds_alternative<edge_c::SamlIdentity>(r)) std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view v(reinterpret_cast<const char*>(data), size);
    (void)edge_c::parse_saml_time(v);
    if (auto form = edge_c::parse_saml_post_form(v)) try_consume(*form);
    if (size <= 64 * 1024) {
        edge_c::SamlPostForm form;
        form.saml_response = http::base64_encode(v);
        try_consume(form);
    }
    return 0;
}
