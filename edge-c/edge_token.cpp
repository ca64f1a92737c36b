#include "edge-c/edge_token.h"

#include <chrono>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>

#include "common/http/b64_domain.h"

namespace edgepair::edge_c {

namespace {

constexpr unsigned char kVersion = 1;    // sealed after a password check
constexpr unsigned char kVersionSso = 2; // sealed after a SAML sign-in: the same layout, the stamp unused
constexpr size_t kNonce = 12, kTag = 16;
constexpr size_t kMaxToken = 2048; // far above any real token; bounds the decoder's work
constexpr std::string_view kAad = "edgepair edge token v1";

std::array<unsigned char, 32> derive(std::string_view key, std::string_view label) {
    std::array<unsigned char, 32> out{};
    unsigned int len = 0;
    HMAC(EVP_sha256(), key.data(), int(key.size()), reinterpret_cast<const unsigned char*>(label.data()),
         label.size(), out.data(), &len);
    return out;
}

void put_u64(std::string& s, uint64_t v) {
    for (int i = 7; i >= 0; --i)
        s.push_back(char((v >> (8 * i)) & 0xff));
}

struct Reader {
    std::string_view s;
    bool ok = true;
    uint64_t u(size_t n) {
        if (s.size() < n) {
            ok = false;
            return 0;
        }
        uint64_t v = 0;
        for (size_t i = 0; i < n; ++i)
            v = (v << 8) | static_cast<unsigned char>(s[i]);
        s.remove_prefix(n);
        return v;
    }
    std::string_view bytes(size_t n) {
        if (s.size() < n) {
            ok = false;
            return {};
        }
        auto r = s.substr(0, n);
        s.remove_prefix(n);
        return r;
    }
};

std::optional<std::string> base64url_decode(std::string_view in) {
    // base64_decode_strict wants the standard alphabet with padding.
    std::string t(in);
    for (auto& c : t) {
        if (c == '-')
            c = '+';
        else if (c == '_')
            c = '/';
        else if (c == '+' || c == '/' || c == '=')
            return std::nullopt;
    }
    while (t.size() % 4)
        t.push_back('=');
    return http::base64_decode_strict(t);
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
        s.remove_suffix(1);
    return s;
}

template <class F> void for_each_cookie(std::string_view field, F&& f) {
    size_t i = 0;
    for (int guard = 0; i <= field.size() && guard < 256; ++guard) {
        size_t j = field.find(';', i);
        if (j == std::string_view::npos) j = field.size();
        auto pair = trim(field.substr(i, j - i));
        if (!pair.empty()) {
            auto eq = pair.find('=');
            f(pair, trim(pair.substr(0, eq)), eq == std::string_view::npos ? "" : trim(pair.substr(eq + 1)));
        }
        i = j + 1;
    }
}

} // namespace

std::string edge_token_set_cookie(std::string_view token, uint64_t max_age_s) {
    return fmt::format("{}={}; Path=/; Max-Age={}; Secure; HttpOnly; SameSite=Strict", kEdgeTokenCookie,
                       token, max_age_s);
}

const char* refusal_label(EdgeTokenRefusal r) {
    switch (r) {
    case EdgeTokenRefusal::Malformed:
        return "malformed";
    case EdgeTokenRefusal::BadSeal:
        return "bad_seal";
    case EdgeTokenRefusal::Expired:
        return "expired";
    case EdgeTokenRefusal::FromFuture:
        return "from_future";
    case EdgeTokenRefusal::WrongDeployment:
        return "wrong_deployment";
    case EdgeTokenRefusal::StaleCredentials:
        return "stale_credentials";
    }
    return "malformed";
}

EdgeTokenSealer::EdgeTokenSealer(std::string_view key) {
    // Separate keys for sealing and stamping: a stamp is never a function of the sealing key.
    seal_key_ = derive(key, "edgepair edge token seal");
    doc_key_ = derive(key, "edgepair cluster shared documents");
    auto stamp_key = derive(key, "edgepair edge token credential stamp");
    auto stamper = crypto::HmacSha256::create(stamp_key);
    OPENSSL_cleanse(stamp_key.data(), stamp_key.size());
    if (!stamper) throw std::runtime_error("edge token stamp key: " + stamper.error().message);
    stamper_ = std::move(*stamper);
}

Result<std::shared_ptr<EdgeTokenSealer>> EdgeTokenSealer::ephemeral() {
    unsigned char k[32];
    if (RAND_bytes(k, sizeof k) != 1) return make_error("edge token key: RAND_bytes failed");
    auto s = std::make_shared<EdgeTokenSealer>(std::string_view(reinterpret_cast<char*>(k), sizeof k));
    OPENSSL_cleanse(k, sizeof k);
    return s;
}

Result<std::shared_ptr<EdgeTokenSealer>> EdgeTokenSealer::from_key_file(const std::string& path) {
    std::string hex;
    {
        std::ifstream f(path);
        if (f) {
            std::stringstream ss;
            ss << f.rdbuf();
            hex = ss.str();
            while (!hex.empty() && (hex.back() == '\n' || hex.back() == '\r' || hex.back() == ' '))
                hex.pop_back();
        } else {
            unsigned char k[32];
            if (RAND_bytes(k, sizeof k) != 1) return make_error("edge token key: RAND_bytes failed");
            for (unsigned char c : k)
                hex += fmt::format("{:02x}", c);
            OPENSSL_cleanse(k, sizeof k);
            // Two edge-c processes starting at once (cluster peers sharing a directory) must end with one
            // key, and neither may read the file half written: the key is written whole under a name of this
            // process's, then linked into place, which fails if the other one got there first (then its key,
            // complete by then, is read).
            const std::string tmp = fmt::format("{}.new.{}", path, ::getpid());
            int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
            if (fd < 0)
                return make_error(fmt::format("edge token key file {}: {}", tmp, std::strerror(errno)));
            std::string line = hex + "\n";
            bool ok = ::write(fd, line.data(), line.size()) == ssize_t(line.size()) && ::fsync(fd) == 0;
            ::close(fd);
            if (!ok) {
                ::unlink(tmp.c_str());
                return make_error(fmt::format("edge token key file {}: short write", tmp));
            }
            const int linked = ::link(tmp.c_str(), path.c_str());
            const int err = errno;
            ::unlink(tmp.c_str());
            if (linked != 0) {
                if (err == EEXIST) return from_key_file(path);
                return make_error(fmt::format("edge token key file {}: {}", path, std::strerror(err)));
            }
        }
    }
    if (hex.size() != 64)
        return make_error(fmt::format("edge token key file {}: expected 64 hex digits", path));
    std::string key;
    for (size_t i = 0; i < 64; i += 2) {
        unsigned v = 0;
        for (size_t k = 0; k < 2; ++k) {
            char c = hex[i + k];
            int d = c >= '0' && c <= '9'   ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
            if (d < 0) return make_error(fmt::format("edge token key file {}: expected 64 hex digits", path));
            v = v * 16 + unsigned(d);
        }
        key.push_back(char(v));
    }
    auto s = std::make_shared<EdgeTokenSealer>(key);
    OPENSSL_cleanse(key.data(), key.size());
    OPENSSL_cleanse(hex.data(), hex.size());
    return s;
}

CredentialStamp EdgeTokenSealer::stamp_of(std::string_view deployment, std::string_view user,
                                          std::string_view password) const {
    static constexpr uint8_t kNul = 0;
    const std::span<const uint8_t> nul(&kNul, 1);
    auto md =
        (*stamper_)({crypto::bytes(deployment), nul, crypto::bytes(user), nul, crypto::bytes(password)});
    CredentialStamp s{};
    std::memcpy(s.data(), md.data(), s.size());
    OPENSSL_cleanse(md.data(), md.size());
    return s;
}

std::string EdgeTokenSealer::issue(const EdgeTokenClaims& c, std::string_view password) const {
    std::string pt;
    pt.push_back(char(c.sso ? kVersionSso : kVersion));
    put_u64(pt, c.issued_ms);
    auto st = stamp_of(c.deployment, c.user, password);
    pt.append(reinterpret_cast<const char*>(st.data()), st.size());
    auto field = [&pt](std::string_view v, size_t max) {
        v = v.substr(0, max);
        pt.push_back(char(v.size() >> 8));
        pt.push_back(char(v.size() & 0xff));
        pt.append(v);
    };
    field(c.deployment, 255);
    field(c.user, 512);
    field(c.node, 255);

    unsigned char nonce[kNonce];
    if (RAND_bytes(nonce, sizeof nonce) != 1) return {};
    std::string out(reinterpret_cast<const char*>(nonce), kNonce);
    out.resize(kNonce + pt.size() + kTag);
    auto* ct = reinterpret_cast<unsigned char*>(out.data()) + kNonce;
    EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
    int len = 0, fin = 0;
    bool ok = ctx && EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, seal_key_.data(), nonce) == 1 &&
              EVP_EncryptUpdate(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(kAad.data()),
                                int(kAad.size())) == 1 &&
              EVP_EncryptUpdate(ctx, ct, &len, reinterpret_cast<const unsigned char*>(pt.data()),
                                int(pt.size())) == 1 &&
              EVP_EncryptFinal_ex(ctx, ct + len, &fin) == 1 &&
              EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, int(kTag), ct + pt.size()) == 1;
    EVP_CIPHER_CTX_free(ctx);
    OPENSSL_cleanse(pt.data(), pt.size());
    if (!ok) return {};
    return std::string(kEdgeTokenPrefix) + http::base64_encode(out, false, true);
}

