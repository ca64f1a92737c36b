#pragma once
// edge-c, the internal edge: dials out to every edge-e peer over the traversal link, discovers the
// Unified CM / IM&P / Unity Connection nodes, and serves the streams edge-e opens towards them.
// It accepts no connection from outside (the admin endpoint listens on a management address).
#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/admin/admin_server.h"
#include "common/app/app.h"
#include "common/cluster/cluster_identity.h"
#include "common/cluster/shared_doc.h"
#include "common/config/edge_c_config.h"
#include "common/core/owner.h"
#include "common/core/process.h"
#include "common/http/h1_client.h"
#include "common/http/rate_limit.h"
#include "common/link/link_dialer.h"
#include "common/media/media_metrics.h"
#include "common/mra/snapshot.h"
#include "common/net/dns.h"
#include "common/net/tls_context.h"
#include "common/obs/access_log.h"
#include "common/obs/counter_memo.h"
#include "common/obs/metrics.h"
#include "edge-c/discovery.h"
#include "edge-c/edge_token.h"
#include "edge-c/saml_sp.h"

namespace edgepair::edge_c {

struct Generation {
    config::EdgeCConfig cfg;
    std::shared_ptr<net::TlsClientContext> link_tls; // client cert + trusted CAs for edge-e
    // Towards Unified CM / IM&P / Unity Connection: verify against trusted CAs, or not (per publisher).
    std::shared_ptr<net::TlsClientContext> upstream_verify, upstream_noverify;
    // XMPP federation (issue #19): the TLS edge-c offers IM&P's outbound server-to-server connections on
    // federation.xmpp.listen. Null without federation.xmpp.
    std::shared_ptr<net::TlsServerContext> s2s_inside_tls;
    // Failed end-user credential checks per user name (credentials.max_failures); null when off. Shared by
    // the workers, kept across reloads that do not change it.
    std::shared_ptr<http::KeyedRateLimiter> auth_failures;
    // Sign-ins per user name (credentials.max_authorizations, seeds/002 "Authorization Rate Control"); null
    // when off. Shared and carried the same way.
    std::shared_ptr<http::KeyedRateLimiter> authorizations;
    // log.access; null when off. Opened anew by every generation (docs/CONFIG.md, `log.access`).
    std::shared_ptr<const obs::AccessLog> access_log;
    // Edge tokens after a Basic check (credentials.token_key_file); kept across reloads that keep the file.
    std::shared_ptr<class EdgeTokenSealer> edge_tokens;
    // OAuth access token validation (oauth.clusters); null when no cluster is configured. Rebuilt on every
    // reload, which is how regenerated keys are picked up.
    std::shared_ptr<const class OAuthValidator> oauth;
    // The SAML service provider (edge-c/saml_sp.h); null when no domain has single sign-on. Rebuilt on every
    // reload (new IdP metadata); its replay memory is the process's and carries over.
    std::shared_ptr<class SamlServiceProvider> saml;
};

// Single sign-on helpers shared by the HTTP service and the admin metadata export.
// The assertion consumer URL of `domain` at edge-e address host[:port] (port 8443 when absent).
std::string saml_acs_url(std::string_view edge_e_address, std::string_view domain);
// Every consumer URL of the SSO domains of `deployment` (empty: all deployments) at every sso.edge_e_address.
std::vector<std::string> saml_acs_urls(const config::EdgeCConfig& cfg, std::string_view deployment = {});
const config::DomainConfig* find_domain_config(const config::EdgeCConfig& cfg, std::string_view domain);

class EdgeC;
class MraAccessDirectory;
class SipRouter;
class UdsCredentialChecker;
class XmppService;
class S2sService;
class SipFedService;

// Per-worker state of edge-c: the link dialers this worker owns, the services that serve the streams they
// carry, and the streams themselves. Everything here is created and destroyed on the worker's thread and
// touched only from it (except the link status, which the admin thread reads).
class CWorker {
  public:
    CWorker(EdgeC& app, core::Worker& w, std::shared_ptr<const Generation> gen);
    ~CWorker();
    core::Worker& worker() { return worker_; }
    EdgeC& app() { return app_; }
    // This worker's copy of the configuration generation: a reload posts the new one to this loop, so
    // reading it needs no lock.
    const std::shared_ptr<const Generation>& gen() const { return gen_; }
    void apply_generation(std::shared_ptr<const Generation> gen);
    // The same generation with other OAuth keys (a key fetch ended): nothing else to re-apply.
    void apply_oauth_keys(std::shared_ptr<const Generation> gen) { gen_ = std::move(gen); }
    // Runs on the worker thread before its loop starts.
    void init();
    // Runs on the worker thread while its loop still runs, before the process stops: frees the links, the
    // services and the streams there, in the order they depend on each other.
    void teardown();
    net::Resolver& resolver() { return *resolver_; }
    // This worker's pooled HTTP/1.1 client towards the internal nodes.
    http::Client& http() { return *http_; }
    // The services, one each per worker (no locks: only this worker's thread uses them).
    SipRouter& sip() { return *sip_; }
    // EdgeC::share_node_address arrived on this loop (ignored once the services are torn down).
    void learn_node_address(const std::string& ip, const std::string& node);
    // The passwords seen per user (edge-c/edge_token.h), this worker's copy: EdgeC::share_credential_stamp
    // fills every worker's.
    const CredentialStamps& credential_stamps() const { return stamps_; }
    void learn_credential_stamp(const std::string& deployment, const std::string& user,
                                const CredentialStamp& stamp, uint64_t seen_ms, uint64_t cleanup_ms,
                                const std::string& node) {
        stamps_.note(deployment, user, stamp, seen_ms, cleanup_ms, node);
    }
    XmppService& xmpp() { return *xmpp_; }
    // XMPP federation on this worker (edge-c/s2s_service.h); null without federation.xmpp.
    S2sService* s2s() { return s2s_.get(); }
    // SIP federation on this worker (edge-c/sipfed_service.h); null without federation.sip.
    SipFedService* sipfed() { return sipfed_.get(); }
    // An up link of this worker (round-robin over its dialers), or nullptr.
    link::LinkConn* pick_link();
    UdsCredentialChecker& credentials() { return *credentials_; }
    // Per-user MRA access policy look-ups (edge-c/mra_access_policy.h; issue #15).
    MraAccessDirectory& mra_access() { return *mra_access_; }
    // Labelled data-path counters: the registry is asked once per label set per worker, never per event.
    obs::CounterMemo& counters() { return counters_; }
    // The streams (and their abandoned connections) live here: own() takes one, retire() frees it on the
    // next loop turn, the one way such an object goes (never `delete this`).
    template <class T> T* own(std::unique_ptr<T> p) { return owner_.adopt(std::move(p)); }
    void retire(const void* p) { owner_.retire(p); }
    template <class T> void retire(std::unique_ptr<T> p) { owner_.retire(std::move(p)); }
    void add_dialer(size_t peer, link::LinkDialer::Config cfg);
    void stop_dialers();
    // The MRA snapshot requests are checked against (swapped whole, never edited).
    void apply(std::shared_ptr<const mra::Snapshot> snap, std::shared_ptr<const std::string> push);
    std::shared_ptr<const mra::Snapshot> snapshot() const { return snapshot_; }
    std::string links_json() const;
    int links_up() const { return links_up_.load(); }
    // Whether l is the current, up link of one of this worker's dialers (a call may outlive its link).
    bool link_alive(const link::LinkConn* l) const;

