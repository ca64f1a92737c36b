#pragma once
// Edge tokens: what edge-c hands a client after a successful Basic check on get_edge_config, so that the
// client's later requests carry the token instead of the password (seeds/002: "When the Expressway is used
// as the authentication agent ... returns the authorization token"; its lifetime is the credentials refresh
// interval, 480 min by default).
//
// A token is sealed, not stored: AES-256-GCM (OpenSSL EVP) over user, deployment, home node, issue time and a
// credential stamp, with a key read from credentials.token_key_file. Any worker, and edge-c after a restart,
// opens it with the same key; nothing but the key has to survive. The stamp is an HMAC of the password
// under a key derived from the same file: edge-c remembers the latest stamp it saw per user
// (CredentialStamps, one copy per worker, fed by a post to every worker's loop), so after a Basic check
// with a new password, tokens sealed over the old one are refused (a password change "seen by edge-c").
// That memory is per process: after a restart, an old-password token stays valid until its user signs in
// with a password again or the token expires (docs/SECURITY.md).
#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>

#include "common/core/result.h"
#include "common/crypto/digest.h"

namespace edgepair::edge_c {

// How the token travels. Not public: an unverified third-party capture shows a session cookie `X-Auth` set
// on get_edge_config (shared/MRA-PROTOCOL.md). edgepair sets that cookie and accepts the token both as that
// cookie and as `Authorization: Bearer`. Change the form here only.
inline constexpr std::string_view kEdgeTokenCookie = "X-Auth";
inline constexpr std::string_view kEdgeTokenPrefix = "ept1."; // tells an edge token from an OAuth JWS
std::string edge_token_set_cookie(std::string_view token, uint64_t max_age_s);
// Now, in ms since the epoch. Tokens and SAML assertions outlive the process, so their times are
// wall-clock, never the loop's monotonic clock: what every issue() and open() on HTTP and SIP is given.
uint64_t wall_clock_ms();

using CredentialStamp = std::array<unsigned char, 16>;

struct EdgeTokenClaims {
    std::string user;
    std::string deployment;
    std::string node; // the Unified CM node that checked the password (the user's UDS server)
    uint64_t issued_ms = 0;
    // Issued after a SAML sign-in (edge-c/saml_sp.h), not a password check: there is no password stamp to
    // compare, and a domain in SSO mode Exclusive accepts only these.
    bool sso = false;
    CredentialStamp stamp{}; // set by open(): the password the token was sealed over, as its stamp
};

// The latest password stamp seen per user, one memory per worker (no lock: only its loop touches it).
// A password check on any worker reaches every worker's memory by a post (EdgeC::share_credential_stamp),
// so a request on another worker may still pass with an old-password token for the few microseconds the
// post is in flight; the token would pass on every worker until then anyway.
class CredentialStamps {
  public:
    explicit CredentialStamps(size_t max_stamps = 200000) : max_(max_stamps) {}
    // Keeps the newest stamp per user (by seen_ms), so posts from several workers may arrive in any order.
    // Entries older than cleanup_ms are forgotten (the cleanup interval) when the memory is full.
    // `node`: the Unified CM node that answered the check (empty when a peer's record did not say).
    void note(std::string_view deployment, std::string_view user, const CredentialStamp& stamp,
              uint64_t seen_ms, uint64_t cleanup_ms, std::string_view node = {});
    // True when a newer password than the one `claims` was sealed over has been seen for its user.
    // True when a newer password than the one `claims` was sealed over has been seen for its user: another
    // stamp, remembered from a check made after the token was issued.
    bool stale(const EdgeTokenClaims& claims) const;
    // Whether the remembered stamp of this user is another one (a cached check of an old password must not
    // get a token that would outlive the change).
    bool knows_other(std::string_view deployment, std::string_view user, const CredentialStamp& stamp) const;
    // A check of this very password for this user that Unified CM answered less than max_age_ms ago, on
    // any worker or edge-c peer: it answers for a new check as the success cache would, so a user whose
    // sign-ins spread over P peers and W workers costs one check at Unified CM, not P x W. The node that
    // answered, and how much longer the answer holds; nullopt when the remembered stamp is another
    // password's, too old, or came without its node (a peer of an older version).
    struct Vouch {
        std::string node;
        uint64_t valid_ms = 0;
    };
    std::optional<Vouch> vouch(std::string_view deployment, std::string_view user,
                               const CredentialStamp& stamp, uint64_t now_ms, uint64_t max_age_ms) const;
    size_t size() const { return seen_.size(); }
    void clear() { seen_.clear(); }

  private:
    struct Seen {
        CredentialStamp stamp;
        uint64_t seen_ms;
        std::string node;
    };
    size_t max_;
    std::unordered_map<std::string, Seen> seen_; // deployment '\0' user -> latest stamp
};

enum class EdgeTokenRefusal { Malformed, BadSeal, Expired, FromFuture, WrongDeployment, StaleCredentials };
const char* refusal_label(EdgeTokenRefusal r); // the `reason` label of edgepair_edge_token_refused_total

// Thread-safe without a lock: it holds only keys, immutable after construction. One per edge-c process,
// shared by the workers and kept across reloads that keep the key file.
class EdgeTokenSealer {
  public:
    // key: 32 bytes of secret material.
    explicit EdgeTokenSealer(std::string_view key);
    // Reads the key file (64 hex digits); creates it with a random key (mode 0600) when it does not exist.
    static Result<std::shared_ptr<EdgeTokenSealer>> from_key_file(const std::string& path);
    // A key that dies with the process (no key file configured).
    static Result<std::shared_ptr<EdgeTokenSealer>> ephemeral();

    std::string issue(const EdgeTokenClaims& claims, std::string_view password) const;
    // lifetime_ms: the credentials refresh interval. `stamps`: the opening worker's memory of passwords
    // seen; a password-sealed token whose stamp is older than the one remembered is StaleCredentials.
    std::variant<EdgeTokenClaims, EdgeTokenRefusal> open(std::string_view token, std::string_view deployment,
                                                         uint64_t now_ms, uint64_t lifetime_ms,
                                                         const CredentialStamps& stamps) const;

    // The key the edge-c peers sign what they share through Redis with (common/cluster/shared_doc.h): derived
    // from the same file, so a peer with the same token key verifies it and nobody else can make one.
    std::string cluster_doc_key() const {
        return std::string(reinterpret_cast<const char*>(doc_key_.data()), doc_key_.size());
    }

    // The stamp a successful password check leaves in every worker's CredentialStamps.
    CredentialStamp stamp_of(std::string_view deployment, std::string_view user,
                             std::string_view password) const;

  private:
    std::array<unsigned char, 32> seal_key_{};
    std::array<unsigned char, 32> doc_key_{};
    std::unique_ptr<crypto::HmacSha256> stamper_; // keyed with the stamp key, once
};

// The token a request carries, if any: `Authorization: Bearer ept1...` first, then the X-Auth cookie among
// the Cookie field values (HTTP/2 clients may split cookies over several fields).
std::optional<std::string> edge_token_from_cookie(std::string_view cookie_field);
// The Cookie field without the edge token (nullopt when nothing is left): the token stays with the edge.
std::optional<std::string> cookie_without_edge_token(std::string_view cookie_field);

} // namespace edgepair::edge_c