std::variant<EdgeTokenClaims, EdgeTokenRefusal> EdgeTokenSealer::open(std::string_view token,
                                                                      std::string_view deployment,
                                                                      uint64_t now_ms, uint64_t lifetime_ms,
                                                                      const CredentialStamps& stamps) const {
    if (token.size() > kMaxToken || !token.starts_with(kEdgeTokenPrefix)) return EdgeTokenRefusal::Malformed;
    auto raw = base64url_decode(token.substr(kEdgeTokenPrefix.size()));
    if (!raw || raw->size() < kNonce + kTag + 1) return EdgeTokenRefusal::Malformed;
    const size_t n = raw->size() - kNonce - kTag;
    std::string pt(n, '\0');
    const auto* in = reinterpret_cast<const unsigned char*>(raw->data());
    EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
    int len = 0, fin = 0;
    bool ok =
        ctx && EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, seal_key_.data(), in) == 1 &&
        EVP_DecryptUpdate(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(kAad.data()),
                          int(kAad.size())) == 1 &&
        EVP_DecryptUpdate(ctx, reinterpret_cast<unsigned char*>(pt.data()), &len, in + kNonce, int(n)) == 1 &&
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, int(kTag),
                            const_cast<unsigned char*>(in + kNonce + n)) == 1 &&
        EVP_DecryptFinal_ex(ctx, reinterpret_cast<unsigned char*>(pt.data()) + len, &fin) == 1;
    EVP_CIPHER_CTX_free(ctx);
    if (!ok) return EdgeTokenRefusal::BadSeal;

    Reader r{pt};
    const auto version = r.u(1);
    if (version != kVersion && version != kVersionSso) return EdgeTokenRefusal::Malformed;
    EdgeTokenClaims c;
    c.sso = version == kVersionSso;
    c.issued_ms = r.u(8);
    auto sv = r.bytes(c.stamp.size());
    if (r.ok) std::memcpy(c.stamp.data(), sv.data(), c.stamp.size());
    c.deployment = std::string(r.bytes(size_t(r.u(2))));
    c.user = std::string(r.bytes(size_t(r.u(2))));
    c.node = std::string(r.bytes(size_t(r.u(2))));
    if (!r.ok || !r.s.empty() || c.user.empty()) return EdgeTokenRefusal::Malformed;
    // A minute of slack for clocks: the key file may be shared by edge-c nodes of one cluster.
    if (c.issued_ms > now_ms + 60'000) return EdgeTokenRefusal::FromFuture;
    if (now_ms - std::min(now_ms, c.issued_ms) >= lifetime_ms) return EdgeTokenRefusal::Expired;
    if (c.deployment != deployment) return EdgeTokenRefusal::WrongDeployment;
    if (!c.sso && stamps.stale(c)) return EdgeTokenRefusal::StaleCredentials;
    return c;
}

