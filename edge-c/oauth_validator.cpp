#include "edge-c/oauth_validator.h"

#include <chrono>
#include <cjose/cjose.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/http/b64_domain.h"
#include "common/mra/model.h"
#include "edge-c/edge_c.h"

namespace edgepair::edge_c {

namespace {

// The assumptions of the header comment, each switchable here.
constexpr bool kInnerIsJsonClaims = true; // false would mean: the JWE plaintext is itself a JWS/JWT
constexpr const char* kUserClaim = "sub";
constexpr const char* kTokenTypeClaim = "ctyp";
constexpr const char* kRefreshType = "refresh";

constexpr size_t kMaxToken = 16 * 1024; // Unified CM's tokens are about 1.5 KB; bounds the parser's work
constexpr size_t kMaxKeysPerCluster = 16;

std::optional<std::string> b64url(std::string_view in) {
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

// What libcjose 0.6's base64url decoder takes without asserting: it aborts the process ("_decode: shift !=
// 1", base64.c) on a length of 1 mod 4, and on a '=' that stops it at such a length. Everything cjose decodes
// comes from a client (tokens) or a peer (key sets), so each value is checked with this first.
bool b64url_clean(std::string_view v) {
    if (v.size() % 4 == 1) return false;
    for (char ch : v)
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
              ch == '_'))
            return false;
    return true;
}

// A compact serialisation (RFC 7515 / 7516 section 7.1) of exactly `parts` segments, each b64url_clean.
bool compact_clean(std::string_view t, size_t parts) {
    size_t n = 0;
    while (true) {
        size_t dot = t.find('.');
        if (!b64url_clean(t.substr(0, dot))) return false;
        ++n;
        if (dot == std::string_view::npos) break;
        t.remove_prefix(dot + 1);
    }
    return n == parts;
}

std::string jstr(const nlohmann::json& j, const char* k) {
    auto it = j.find(k);
    if (it == j.end() || !it->is_string()) return {};
    return it->get<std::string>();
}

struct JwsGuard {
    cjose_jws_t* p = nullptr;
    ~JwsGuard() {
        if (p) cjose_jws_release(p);
    }
};
struct JweGuard {
    cjose_jwe_t* p = nullptr;
    ~JweGuard() {
        if (p) cjose_jwe_release(p);
    }
};

} // namespace

const char* refusal_label(OAuthRefusal r) {
    switch (r) {
    case OAuthRefusal::Malformed:
        return "malformed";
    case OAuthRefusal::AlgNone:
        return "alg_none";
    case OAuthRefusal::BadAlg:
        return "bad_alg";
    case OAuthRefusal::UnknownKey:
        return "unknown_key";
    case OAuthRefusal::BadSignature:
        return "bad_signature";
    case OAuthRefusal::DecryptFailed:
        return "decrypt_failed";
    case OAuthRefusal::WrongIssuer:
        return "wrong_issuer";
    case OAuthRefusal::Expired:
        return "expired";
    case OAuthRefusal::NotAccess:
        return "not_access_token";
    case OAuthRefusal::WrongDeployment:
        return "wrong_deployment";
    }
    return "malformed";
}

Jwk::~Jwk() {
    if (k_) cjose_jwk_release(k_);
}

bool looks_like_jws(std::string_view t) {
    auto a = t.find('.');
    if (a == std::string_view::npos) return false;
    auto b = t.find('.', a + 1);
    return b != std::string_view::npos && t.find('.', b + 1) == std::string_view::npos;
}

