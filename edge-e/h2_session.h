#pragma once
// HTTP/2 towards clients on 8443 (ALPN h2). The HTTPS session owns the TLS connection and hands it to
// this once the handshake picked h2; from then on every byte in and out goes through here.
#include <memory>
#include <string_view>

#include "common/core/failure.h"
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

// A request whose link stream died before any response head may be sent again, once, on another link
// (HAProxy's retry-on conn-failure): only when none of its body went out, and only when edge-c cannot have
// acted on it: the peer refused the stream (REFUSED_STREAM: RFC 9113 8.7 says it was not processed), or the
// whole link was lost under a request with a safe method (RFC 9110 9.2.2: GET, HEAD, OPTIONS), which may
// have reached the upstream but is harmless to repeat.
inline bool link_loss_retryable(const core::Failure& failure, std::string_view method, bool body_sent) {
    if (body_sent || !failure) return false;
    if (failure.kind == core::FailureKind::Refused) return true;
    bool lost = failure.side == core::Side::Link &&
                (failure.kind == core::FailureKind::Lost || failure.kind == core::FailureKind::Closed);
    return lost && (method == "GET" || method == "HEAD" || method == "OPTIONS");
}

// Sends the server preface (SETTINGS) at once. `conn` must outlive the session.
std::unique_ptr<H2Session> make_h2_session(WorkerState& ws, net::Connection& conn);

} // namespace edgepair::edge_e