  private:
    void refresh_status();
    EdgeC& app_;
    core::Worker& worker_;
    std::shared_ptr<const Generation> gen_;
    obs::CounterMemo counters_;
    CredentialStamps stamps_;
    // Declared in dependency order: destroyed from the bottom up, the links (whose streams call into the
    // services as they close) first, the resolver last.
    std::unique_ptr<net::Resolver> resolver_;
    std::unique_ptr<http::Client> http_;
    std::unique_ptr<UdsCredentialChecker> credentials_;
    std::unique_ptr<MraAccessDirectory> mra_access_;
    std::unique_ptr<XmppService> xmpp_;
    std::unique_ptr<SipRouter> sip_;
    std::unique_ptr<S2sService> s2s_;
    std::unique_ptr<SipFedService> sipfed_;
    core::Owner owner_;
    std::vector<std::pair<size_t, std::unique_ptr<link::LinkDialer>>> dialers_;
    std::shared_ptr<const mra::Snapshot> snapshot_;
    std::shared_ptr<const std::string> push_; // the snapshot control message sent to edge-e
    std::unique_ptr<core::Timer> status_timer_;
    mutable std::mutex status_mu_;
    std::string links_json_;
    std::atomic<int> links_up_{0};
    bool torn_down_ = false;
    size_t next_link_ = 0;
};

// edge-c's roles in the common process skeleton (common/app).
class EdgeC final : public app::Roles {
  public:
    EdgeC(std::string config_path, config::EdgeCConfig cfg);
    ~EdgeC() override;
    int run() { return app_.run(*this); }
    obs::Registry& metrics() { return app_.metrics(); }
    const media::MediaMetrics& media_metrics() const { return app_.media_metrics(); }
    // The main loop's resolver and HTTP client (discovery runs there, off the data plane).
    net::Resolver& resolver() { return *resolver_; }
    http::Client& http() { return *http_; }
    // edge-e told us how many link connections it wants from us (one per edge-e worker).
    void on_peer_hello(size_t peer, unsigned workers);
    // The SIP flow-token key (sip::FlowTokenCodec), one per process and fixed at start: every worker's router
    // must recognise the URIs the others wrote, since a dialog between two clients of this edge-c can have
    // one worker's Record-Route in the route set of a request that arrives on another.
    const std::array<uint8_t, 32>& flow_token_key() const { return flow_token_key_; }
    // A worker's SIP connection found that Unified CM node `node` is at `ip`: every worker learns it (a post
    // to each loop; each router keeps its own copy, no lock), so that a Route naming a node by address is
    // recognised even by a worker that never connected there. In a call between two clients on two workers,
    // homed on two clusters, the caller's route set names the callee's node (by address, as a
    // record-routing registrar writes it), and only the callee's worker ever connected there. The post runs
    // when the address is resolved, long before a request routed through that node can reach another worker.
    // Any thread.
    void share_node_address(const std::string& ip, const std::string& node);
    // SAML replay memory (edge-c/saml_sp.h), owned by worker 0's loop, or with `cluster.redis` by the main
    // loop's ClusterSignin (edge-c/cluster_signin.h), which shares it with the edge-c peers. An AuthnRequest
    // sent: remember its ID (a post). Any thread.
    void saml_remember_request(std::string id, std::string domain, int64_t expires_s);
    // An assertion consume() accepted on worker `from`: checked against the replay memory on worker 0,
    // then `done` runs on `from`'s loop with the identity and the refusal, if any.
    using SamlAdmitted = std::function<void(SamlIdentity, std::optional<SamlRefusal>, std::string detail)>;
    void saml_admit(CWorker& from, SamlIdentity id, std::string domain, int64_t now_s, SamlAdmitted done);
    // A password check Unified CM answered on worker `from`: noted there at once and posted to every other
    // worker, so an edge token sealed over an older password is refused on all of them; with
    // `cluster.redis`, on every edge-c peer too. Worker thread.
    // `node`: the Unified CM node that answered (a peer's check answers for this one,
    // CredentialStamps::vouch).
    void share_credential_stamp(CWorker& from, const std::string& deployment, const std::string& user,
                                const CredentialStamp& stamp, uint64_t seen_ms, uint64_t cleanup_ms,
                                const std::string& node);
    // A token a per-user limiter of the generation took on a worker (kind "auth_failures" or
    // "authorizations"): the other edge-c peers take it too (cluster.redis; nothing without it). Worker
    // thread.
    void share_limiter_take(const char* kind, const std::string& key);

