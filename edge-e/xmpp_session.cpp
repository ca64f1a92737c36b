#include "edge-e/sessions.h"

namespace edgepair::edge_e {

namespace {
// Until the xmpp session lands the listener holds the connection and counts it, so drain and /status see
// it; nothing is relayed.
class HoldXmpp final : public ClientSession {
  public:
    HoldXmpp(WorkerState& ws, int fd, SSL* ssl)
        : ws_(ws), conn_(std::make_unique<net::Connection>(ws.worker().loop(), fd, ssl, true)) {
        conn_->set_callbacks(
            {nullptr, [](const char*, size_t) {}, [this](std::string_view) { ws_.remove(this); }, nullptr});
        conn_->set_idle_timeout(uint64_t(ws.gen()->cfg.limits.client_idle_timeout.count()));
        conn_->start();
    }

  private:
    WorkerState& ws_;
    std::unique_ptr<net::Connection> conn_;
};
} // namespace

std::unique_ptr<ClientSession> make_xmpp_session(WorkerState& ws, int fd) {
    return std::make_unique<HoldXmpp>(ws, fd, nullptr);
}

} // namespace edgepair::edge_e