Result<OAuthCluster> cluster_from_jwks(const config::OAuthClusterConfig& c, std::string_view jwks) {
    OAuthCluster out;
    out.name = c.name;
    out.deployment = c.deployment;
    out.issuer = c.issuer;
    auto doc = nlohmann::json::parse(jwks, nullptr, false);
    if (doc.is_discarded() || !doc.is_object() || !doc.contains("keys") || !doc["keys"].is_array())
        return make_error(fmt::format("oauth cluster {}: keys: expected a JWKS {{\"keys\":[...]}}", c.name));
    size_t i = 0;
    for (const auto& k : doc["keys"]) {
        if (++i > 2 * kMaxKeysPerCluster)
            return make_error(
                fmt::format("oauth cluster {}: more than {} keys", c.name, 2 * kMaxKeysPerCluster));
        std::string kid = k.is_object() ? jstr(k, "kid") : std::string();
        if (kid.empty()) return make_error(fmt::format("oauth cluster {}: key {} has no kid", c.name, i));
        // A key set is fetched from a peer: every member cjose decodes is checked first (b64url_clean).
        for (const char* f : {"n", "e", "d", "p", "q", "dp", "dq", "qi", "k", "x", "y"}) {
            if (!k.contains(f)) continue;
            const auto& v = k[f];
            if (!v.is_string() || !b64url_clean(v.get_ref<const std::string&>()))
                return make_error(
                    fmt::format("oauth cluster {}: key {}: \"{}\" is not base64url", c.name, kid, f));
        }
        std::string text = k.dump();
        cjose_err err{};
        cjose_jwk_t* jwk = cjose_jwk_import(text.c_str(), text.size(), &err);
        if (!jwk)
            return make_error(fmt::format("oauth cluster {}: key {}: {}", c.name, kid,
                                          err.message ? err.message : "invalid"));
        Jwk held(jwk, kid);
        switch (cjose_jwk_get_kty(jwk, &err)) {
        case CJOSE_JWK_KTY_RSA:
            out.signing.push_back(std::move(held));
            break;
        case CJOSE_JWK_KTY_OCT:
            // A128CBC-HS256 with alg dir uses the key as is: 16 bytes MAC + 16 bytes AES.
            if (cjose_jwk_get_keysize(jwk, &err) != 256)
                return make_error(
                    fmt::format("oauth cluster {}: key {}: an A128CBC-HS256 key has 32 bytes", c.name, kid));
            out.encryption.push_back(std::move(held));
            break;
        default:
            return make_error(
                fmt::format("oauth cluster {}: key {}: only RSA and oct keys are used", c.name, kid));
        }
    }
    if (out.signing.empty() || out.encryption.empty())
        return make_error(fmt::format(
            "oauth cluster {}: needs at least one RSA signing key and one oct encryption key", c.name));
    return out;
}

Result<OAuthCluster> JwksFileKeySource::load(const config::OAuthClusterConfig& c) {
    std::ifstream f(c.keys_file);
    if (!f) return make_error(fmt::format("oauth cluster {}: cannot read {}", c.name, c.keys_file));
    std::stringstream ss;
    ss << f.rdbuf();
    auto r = cluster_from_jwks(c, ss.str());
    if (!r) return make_error(r.error().message + " (" + c.keys_file + ")");
    return r;
}

Result<std::shared_ptr<const OAuthValidator>> OAuthValidator::from_config(const config::OAuthConfig& cfg,
                                                                          OAuthKeySource& source) {
    std::vector<OAuthCluster> clusters;
    for (const auto& c : cfg.clusters) {
        auto r = source.load(c);
        if (!r) return make_error(r.error().message);
        clusters.push_back(std::move(*r));
    }
    return std::shared_ptr<const OAuthValidator>(
        std::make_shared<OAuthValidator>(std::move(clusters), uint64_t(cfg.clock_skew.count() / 1000)));
}