  private:
    // app::Roles
    app::Basics basics() const override { return app::basics_of(gen_->cfg); }
    Result<void> create(app::App& app) override;
    void init_worker(core::Worker& w) override { workers_[w.index()]->init(); }
    void start() override;
    Result<void> prepare(const std::string& path) override;
    void commit() override;
    std::string ready_reason() override;
    std::string status_fields() override;
    void drain_begin() override;
    uint64_t drain_left() override { return 0; }
    uint64_t drain_grace_ms() const override { return 500; } // let the GOAWAYs reach edge-e
    void teardown_worker(core::Worker& w) override { workers_[w.index()]->teardown(); }
    void check_alarms() override;
    // `cluster.redis` (issue #17): sign-in state shared with the edge-c peers; read at start only.
    void make_cluster_signin();
    std::string cluster_status() const;
    std::vector<app::CertFile> cert_files() const override;
    std::string allow_list_json() const;

    Result<std::shared_ptr<const Generation>> build(config::EdgeCConfig cfg);
    void start_links();
    void publish_snapshot();
    // Configuration + discovered nodes + imported allow-list rules: what the snapshot is built from.
    mra::SnapshotInput current_input(const std::vector<mra::AllowRule>& imported) const;
    void start_allow_list_admin();
    link::LinkDialer::Config dialer_config(size_t peer);
    // Discovery wiring (edge-c/discovery.h): state file at start, runs on start / reload / refresh.
    void start_discovery();
    void reconfigure_discovery();
    void on_discovery_change();
    // OAuth keys fetched from the clusters (edge-c/oauth_keys.h): a new validator for every worker.
    void on_oauth_keys_change();

