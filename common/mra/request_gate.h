#pragma once
// The one request gate of the HTTP edge. edge-e (edge-e/http_gate.cpp, before a request may take a link
// stream) and edge-c (edge-c/http_service.cpp, before it answers or proxies a link stream) both call
// `decide`, so the two edges refuse the same requests for the same reasons, with the same metric labels:
//
//   rate limit (edge-e's hook) -> header policy -> MRA path normalised -> configuration present
//   -> domain known -> service known -> method (edge config and SSO) -> allow list (proxy paths)
//
// `decide` is a pure function of the snapshot and the request: no clock, no I/O, no counters. The caller
// counts the verdict under the names below with its own `side` label and logs `log`.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/http/b64_domain.h"
#include "common/mra/snapshot.h"

namespace edgepair::mra {

// Counted by both edges with labels {side="edge-e"|"edge-c", reason=<label>}.
inline constexpr const char* kRejectedMetric = "edgepair_http_rejected_requests_total";
inline constexpr const char* kRejectedHelp = "Client HTTP requests refused by an edge's own decision";
// Allow-list refusals, in addition: {side, reason=block_stage_label(stage)}: host, port, scheme, deployment,
// path, method (common/mra/allow_list.h, BlockStage).
inline constexpr const char* kBlockedMetric = "edgepair_http_blocked_total";
inline constexpr const char* kBlockedHelp = "Proxied HTTP requests refused by the allow list";

enum class GateReason : uint8_t {
    Pass,
    RateLimited,            // 429 "rate_limited"
    LookalikeHeader,        // 400 "lookalike_header"
    DuplicateAuthorization, // 400 "duplicate_authorization"
    BadPath,                // 400, label: the normaliser's own reason ("above_root", "bad_domain", ...)
    NoConfig,               // 503 "no_config"
    UnknownDomain,          // 404 "unknown_domain"
    UnknownService,         // 404 "unknown_service"
    MethodNotAllowed,       // 405 "method_not_allowed" (get_edge_config, get_edge_sso, authorize: GET and
                            // HEAD; fedlet: POST)
    Blocked,                // 403 "blocked" (allow list)
};
std::string_view gate_reason_label(GateReason r);

// What the rate-limit hook found before the gate ran (edge-e asks its per-client limiter first, so that a
// client over its budget costs a table lookup and no parsing). edge-c has no per-client limit: nullopt.
struct RateCheck {
    bool limited = false;
    uint64_t retry_after_s = 0;
};

struct GateRequest {
    std::string_view method;
    std::string_view target; // the request-target as received (HTTP/2: :path)
    // Every field name of the request, in order; pseudo-headers are skipped.
    std::vector<std::string_view> field_names;
    std::optional<RateCheck> rate;
};

struct GateVerdict {
    GateReason reason = GateReason::Pass;
    int status = 0;             // 0: passed
    std::string label;          // stable metric label (see GateReason)
    std::string message;        // short text for the client; never names the allow-list rule or reason
    std::string log;            // prose for the log line, with the detail
    uint64_t retry_after_s = 0; // 429
    std::string allow;          // 405: the Allow field value
    BlockStage block_stage = BlockStage::None; // Blocked: where the allow list refused it

    // Filled as far as the gate got (complete once passed):
    http::MraPath path;
    std::string deployment;
    // Proxy only: the canonical path the allow list matched, plus "?query" when there was one. It is the
    // only request-target that may leave edge-c: ;params are dropped, never forwarded (docs/SECURITY.md,
    // "Path parameters").
    std::string forward_target;
    bool params_dropped = false; // the received path carried ;params that forward_target does not
    // Proxy: the allowing rule is for the signed-in user's own resources (AllowRule::own_user_only), and
    // this is the user id the path names. edge-c lets the request through only when the credentials it
    // checks are that user's; edge-e, which does not know the user, passes it on.
    std::string owner_user;

    bool passed() const { return reason == GateReason::Pass; }
};

// `snap` may be null (no configuration yet).
GateVerdict decide(const Snapshot* snap, const GateRequest& req);

} // namespace edgepair::mra
