#pragma once
// edge-e, the external edge: client listeners (HTTPS 8443, SIP/TLS 5061, XMPP 5222) on every worker,
// the link listener for edge-c, and the admin endpoint on the main loop. It never dials inward.
#include <atomic>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/admin/admin_server.h"
#include "common/config/edge_e_config.h"
#include "common/core/process.h"
#include "common/net/listener.h"
#include "common/net/tls_context.h"
#include "common/obs/metrics.h"

namespace edgepair::edge_e {

// Everything a worker needs that is rebuilt on reload: swapped whole, never edited in place.
struct Generation {
    config::EdgeEConfig cfg;
    std::shared_ptr<net::TlsServerContext> https_tls, sip_tls;
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

  private:
    void open_listeners();
    EdgeE& app_;
    core::Worker& worker_;
    std::shared_ptr<const Generation> gen_;
    std::unique_ptr<net::Listener> https_, sip_, xmpp_;
    std::string https_addr_, sip_addr_, xmpp_addr_;
    std::unordered_map<ClientSession*, std::unique_ptr<ClientSession>> sessions_;
    bool stopped_ = false;
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
    };
    Counters& counters() { return counters_; }

  private:
    Result<std::shared_ptr<const Generation>> build(config::EdgeEConfig cfg);
    void reload();
    void drain();
    std::string status_json();
    std::string ready_reason();

    std::string config_path_;
    obs::Registry metrics_;
    Counters counters_{};
    std::unique_ptr<core::Process> process_;
    std::unique_ptr<admin::Server> admin_;
    std::shared_ptr<const Generation> gen_;
    std::vector<std::unique_ptr<WorkerState>> workers_;
    std::atomic<int64_t> open_sessions_{0};
    uint64_t started_ms_ = 0;
    uint64_t reloads_ = 0;
    bool draining_ = false;
};

} // namespace edgepair::edge_e