    app::App app_;                              // first: the loops everything below runs on go last
    std::shared_ptr<const Generation> gen_;     // the main loop's; each worker has its own copy
    std::shared_ptr<const Generation> pending_; // built by prepare(), swapped in by commit()
    std::vector<std::unique_ptr<CWorker>> workers_;
    std::unique_ptr<net::Resolver> resolver_;
    std::unique_ptr<http::Client> http_;
    std::vector<unsigned> dialers_per_peer_;
    std::vector<mra::UcNode> nodes_; // discovered (main loop only)
    // Declared after http_ and resolver_ so it is destroyed before them.
    std::unique_ptr<Discovery> discovery_;
    std::unique_ptr<class OAuthKeyFetcher> oauth_keys_; // likewise
    // AuthnRequest and assertion IDs, across reloads; made once, touched only on worker 0's loop.
    const std::shared_ptr<SamlReplayCache> saml_cache_ = std::make_shared<SamlReplayCache>();
    std::shared_ptr<const mra::Snapshot> snapshot_;
    std::string snapshot_error_;
    std::vector<mra::AllowRule> imported_rules_; // POST /allowlist/rules (main loop only)
    // Their version (wall-clock ms of the import, or of the rules file at start; 0: never imported) and which
    // peer imported them: the newest import wins across the cluster (common/cluster/shared_doc.h).
    uint64_t imported_version_ms_ = 0;
    std::string imported_origin_;
    uint64_t link_down_since_ms_ = 0; // main loop: when fewer links than dialers were first seen up
    struct Cluster {
        config::ClusterConfig config; // as at start
        obs::Counter* commands_failed = nullptr;
        obs::Counter* fallbacks[4] = {}; // assertion, request, stamp, tally
    } cluster_;
    // Declared after saml_cache_, which it uses; null without cluster.redis. Main loop only.
    std::unique_ptr<class ClusterSignin> signin_;
    // Imported allow-list rules shared by the peers; null without cluster.redis. Main loop only.
    std::unique_ptr<cluster::SharedDoc> rules_share_;
    // The discovery result shared by the peers (with cluster.redis): its version (wall ms of the run or of
    // the peer's run adopted) and maker; discovery_follower_: cluster.discovery_primary names another peer.
    std::unique_ptr<cluster::SharedDoc> discovery_share_;
    uint64_t discovery_version_ms_ = 0;
    std::string discovery_origin_;
    bool discovery_follower_ = false;
    void make_cluster_discovery();
    void adopt_peer_discovery(const cluster::doc_wire::Doc& d);
    // With cluster.redis: this process's name and the cluster's Redis and key prefix (origin_ drawn once, the
    // same on every channel), and a SharedDoc built from them, signed with the token key, started.
    cluster::ClusterIdentity cluster_id();
    std::unique_ptr<cluster::SharedDoc>
    make_shared_doc(const char* key, const char* channel, const char* what,
                    std::function<cluster::doc_wire::Doc()> local,
                    std::function<void(const cluster::doc_wire::Doc&)> adopt);
    std::string origin_;
    void make_cluster_rules();
    void adopt_peer_rules(const cluster::doc_wire::Doc& r);
    std::array<uint8_t, 32> flow_token_key_{};
};

} // namespace edgepair::edge_c
