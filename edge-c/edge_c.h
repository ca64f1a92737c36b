#pragma once
// edge-c, the internal edge: dials out to every edge-e peer over the traversal link, discovers the
// Unified CM / IM&P / Unity Connection nodes, and serves the streams edge-e opens towards them.
// It accepts no connection from outside (the admin endpoint listens on a management address).
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "common/admin/admin_server.h"
#include "common/config/edge_c_config.h"
#include "common/core/process.h"
#include "common/net/tls_context.h"
#include "common/obs/metrics.h"

namespace edgepair::edge_c {

struct Generation {
    config::EdgeCConfig cfg;
    std::shared_ptr<net::TlsClientContext> link_tls; // client cert + trusted CAs for edge-e
};

class EdgeC {
  public:
    EdgeC(std::string config_path, config::EdgeCConfig cfg);
    ~EdgeC();
    int run();
    obs::Registry& metrics() { return metrics_; }

  private:
    Result<std::shared_ptr<const Generation>> build(config::EdgeCConfig cfg);
    void reload();
    void drain();
    std::string status_json();
    std::string ready_reason();

    std::string config_path_;
    obs::Registry metrics_;
    std::unique_ptr<core::Process> process_;
    std::unique_ptr<admin::Server> admin_;
    std::shared_ptr<const Generation> gen_;
    uint64_t started_ms_ = 0;
    uint64_t reloads_ = 0;
    bool draining_ = false;
};

} // namespace edgepair::edge_c
