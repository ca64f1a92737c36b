#include "common/crypto/digest.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <stdexcept>

namespace edgepair::crypto {

Sha256::Sha256() : md_(EVP_MD_fetch(nullptr, "SHA256", nullptr)), ctx_(EVP_MD_CTX_new()) {
    // No SHA-256 means a broken OpenSSL installation: nothing on this path can work without it.
    if (!md_ || !ctx_) {
        EVP_MD_free(md_);
        EVP_MD_CTX_free(ctx_);
        throw std::runtime_error("OpenSSL: SHA256 is not available");
    }
}

Sha256::~Sha256() {
    EVP_MD_CTX_free(ctx_);
    EVP_MD_free(md_);
}

Sha256Digest Sha256::operator()(std::span<const uint8_t> data) {
    Sha256Digest out{};
    unsigned int len = 0;
    // Re-initialising a context with the digest it already has keeps its provider state: no allocation.
    if (EVP_DigestInit_ex2(ctx_, md_, nullptr) != 1 ||
        EVP_DigestUpdate(ctx_, data.data(), data.size()) != 1 ||
        EVP_DigestFinal_ex(ctx_, out.data(), &len) != 1 || len != out.size())
        throw std::runtime_error("OpenSSL: SHA256 failed");
    return out;
}

Sha256Digest Sha256::operator()(std::string_view data) {
    return (*this)(bytes(data));
}

Result<std::unique_ptr<HmacSha256>> HmacSha256::create(std::span<const uint8_t> key) {
    EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    if (!mac) return make_error("OpenSSL: HMAC is not available");
    EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac); // the context holds its own reference
    if (!ctx) return make_error("OpenSSL: cannot create an HMAC context");
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_END};
    if (EVP_MAC_init(ctx, key.data(), key.size(), params) != 1) {
        EVP_MAC_CTX_free(ctx);
        return make_error("OpenSSL: cannot key HMAC-SHA256");
    }
    return std::unique_ptr<HmacSha256>(new HmacSha256(ctx));
}

HmacSha256::~HmacSha256() {
    EVP_MAC_CTX_free(keyed_); // clears the key schedule
}

Sha256Digest HmacSha256::operator()(std::initializer_list<std::span<const uint8_t>> parts) const {
    // A copy of the keyed context: the template is never updated, so concurrent callers do not interfere.
    std::unique_ptr<EVP_MAC_CTX, decltype(&EVP_MAC_CTX_free)> c(EVP_MAC_CTX_dup(keyed_), EVP_MAC_CTX_free);
    Sha256Digest out{};
    size_t len = 0;
    bool ok = c != nullptr;
    for (auto p : parts)
        ok = ok && EVP_MAC_update(c.get(), p.data(), p.size()) == 1;
    ok = ok && EVP_MAC_final(c.get(), out.data(), &len, out.size()) == 1 && len == out.size();
    if (!ok) throw std::runtime_error("OpenSSL: HMAC-SHA256 failed");
    return out;
}

std::string to_hex(std::span<const uint8_t> b) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(b.size() * 2);
    for (uint8_t c : b) {
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    return out;
}

} // namespace edgepair::crypto
