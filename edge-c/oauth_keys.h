#pragma once
// Where edge-c's OAuth keys come from (issue #15, item 3). Two sources, each behind OAuthKeySource:
//
//   keys_file   the operator's JWKS file per cluster, read at start and on every reload (SIGHUP);
//   keys_fetch  the same JWKS fetched over HTTPS from the cluster, on edge-c's main loop with its HTTP client
//               (never blocking a worker), when discovery runs (start, reload, POST /discovery/refresh).
//
// Unified CM's own key interface is not public. What the fetcher assumes of it (method, authentication, the
// form of the answer) lives in one place, KeyInterface in oauth_keys.cpp; the only implementation of that
// interface today is tools/fixtures/oauth_issuer.py's /fixture/jwks, so a test of the fetch proves that
// edge-c and the fixture agree (consistency), not that edge-c talks to a real Unified CM (interoperability).
//
// A fetched key set replaces the cluster's previous one whole: after the issuer regenerated its keys and a
// refresh ran, tokens signed with the old key are refused as unknown_key (401, reason logged and counted).
// A failed fetch keeps the last good keys and raises the alarm oauth.keys:<cluster>.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/config/edge_c_config.h"
#include "common/http/h1_client.h"
#include "edge-c/oauth_validator.h"

namespace edgepair::obs {
class Registry;
}

namespace edgepair::edge_c {

// The fetch request for a cluster and the reading of its answer: the assumed Unified CM interface.
http::ClientRequest key_fetch_request(const config::OAuthClusterConfig& c);
// The JWKS text of a good answer (checked with cluster_from_jwks), or why it is not one.
Result<std::string> key_fetch_answer(const config::OAuthClusterConfig& c, int status, std::string_view body);

class OAuthKeyFetcher {
  public:
    struct State {
        config::OAuthClusterConfig cfg;
        std::string jwks;  // the last good answer (empty: none yet)
        std::string error; // the last run's failure, empty when it succeeded
        int64_t last_attempt_unix = 0;
        int64_t last_success_unix = 0;
        uint64_t fetches = 0;
        bool running = false;
        bool rerun = false; // a refresh came while running
    };
    using ChangeFn = std::function<void()>;

    // Fetches run on the loop of http.
    OAuthKeyFetcher(http::Client& http, obs::Registry* metrics);
    ~OAuthKeyFetcher();
    OAuthKeyFetcher(const OAuthKeyFetcher&) = delete;
    OAuthKeyFetcher& operator=(const OAuthKeyFetcher&) = delete;

    // Called on the loop after a fetch changed a cluster's keys.
    void on_change(ChangeFn fn) { on_change_ = std::move(fn); }
    // Adopts the keys_fetch clusters of cfg. A cluster whose fetch settings did not change keeps its keys.
    void configure(const config::OAuthConfig& cfg);
    // Fetches every keys_fetch cluster (one already fetching runs again when it ends).
    void refresh();
    // The last good JWKS fetched with exactly these settings, or null.
    const std::string* jwks(const config::OAuthClusterConfig& c) const;
    const std::vector<State>& clusters() const { return states_; }
    std::string status_json() const;

  private:
    void start(size_t i);
    void finish(const std::string& name, const std::string& url, Result<http::ClientResponse> r);

    http::Client& http_;
    obs::Registry* metrics_;
    std::vector<State> states_;
    ChangeFn on_change_;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// For OAuthValidator::from_config: keys_file clusters from their file; keys_fetch clusters from what the
// fetcher last got, or with no keys before the first fetch ends (their tokens are then unknown_key).
class CombinedKeySource final : public OAuthKeySource {
  public:
    explicit CombinedKeySource(const OAuthKeyFetcher* fetched) : fetched_(fetched) {}
    Result<OAuthCluster> load(const config::OAuthClusterConfig& c) override;

  private:
    const OAuthKeyFetcher* fetched_;
    JwksFileKeySource file_;
};

} // namespace edgepair::edge_c
