#pragma once
// edge-c, the internal edge: dials out to every edge-e peer over the traversal link, discovers the
// Unified CM / IM&P / Unity Connection nodes, and serves the streams edge-e opens towards them.
// It accepts no connection from outside (the admin endpoint listens on a management address).
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/admin/admin_server.h"
#include "common/config/edge_c_config.h"
#include "common/core/process.h"
#include "common/http/h1_client.h"
#include "common/http/rate_limit.h"
#include "common/link/link_dialer.h"
#include "common/media/media_metrics.h"
#include "common/mra/snapshot.h"
#include "common/net/dns.h"
#include "common/net/tls_context.h"
#include "common/obs/metrics.h"
#include "edge-c/discovery.h"

namespace edgepair::edge_c {

struct Generation {
    config::EdgeCConfig cfg;
    std::shared_ptr<net::TlsClientContext> link_tls; // client cert + trusted CAs for edge-e
    // Towards Unified CM / IM&P / Unity Connection: verify against trusted CAs, or not (per publisher).
    std::shared_ptr<net::TlsClientContext> upstream_verify, upstream_noverify;
    // Failed end-user credential checks per user name (credentials.max_failures); null when off. Shared by
    // the workers, kept across reloads that do not change it.
    std::shared_ptr<http::KeyedRateLimiter> auth_failures;
};

class EdgeC;

// Per-worker state of edge-c: the link dialers this worker owns and the streams they carry.
class CWorker {
  public:
    CWorker(EdgeC& app, core::Worker& w) : app_(app), worker_(w) {}
    core::Worker& worker() { return worker_; }
    EdgeC& app() { return app_; }
    // Runs on the worker thread before its loop starts.
    void init();
    net::Resolver& resolver() { return *resolver_; }
    // This worker's pooled HTTP/1.1 client towards the internal nodes.
    http::Client& http() { return *http_; }
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
    std::unique_ptr<net::Resolver> resolver_;
    std::unique_ptr<http::Client> http_;
    std::vector<std::pair<size_t, std::unique_ptr<link::LinkDialer>>> dialers_;
    std::shared_ptr<const mra::Snapshot> snapshot_;
    std::shared_ptr<const std::string> push_; // the snapshot control message sent to edge-e
    std::unique_ptr<core::Timer> status_timer_;
    mutable std::mutex status_mu_;
    std::string links_json_;
    std::atomic<int> links_up_{0};
};

class EdgeC {
  public:
    EdgeC(std::string config_path, config::EdgeCConfig cfg);
    ~EdgeC();
    int run();
    obs::Registry& metrics() { return metrics_; }
    const media::MediaMetrics& media_metrics() const { return media_metrics_; }
    // Any thread: workers read the current generation while the main loop may swap it on reload.
    std::shared_ptr<const Generation> gen() const {
        std::lock_guard<std::mutex> lk(gen_mu_);
        return gen_;
    }
    // The main loop's resolver and HTTP client (discovery runs there, off the data plane).
    net::Resolver& resolver() { return *resolver_; }
    http::Client& http() { return *http_; }
    // edge-e told us how many link connections it wants from us (one per edge-e worker).
    void on_peer_hello(size_t peer, unsigned workers);

  private:
    Result<std::shared_ptr<const Generation>> build(config::EdgeCConfig cfg);
    void reload();
    void drain();
    std::string status_json();
    std::string ready_reason();
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

    std::string config_path_;
    obs::Registry metrics_;
    media::MediaMetrics media_metrics_;
    std::unique_ptr<core::Process> process_;
    std::unique_ptr<admin::Server> admin_;
    mutable std::mutex gen_mu_;
    std::shared_ptr<const Generation> gen_; // written on the main loop under gen_mu_
    std::vector<std::unique_ptr<CWorker>> workers_;
    std::unique_ptr<net::Resolver> resolver_;
    std::unique_ptr<http::Client> http_;
    std::vector<net::SockAddr> peer_addrs_;
    std::vector<unsigned> dialers_per_peer_;
    std::vector<mra::UcNode> nodes_; // discovered (main loop only)
    // Declared after http_ and resolver_ so it is destroyed before them.
    std::unique_ptr<Discovery> discovery_;
    std::shared_ptr<const mra::Snapshot> snapshot_;
    std::string snapshot_error_;
    std::vector<mra::AllowRule> imported_rules_; // POST /allowlist/rules (main loop only)
    uint64_t started_ms_ = 0;
    uint64_t reloads_ = 0;
    bool draining_ = false;
    std::unique_ptr<core::Timer> drain_timer_;
};

} // namespace edgepair::edge_c
