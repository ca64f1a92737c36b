#pragma once
// edge-e's side of the one request gate (common/mra/request_gate.h), shared by the HTTP/1.1 and HTTP/2
// sessions: whatever the framing, a request reaches the link only after the same decisions in the same
// order, the same ones edge-c makes again:
//   rate limit per client -> header policy -> MRA path normalised -> configuration present -> domain known
//   -> service known -> method -> allow list (proxy paths) -> a link is up
// and then carries the same link headers: the client's end-to-end fields as the header policy
// (common/http/header_policy.h, Hop::ClientRequest) lets them through, never a client's x-edge-*,
// x-client-addr, x-link-*, x-tunnel or routing-override field, plus edge-e's facts.
#include <string>
#include <string_view>

#include "common/http/h1_parser.h"
#include "common/link/link_conn.h"
#include "common/net/address.h"
#include "edge-e/edge_e.h"

namespace edgepair::edge_e {

struct GateResult {
    // Every request gets one, refused or not: it names the request in both edges' access logs and crosses
    // the link as x-edge-request-id (common/obs/access_log.h).
    std::string request_id;
    // Non-zero status: the gate's reason label (the edgepair_http_rejected_requests_total label).
    std::string reason;
    // Non-zero: answer the client locally with this status and message; nothing was sent on the link.
    int status = 0;
    std::string message;
    uint64_t retry_after_s = 0; // 429 only
    std::string allow;          // 405 only: the Allow field value
    // Set: not a refusal but edge-e's own answer (get_edge_sso of an SSO domain without the internal check),
    // `message` is the whole body of this type.
    std::string content_type;
    // status == 0: open a stream on `link` with these headers (nullptr: no link up on this worker yet; the
    // session waits for one with WorkerState::wait_for_link).
    link::LinkConn* link = nullptr;
    link::Headers headers;
};

// `req.headers` must hold the Host (HTTP/2: from :authority). Counts what it refuses.
// `peer_text`: peer.str() when the caller already has it (one formatting per connection, not per request).
GateResult gate_request(WorkerState& ws, const http::RequestHead& req, const net::SockAddr& peer,
                        std::string_view peer_text = {});

// Counts a request refused on edge-e (parse errors and gate verdicts) under
// edgepair_http_rejected_requests_total{side="edge-e"}.
void count_reject(WorkerState& ws, std::string_view reason);
// Response fields that never reach a client: the header policy's Hop::ClientResponse (connection-scoped
// fields and the link's own trusted headers).
bool hop_by_hop(std::string_view name);
const char* reason_phrase(int status);

} // namespace edgepair::edge_e
