#pragma once
// HTTP/2 towards clients on 8443 (ALPN h2). The HTTPS session owns the TLS connection and hands it to
// this once the handshake picked h2; from then on every byte in and out goes through here.
#include <memory>
#include <string_view>

#include "common/net/connection.h"
#include "edge-e/edge_e.h"

namespace edgepair::edge_e {

class H2Session {
  public:
    virtual ~H2Session() = default;
    virtual void on_data(const char* data, size_t len) = 0;
    virtual void on_drained() = 0;
    // The connection is gone: every stream's link stream is cancelled. Nothing is called afterwards.
    virtual void on_conn_close(std::string_view why) = 0;
};

// Sends the server preface (SETTINGS) at once. `conn` must outlive the session.
std::unique_ptr<H2Session> make_h2_session(WorkerState& ws, net::Connection& conn);

} // namespace edgepair::edge_e