namespace {
std::string stamp_key(std::string_view deployment, std::string_view user) {
    std::string key(deployment);
    key.push_back('\0');
    key.append(user);
    return key;
}
} // namespace

void CredentialStamps::note(std::string_view deployment, std::string_view user, const CredentialStamp& stamp,
                            uint64_t seen_ms, uint64_t cleanup_ms, std::string_view node) {
    auto key = stamp_key(deployment, user);
    auto it = seen_.find(key);
    if (it != seen_.end()) {
        // Posts from two workers may cross: the later check wins, whichever arrives last.
        if (it->second.seen_ms <= seen_ms) it->second = Seen{stamp, seen_ms, std::string(node)};
        return;
    }
    if (seen_.size() >= max_) {
        for (auto e = seen_.begin(); e != seen_.end();)
            e = seen_ms - std::min(seen_ms, e->second.seen_ms) >= cleanup_ms ? seen_.erase(e) : std::next(e);
        // Still full: forgetting a stamp only lets an old-password token live until it expires, so the
        // memory bound wins.
        if (seen_.size() >= max_) seen_.erase(seen_.begin());
    }
    seen_.emplace(std::move(key), Seen{stamp, seen_ms, std::string(node)});
}

bool CredentialStamps::stale(const EdgeTokenClaims& c) const {
    if (seen_.empty()) return false;
    auto it = seen_.find(stamp_key(c.deployment, c.user));
    // Sealed after the remembered check: over a password at least as new (another edge-c peer checked it
    // while this memory could not hear of it, Redis being away), so not stale. issue() refuses to seal over a
    // password older than one remembered (EdgeTokenSealer's caller, knows_other), which keeps this sound.
    return it != seen_.end() && it->second.seen_ms > c.issued_ms &&
           CRYPTO_memcmp(it->second.stamp.data(), c.stamp.data(), c.stamp.size()) != 0;
}

