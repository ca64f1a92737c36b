#pragma once
// What one worker counts during a run. Each worker owns its Stats (no sharing on the hot path); the main
// thread merges copies for the progress line and the final summary.
#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include "tools/edge-load/histogram.h"

namespace edgepair::load {

enum class ErrKind : uint8_t {
    Connect,   // TCP connect failed (refused, unreachable, socket())
    Tls,       // TLS handshake failed (alert, verification, peer closed during the handshake)
    Timeout,   // no answer (handshake or response) within --timeout
    Http4xx,   // a response 400..499 that was not --expect-status
    Http5xx,   // a response 500..599 that was not --expect-status
    Protocol,  // unparsable response, unexpected status, bytes without a request, close before the response
    Dropped,   // open loop only: an arrival found the client's backlog full (the target cannot keep up)
    Auth,      // credentials refused: HTTP 401 (mra-login), SIP 401/407 to our digest or 403, SASL <failure/>
    Dns,       // mra-login: SRV or address look-up failed, or named a non-loopback address (never dialled)
    SipStatus, // a final SIP response other than 2xx (and other than an authentication refusal)
    Xmpp,      // an XMPP stream error, an <iq type='error'/> during login, a bounced message
    Closed,    // the server ended a session that should have stayed up (sip-register, xmpp)
    Media,     // sip-call --media-seconds: no SRTP came back, or some failed authentication
    Count_
};
inline constexpr size_t kErrKinds = size_t(ErrKind::Count_);
std::string_view err_name(ErrKind k);

struct Stats {
    uint64_t ok = 0;        // operations that succeeded (a response with the expected status, a handshake)
    uint64_t attempts = 0;  // operations started
    uint64_t responses = 0; // HTTP responses received, any status
    std::array<uint64_t, 6> status_class{}; // [1] 1xx .. [5] 5xx, [0] other
    uint64_t connects = 0;                  // TCP connections established
    uint64_t handshakes = 0;                // TLS handshakes completed
    uint64_t unfinished = 0;                // operations still in flight when the run stopped (not errors)
    std::array<uint64_t, kErrKinds> errors{};
    // idle scenario
    uint64_t idle_established = 0; // connections that completed their handshake (and optional request)
    uint64_t idle_closed_by_peer = 0;
    uint64_t idle_alive_at_end = 0;
    uint64_t open_conns = 0; // gauge at the time of the snapshot
    // sip-register / xmpp: long-lived sessions (a registration, a logged-in stream)
    uint64_t sessions_up = 0;        // gauge at the time of the snapshot
    uint64_t sessions_up_at_end = 0; // when the run stopped
    uint64_t logins = 0; // sessions set up (first REGISTER answered 2xx, XMPP login done), re-logins too
    uint64_t auth_challenges = 0;   // SIP 401/407 answered with digest credentials
    uint64_t keepalive_pings = 0;   // SIP CRLFCRLF / XMPP whitespace sent
    uint64_t keepalive_pongs = 0;   // SIP CRLF answers (XMPP whitespace has none)
    uint64_t invites_sent = 0;      // sip-call: calls started (INVITEs sent, not counting retries)
    uint64_t calls_answered = 0;    // sip-call: INVITEs answered 2xx
    uint64_t media_sent = 0;        // sip-call --media-seconds: SRTP packets sent
    uint64_t media_received = 0;    //   ... and back, authenticated with the answer's key
    uint64_t media_bad = 0;         //   ... back failing authentication, or from another address
    uint64_t messages_sent = 0;     // xmpp
    uint64_t messages_received = 0; // xmpp: our own messages, delivered to their recipient session
    Histogram latency;              // µs, successful operations only
    // hold scenario (latency: connect + handshake of each connection that got its request out)
    uint64_t hold_established = 0;    // connections that got their unfinished request out, re-opens included
    uint64_t hold_requests = 0;       // unfinished requests sent (h1: one per connection; h2: one per stream)
    uint64_t hold_answered = 0;       // of them, answered by the server (h1 status line, h2 HEADERS)
    uint64_t hold_reset = 0;          // h2 streams the server reset (RST_STREAM)
    uint64_t hold_goaway = 0;         // h2 GOAWAY frames received
    uint64_t hold_closed_by_peer = 0; // held connections the server closed
    uint64_t hold_reopened = 0;       // --reopen: connections opened again after the server closed them
    uint64_t hold_open_requests = 0;  // gauge: requests neither answered nor reset, on live connections
    uint64_t hold_peak_open_requests = 0; // highest gauge seen at a once-per-second publish (merged: summed)
    uint64_t hold_alive_at_end = 0;
    uint64_t hold_open_requests_at_end = 0;
    Histogram hold_answer_after_ms; // request sent -> answer (ms)
    Histogram hold_close_after_ms;  // request sent -> the server closed the connection (ms)
    Histogram hold_closed_at_ms;    // start of the run -> the server closed the connection (ms)
    // sign-in: wrong-password sign-ins are neither successes nor errors when refused with 401
    uint64_t wrong_sent = 0;    // sign-ins made with a wrong password
    uint64_t wrong_refused = 0; // of them, refused 401 at get_edge_config, as they must be
    uint64_t tokens = 0;        // edge tokens received (cookie X-Auth on get_edge_config)
    std::vector<std::array<uint64_t, 3>> by_target; // per --target: sign-ins ok, refused as wrong, failed
    // Per-step latencies (µs) of multi-step operations; names from step_names(scenario). Empty for the
    // single-step scenarios.
    std::vector<Histogram> steps;

    uint64_t errors_total() const;
    void err(ErrKind k) { ++errors[size_t(k)]; }
    void step(size_t i, uint64_t us) {
        if (i < steps.size()) steps[i].record(us);
    }
    void merge(const Stats& o);
};

} // namespace edgepair::load
