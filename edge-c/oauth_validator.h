#pragma once
// OAuth access tokens issued by Unified CM, validated by edge-c itself, without a round trip (X14 guide:
// "The Expressway-C performs token authorization"; TechNote 212794 for the form):
//
//   JWS compact, header {"alg":"RS256","kid":<signing key>}, payload {"private":"<JWE compact>"}
//   JWE compact, header {"alg":"dir","enc":"A128CBC-HS256","cty":"JWT"}, plaintext = the claims
//   claims: iss, sub (the user id), exp (seconds), ctyp ("access"; a refresh token says "refresh"), ...
//
// Confirmed by the public documents: the nesting, the algorithms, a signing key (RSA) and an encryption key
// (symmetric) per Unified CM cluster. Assumed (not public), each kept in one place in oauth_validator.cpp:
// the inner plaintext is the JSON claims set itself (kInnerIsJsonClaims), the user is `sub` (kUserClaim),
// and the key interface: Unified CM's own key endpoint is not public, so keys come from an OAuthKeySource,
// with operator-supplied JWKS files per cluster as the one source implemented.
//
// JOSE parsing and crypto are libcjose's (Debian libcjose-dev, on OpenSSL); this file only decides what is
// acceptable. Every refusal has its own reason, counted as edgepair_oauth_refused_total{reason}.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/config/edge_c_config.h"
#include "common/core/result.h"

typedef struct _cjose_jwk_int cjose_jwk_t;

namespace edgepair::edge_c {

enum class OAuthRefusal {
    Malformed,     // not a JWS compact serialisation, bad base64 or JSON, no `private` JWE
    AlgNone,       // an unsigned token ("alg":"none")
    BadAlg,        // a JWS alg other than RS256, or a JWE other than dir / A128CBC-HS256
    UnknownKey,    // no configured cluster has the signing key its kid names (wrong key, or keys regenerated)
    BadSignature,  // the signature does not verify (tampered)
    DecryptFailed, // the inner JWE does not open with the cluster's encryption keys
    WrongIssuer,   // `iss` is not the issuer configured for the cluster whose key signed it
    Expired,       // `exp` passed (beyond the clock skew)
    NotAccess,     // a refresh token presented as an access token
    WrongDeployment, // a valid token of a cluster that serves another deployment than the request's domain
};
const char* refusal_label(OAuthRefusal r);

struct OAuthIdentity {
    std::string user;
    std::string cluster;
    uint64_t expires_s = 0;
};

// A key in cjose's form; released with it.
class Jwk {
  public:
    Jwk(cjose_jwk_t* k, std::string kid) : k_(k), kid_(std::move(kid)) {}
    Jwk(Jwk&& o) noexcept : k_(o.k_), kid_(std::move(o.kid_)) { o.k_ = nullptr; }
    Jwk(const Jwk&) = delete;
    Jwk& operator=(const Jwk&) = delete;
    Jwk& operator=(Jwk&&) = delete;
    ~Jwk();
    const cjose_jwk_t* get() const { return k_; }
    const std::string& kid() const { return kid_; }

  private:
    cjose_jwk_t* k_;
    std::string kid_;
};

struct OAuthCluster {
    std::string name;
    std::string deployment;
    std::string issuer;
    std::vector<Jwk> signing;    // RSA public keys
    std::vector<Jwk> encryption; // oct keys, 32 bytes for A128CBC-HS256
};

// Where a cluster's keys come from. Pluggable because Unified CM's key interface is not public: the file
// source is what an operator can always supply; a fetcher for the real interface (or a fixture's endpoint)
// implements the same call.
class OAuthKeySource {
  public:
    virtual ~OAuthKeySource() = default;
    virtual Result<OAuthCluster> load(const config::OAuthClusterConfig& c) = 0;
};

// Reads c.keys_file: a JWKS {"keys":[...]}; RSA keys (public part used) sign, `oct` keys encrypt.
class JwksFileKeySource final : public OAuthKeySource {
  public:
    Result<OAuthCluster> load(const config::OAuthClusterConfig& c) override;
};
// The same from a JWKS document in memory (tests, fuzzing, a future fetcher).
Result<OAuthCluster> cluster_from_jwks(const config::OAuthClusterConfig& c, std::string_view jwks);

// Immutable after construction: shared by every worker (cjose only reads a key while verifying or
// decrypting with it). Replaced whole when the keys are reloaded.
class OAuthValidator {
  public:
    OAuthValidator(std::vector<OAuthCluster> clusters, uint64_t clock_skew_s)
        : clusters_(std::move(clusters)), skew_s_(clock_skew_s) {}
    static Result<std::shared_ptr<const OAuthValidator>> from_config(const config::OAuthConfig& cfg,
                                                                     OAuthKeySource& source);

    // deployment: the request's; empty accepts any cluster's token (fuzzing, SIP before routing).
    std::variant<OAuthIdentity, OAuthRefusal> validate(std::string_view token, std::string_view deployment,
                                                       uint64_t now_s) const;
    size_t clusters() const { return clusters_.size(); }

  private:
    std::vector<OAuthCluster> clusters_;
    uint64_t skew_s_;
};

// Whether a bearer value looks like a JWS compact serialisation (three dot-separated base64url parts): what
// tells an OAuth token from an edge token before any parsing.
bool looks_like_jws(std::string_view token);

// `Bearer <token>` (RFC 6750, scheme case-insensitive): the token, or nullopt for any other scheme. The one
// reading of the scheme for HTTP's Authorization and SIP's (edge-c/sip_access.cpp).
std::optional<std::string_view> bearer_of(std::string_view authorization_value);

class CWorker;
// The check every service makes of an access token (HTTP, SIP REGISTER, XMPP SASL): the worker's validator at
// the wall clock. A refusal comes back as its reason label ("not_configured" without oauth.clusters), already
// counted in edgepair_oauth_refused_total{reason}.
std::variant<OAuthIdentity, const char*> check_access_token(CWorker& w, std::string_view token,
                                                            std::string_view deployment);

} // namespace edgepair::edge_c
