#pragma once
// End-user credential checks for the HTTP edge (get_edge_config and proxied requests).
//
// Expressway-C proves a user's password by asking Unified CM over UDS, on the user's home cluster only
// (TechNote 211304: `GET /cucm-uds/clusterUser?username=<id>` first, edge-c/home_cluster.h, then
// `/cucm-uds/user/<id>/devices` with the user's own Basic credentials, which answers 200 only for the right
// password). The home cluster's nodes are tried in order, the one clusterUser named first. A success is
// remembered for the credentials refresh interval (seeds/002: 480 min default, cleanup 720 min) so a
// signed-in client does not cost one UDS round trip per request.
//
// Everything sits behind CredentialChecker so that OAuth tokens (issue: tokens) can be checked by another
// implementation without touching the HTTP service.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/core/loop.h"
#include "common/core/result.h"
#include "common/crypto/digest.h"
#include "common/http/h1_client.h"
#include "common/mra/snapshot.h"
#include "edge-c/edge_token.h"

namespace edgepair::edge_c {

class HomeClusterFinder;

struct BasicCredentials {
    std::string user;
    std::string password;
};

// `Authorization: Basic <base64(user:password)>` (RFC 7617). nullopt for any other scheme, bad base64,
// no colon, an empty user, or control characters (the user ends up in a UDS URL and in logs).
std::optional<BasicCredentials> parse_basic_auth(std::string_view header_value);

struct AuthOutcome {
    enum class Verdict { Allowed, Denied };
    Verdict verdict = Verdict::Denied;
    std::string user;    // the UDS user id (clusterUser's, which differs from the signed-in name for email=)
    std::string node;    // the Unified CM node that answered (also remembered with a cached success)
    bool cached = false; // answered from the success cache
    bool oauth = false;  // signed in with a Unified CM OAuth access token
    // Answered by a check of the same password another worker or edge-c peer made (cached is set too):
    // Unified CM was not asked here (UdsCheckerOptions::vouched).
    bool vouched = false;
    std::string reason; // Denied: why, for logs (never shown to the client)
};

// A check that could not be decided (no node, node down, timeout) is an Error, not a Denied: a Unified CM
// outage must not look like a wrong password to the user. The message starts with a label:
// "unavailable: ..." (503), "timeout: ..." (504) or "upstream: ..." (502).
int auth_error_status(const Error& e);

class CredentialChecker {
  public:
    using Callback = std::function<void(Result<AuthOutcome>)>;
    virtual ~CredentialChecker() = default;
    // `domain` is the request's (canonical) domain; the checker picks the nodes of its deployment. The
    // callback may run before check() returns (cache hit) or later on the same loop; the caller guards
    // its own lifetime.
    virtual void check(std::string_view user, std::string_view password, std::string_view domain,
                       Callback cb) = 0;
};

struct UdsCheckerOptions {
    // Read on every check so a reload takes effect without a new checker.
    std::function<std::shared_ptr<const mra::Snapshot>()> snapshot;
    std::function<uint64_t()> refresh_ms; // success cache lifetime
    uint64_t cleanup_ms = 720ull * 60 * 1000;
    std::function<uint64_t()> home_cache_ms; // how long a user's home cluster is remembered
    size_t max_cache_entries = 100000;       // memory bound against a credential-stuffing flood
    // Asked on a miss of this worker's cache, before Unified CM: a recent successful check of this very
    // password made elsewhere (edge-c/edge_token.h, CredentialStamps::vouch). Null: always ask Unified CM.
    std::function<std::optional<CredentialStamps::Vouch>(std::string_view deployment, std::string_view user,
                                                         std::string_view password)>
        vouched;
};

// One per worker loop (no locking): the caches are per worker.
class UdsCredentialChecker final : public CredentialChecker {
  public:
    UdsCredentialChecker(core::Loop& loop, http::Client& client, UdsCheckerOptions opts);
    ~UdsCredentialChecker() override;
    void check(std::string_view user, std::string_view password, std::string_view domain,
               Callback cb) override;

    size_t cache_size() const { return cache_.size(); }
    // The home-cluster finder the checks use (single sign-on asks it too: a SAML uid has no password).
    HomeClusterFinder& home() { return *home_; }
    void cleanup(); // drop expired entries (also run every cleanup_ms)

  private:
    struct Entry {
        std::string node, user_id;
        uint64_t expires_ms = 0;
    };
    struct Pending;
    std::string cache_key(std::string_view deployment, std::string_view user, std::string_view password);
    void attempt(std::shared_ptr<Pending> p);
    void finish(const std::shared_ptr<Pending>& p, Result<AuthOutcome> r);

    core::Loop& loop_;
    http::Client& client_;
    UdsCheckerOptions opts_;
    std::string salt_; // random per process: cached hashes are useless outside it
    crypto::Sha256 sha256_;
    std::unordered_map<std::string, Entry> cache_;
    // Checks in flight by cache key: Jabber signs in with a burst of parallel requests carrying the same
    // credentials, and they should cost one UDS request, not one each.
    std::unordered_map<std::string, std::shared_ptr<Pending>> pending_;
    std::unique_ptr<HomeClusterFinder> home_; // clusterUser look-up before the check (edge-c/home_cluster.h)
    std::unique_ptr<core::Timer> cleanup_timer_;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// Percent-encodes everything but RFC 3986 unreserved characters (a user id as one path segment).
std::string encode_path_segment(std::string_view s);

} // namespace edgepair::edge_c
