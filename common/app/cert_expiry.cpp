#include "common/app/cert_expiry.h"

#include <cerrno>
#include <cstring>
#include <ctime>
#include <memory>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

namespace edgepair::app {

namespace {
// A bundle with more than this is a mistake; the bound keeps a hostile file from costing unbounded time.
constexpr int kMaxCertsPerFile = 1000;

std::string subject_of(X509* cert) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
    if (!bio) return "?";
    X509_NAME_print_ex(bio.get(), X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
    char* data = nullptr;
    long n = BIO_get_mem_data(bio.get(), &data);
    return n > 0 ? std::string(data, size_t(n)) : std::string("(empty subject)");
}
} // namespace

Result<std::vector<CertExpiry>> read_cert_expiry(const std::string& pem_path) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_file(pem_path.c_str(), "r"), BIO_free);
    if (!bio) return make_error(pem_path + ": cannot open: " + std::strerror(errno));
    std::vector<CertExpiry> out;
    while (out.size() < size_t(kMaxCertsPerFile)) {
        X509* raw = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
        if (!raw) break;
        std::unique_ptr<X509, decltype(&X509_free)> cert(raw, X509_free);
        std::tm tm{};
        if (ASN1_TIME_to_tm(X509_get0_notAfter(cert.get()), &tm) != 1) continue;
        out.push_back(CertExpiry{subject_of(cert.get()), int64_t(timegm(&tm))});
    }
    ERR_clear_error(); // the end of the file reads as a PEM "no start line" error
    if (out.empty()) return make_error(pem_path + ": no certificate found");
    return out;
}

} // namespace edgepair::app
