#pragma once
// edge-e, the external edge: client listeners (HTTPS 8443, SIP/TLS 5061, XMPP 5222) on every worker,
// the link listener for edge-c, and the admin endpoint on the main loop. It never dials inward.
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/admin/admin_server.h"
#include "common/config/auth_db.h"
#include "common/config/edge_e_config.h"
#include "common/core/process.h"
#include "common/http/rate_limit.h"
#include "common/link/link_conn.h"
#include "common/media/media_metrics.h"
#include "common/mra/snapshot.h"
#include "common/net/listener.h"
#include "common/net/tls_context.h"
#include "common/obs/metrics.h"
#include "edge-e/media_relay.h"

namespace edgepair::edge_e {

// Everything a worker needs that is rebuilt on reload: swapped whole, never edited in place.
struct Generation {
    config::EdgeEConfig cfg;
    std::shared_ptr<net::TlsServerContext> https_tls, sip_tls, link_tls;
    std::shared_ptr<const config::AuthDb> auth_db;
    // Requests per client address on 8443, shared by every worker; null when http.rate_limit is off. Kept
    // across reloads that do not change its settings, so a SIGHUP does not hand everyone a fresh burst.
    std::shared_ptr<http::KeyedRateLimiter> rate_limiter;
};

class ClientSession {
  public:
    virtual ~ClientSession() = default;
};

class EdgeE;

// Per-worker state; lives on and is only touched from its worker's thread.
class WorkerState {
  public:
    WorkerState(EdgeE& app, core::Worker& w) : app_(app), worker_(w) {}
    core::Worker& worker() { return worker_; }
    EdgeE& app() { return app_; }
    std::shared_ptr<const Generation> gen() const { return gen_; }
    void apply(std::shared_ptr<const Generation> gen);
    void stop_listening();
    void add(std::unique_ptr<ClientSession> s);
    void remove(ClientSession* s);
    size_t sessions() const { return sessions_.size(); }

    // Traversal links that edge-c opened and the main thread handed to this worker.
    void accept_link(int fd);
    // An authenticated link on this worker (round-robin), or nullptr: sessions never hop threads.
    link::LinkConn* pick_link();
    void apply_snapshot(std::shared_ptr<const mra::Snapshot> snap) { snapshot_ = std::move(snap); }
    std::shared_ptr<const mra::Snapshot> snapshot() const { return snapshot_; }
    // Link states as JSON objects, refreshed on this worker and read by the admin thread.
    std::string links_json() const;
    int links_up() const { return links_up_.load(); }
    int links_total() const { return links_total_.load(); }
    MediaRelay* media() { return media_.get(); }

  private:
    void open_listeners();
    void refresh_link_status();
    EdgeE& app_;
    core::Worker& worker_;
    std::shared_ptr<const Generation> gen_;
    std::unique_ptr<net::Listener> https_, sip_, xmpp_;
    std::string https_addr_, sip_addr_, xmpp_addr_;
    std::unordered_map<ClientSession*, std::unique_ptr<ClientSession>> sessions_;
    bool stopped_ = false;
    std::vector<std::unique_ptr<link::LinkConn>> links_;
    size_t next_link_ = 0;
    std::shared_ptr<const mra::Snapshot> snapshot_;
    std::unique_ptr<core::Timer> status_timer_;
    mutable std::mutex status_mu_;
    std::string links_json_;
    std::atomic<int> links_up_{0}, links_total_{0};
    std::unique_ptr<MediaRelay> media_; // created once: media settings need a restart
};

class EdgeE {
  public:
    EdgeE(std::string config_path, config::EdgeEConfig cfg);
    ~EdgeE();
    int run();
    obs::Registry& metrics() { return metrics_; }
    std::atomic<int64_t>& open_sessions() { return open_sessions_; }

    struct Counters {
        obs::Counter* tls_handshake_failures;
        obs::Counter* http_requests;
        obs::Counter* http_rejected;
        obs::Counter* http_rate_limited;   // 429 answers
        obs::Counter* http_rate_untracked; // let through because the rate table was full
        obs::Counter* http2_connections;
        obs::Counter* http2_streams;
    };
    Counters& counters() { return counters_; }
    // A control message from edge-c (any worker's link); applied on the main loop.
    void on_control_message(std::string msg);
    void link_closed(unsigned worker);
    size_t worker_count() const { return workers_.size(); }
    const media::MediaMetrics& media_metrics() const { return media_metrics_; }

  private:
    Result<std::shared_ptr<const Generation>> build(config::EdgeEConfig cfg);
    void reload();
    void drain();
    std::string status_json();
    std::string ready_reason();
    void open_link_listener();

    std::string config_path_;
    obs::Registry metrics_;
    Counters counters_{};
    media::MediaMetrics media_metrics_;
    std::unique_ptr<core::Process> process_;
    std::unique_ptr<admin::Server> admin_;
    std::shared_ptr<const Generation> gen_;
    std::vector<std::unique_ptr<WorkerState>> workers_;
    std::unique_ptr<net::Listener> link_listener_;
    std::vector<int> pending_links_; // main loop only: links posted to a worker not yet counted there
    std::string link_listen_addr_;
    std::shared_ptr<const mra::Snapshot> snapshot_;
    uint64_t snapshots_applied_ = 0;
    std::atomic<int64_t> open_sessions_{0};
    uint64_t started_ms_ = 0;
    uint64_t reloads_ = 0;
    bool draining_ = false;
    std::unique_ptr<core::Timer> drain_timer_;
};

} // namespace edgepair::edge_e