bool CredentialStamps::knows_other(std::string_view deployment, std::string_view user,
                                   const CredentialStamp& stamp) const {
    if (seen_.empty()) return false;
    auto it = seen_.find(stamp_key(deployment, user));
    return it != seen_.end() && CRYPTO_memcmp(it->second.stamp.data(), stamp.data(), stamp.size()) != 0;
}

std::optional<CredentialStamps::Vouch> CredentialStamps::vouch(std::string_view deployment,
                                                               std::string_view user,
                                                               const CredentialStamp& stamp, uint64_t now_ms,
                                                               uint64_t max_age_ms) const {
    if (seen_.empty()) return std::nullopt;
    auto it = seen_.find(stamp_key(deployment, user));
    if (it == seen_.end() || it->second.node.empty() ||
        CRYPTO_memcmp(it->second.stamp.data(), stamp.data(), stamp.size()) != 0)
        return std::nullopt;
    // A peer's clock a little ahead makes a check "from the future": it is as fresh as one made now.
    const uint64_t age = now_ms - std::min(now_ms, it->second.seen_ms);
    if (age >= max_age_ms) return std::nullopt;
    return Vouch{it->second.node, max_age_ms - age};
}

uint64_t wall_clock_ms() {
    return uint64_t(std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count());
}

std::optional<std::string> edge_token_from_cookie(std::string_view field) {
    std::optional<std::string> out;
    for_each_cookie(field, [&](std::string_view, std::string_view name, std::string_view value) {
        if (!out && name == kEdgeTokenCookie && !value.empty()) out = std::string(value);
    });
    return out;
}

std::optional<std::string> cookie_without_edge_token(std::string_view field) {
    std::string out;
    for_each_cookie(field, [&](std::string_view pair, std::string_view name, std::string_view) {
        if (name == kEdgeTokenCookie) return;
        if (!out.empty()) out += "; ";
        out.append(pair);
    });
    if (out.empty()) return std::nullopt;
    return out;
}

} // namespace edgepair::edge_c
