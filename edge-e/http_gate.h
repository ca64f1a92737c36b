#pragma once
// The one request gate on edge-e 8443, shared by the HTTP/1.1 and HTTP/2 sessions: whatever the framing,
// a request reaches the link only after the same decisions in the same order (nginx phases, kept small):
//   rate limit per client -> MRA path normalised -> configuration present -> domain known -> service known
//   -> allow list (proxy paths; edge-c checks again) -> a link is up
// and then carries the same link headers: the client's end-to-end fields (never a client's x-edge-*,
// x-client-addr, x-link-* or x-tunnel: edge-c trusts those from edge-e only) plus edge-e's facts.
#include <string>
#include <string_view>

#include "common/http/h1_parser.h"
#include "common/link/link_conn.h"
#include "common/net/address.h"
#include "edge-e/edge_e.h"

namespace edgepair::edge_e {

struct GateResult {
    // Non-zero: answer the client locally with this status and message; nothing was sent on the link.
    int status = 0;
    std::string message;
    uint64_t retry_after_s = 0; // 429 only
    // status == 0: open a stream on `link` with these headers.
    link::LinkConn* link = nullptr;
    link::Headers headers;
};

// `req.headers` must hold the Host (HTTP/2: from :authority). Counts what it refuses.
GateResult gate_request(WorkerState& ws, const http::RequestHead& req, const net::SockAddr& peer);

// Counts a request refused before the gate (parse errors) under edgepair_http_rejected_requests_total.
void count_reject(WorkerState& ws, const std::string& reason);
// Fields that never cross edge-e in either direction: connection-scoped ones (RFC 9110 7.6.1, RFC 9113
// 8.2.2) and the link's own trusted headers.
bool hop_by_hop(std::string_view name);
const char* reason_phrase(int status);

} // namespace edgepair::edge_e