std::variant<OAuthIdentity, OAuthRefusal>
OAuthValidator::validate(std::string_view token, std::string_view deployment, uint64_t now_s) const {
    if (token.empty() || token.size() > kMaxToken || !looks_like_jws(token)) return OAuthRefusal::Malformed;
    const auto dot = token.find('.');
    // The header is read before cjose sees the token: an unsigned or differently signed token is refused
    // by what it says it is, never handed to a verifier that might accept it.
    auto hdr_raw = b64url(token.substr(0, dot));
    if (!hdr_raw) return OAuthRefusal::Malformed;
    auto hdr = nlohmann::json::parse(*hdr_raw, nullptr, false);
    if (hdr.is_discarded() || !hdr.is_object()) return OAuthRefusal::Malformed;
    const std::string alg = jstr(hdr, "alg");
    if (alg == "none" || alg == "None" || alg == "NONE") return OAuthRefusal::AlgNone;
    if (alg != "RS256") return OAuthRefusal::BadAlg;
    const std::string kid = jstr(hdr, "kid");

    const OAuthCluster* cluster = nullptr;
    const Jwk* key = nullptr;
    for (const auto& c : clusters_)
        for (const auto& k : c.signing)
            if (!kid.empty() && k.kid() == kid) {
                cluster = &c;
                key = &k;
            }
    if (!key) return OAuthRefusal::UnknownKey;

    // Found by fuzz_edge_c_tokens: a '=' inside a segment made cjose abort the process (b64url_clean).
    if (!compact_clean(token, 3)) return OAuthRefusal::Malformed;
    cjose_err err{};
    JwsGuard jws{cjose_jws_import(token.data(), token.size(), &err)};
    if (!jws.p) return OAuthRefusal::Malformed;
    if (!cjose_jws_verify(jws.p, key->get(), &err)) return OAuthRefusal::BadSignature;
    uint8_t* pt = nullptr;
    size_t pt_len = 0;
    if (!cjose_jws_get_plaintext(jws.p, &pt, &pt_len, &err)) return OAuthRefusal::Malformed;
    auto outer =
        nlohmann::json::parse(std::string_view(reinterpret_cast<const char*>(pt), pt_len), nullptr, false);
    if (outer.is_discarded() || !outer.is_object()) return OAuthRefusal::Malformed;
    // Unified CM's refresh token is signed, not encrypted: its type shows in the outer payload.
    if (jstr(outer, kTokenTypeClaim) == kRefreshType) return OAuthRefusal::NotAccess;
    const std::string jwe_text = jstr(outer, "private");
    if (jwe_text.empty() || jwe_text.size() > kMaxToken) return OAuthRefusal::Malformed;

    if (!compact_clean(jwe_text, 5)) return OAuthRefusal::Malformed;
    JweGuard jwe{cjose_jwe_import(jwe_text.data(), jwe_text.size(), &err)};
    if (!jwe.p) return OAuthRefusal::Malformed;
    cjose_header_t* jh = cjose_jwe_get_protected(jwe.p);
    const char* jalg = jh ? cjose_header_get(jh, CJOSE_HDR_ALG, &err) : nullptr;
    const char* jenc = jh ? cjose_header_get(jh, CJOSE_HDR_ENC, &err) : nullptr;
    if (!jalg || !jenc || std::string_view(jalg) != "dir" || std::string_view(jenc) != "A128CBC-HS256")
        return OAuthRefusal::BadAlg;
    std::string claims_text;
    for (const auto& k : cluster->encryption) {
        size_t n = 0;
        uint8_t* out = cjose_jwe_decrypt(jwe.p, k.get(), &n, &err);
        if (out) {
            claims_text.assign(reinterpret_cast<const char*>(out), n);
            cjose_get_dealloc()(out);
            break;
        }
    }
    if (claims_text.empty()) return OAuthRefusal::DecryptFailed;
    if (!kInnerIsJsonClaims) return OAuthRefusal::Malformed;
    auto claims = nlohmann::json::parse(claims_text, nullptr, false);
    if (claims.is_discarded() || !claims.is_object()) return OAuthRefusal::Malformed;

    if (jstr(claims, "iss") != cluster->issuer) return OAuthRefusal::WrongIssuer;
    auto exp = claims.find("exp");
    if (exp == claims.end() || !exp->is_number()) return OAuthRefusal::Malformed;
    double e = exp->get<double>();
    if (e < 0 || e + double(skew_s_) <= double(now_s)) return OAuthRefusal::Expired;
    if (jstr(claims, kTokenTypeClaim) == kRefreshType) return OAuthRefusal::NotAccess;
    OAuthIdentity id;
    id.user = jstr(claims, kUserClaim);
    if (id.user.empty() || id.user.size() > 256) return OAuthRefusal::Malformed;
    for (unsigned char ch : id.user)
        if (ch < 0x20 || ch == 0x7f) return OAuthRefusal::Malformed; // the user id reaches logs and URLs
    if (!deployment.empty() && cluster->deployment != deployment) return OAuthRefusal::WrongDeployment;
    id.cluster = cluster->name;
    id.expires_s = uint64_t(e);
    return id;
}

std::optional<std::string_view> bearer_of(std::string_view v) {
    constexpr std::string_view kScheme = "bearer ";
    if (v.size() <= kScheme.size() || !mra::iequals(v.substr(0, kScheme.size()), kScheme))
        return std::nullopt;
    v.remove_prefix(kScheme.size());
    while (!v.empty() && v.front() == ' ')
        v.remove_prefix(1);
    while (!v.empty() && v.back() == ' ')
        v.remove_suffix(1);
    if (v.empty()) return std::nullopt;
    return v;
}

std::variant<OAuthIdentity, const char*> check_access_token(CWorker& w, std::string_view token,
                                                            std::string_view deployment) {
    const auto& v = w.gen()->oauth;
    const char* reason = "not_configured";
    if (v) {
        const uint64_t now_s = uint64_t(std::chrono::duration_cast<std::chrono::seconds>(
                                            std::chrono::system_clock::now().time_since_epoch())
                                            .count());
        auto r = v->validate(token, deployment, now_s);
        if (auto* id = std::get_if<OAuthIdentity>(&r)) return std::move(*id);
        reason = refusal_label(std::get<OAuthRefusal>(r));
    }
    w.counters()
        .get("edgepair_oauth_refused_total", "OAuth access tokens refused, by reason",
             {{"reason", std::string(reason)}})
        .inc();
    return reason;
}

} // namespace edgepair::edge_c
