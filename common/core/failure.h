#pragma once
// Why something failed, as data: a closed kind, the side that failed and a detail for people. Code that
// decides (retry or not, which status to send) and code that counts (metric labels) read the kind and the
// side; only logs read the detail. Nothing parses the detail text.
//
// Named Failure rather than Error: edgepair::Error is Result's error (a message with context).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace edgepair::core {

// Which party failed, seen from the edge that reports it.
enum class Side : uint8_t {
    Client,   // the client of edge-e (a phone or browser), or what stands for it across the link
    Edge,     // the other edge of the pair (the peer across the traversal link)
    Link,     // the traversal link itself (its connection, TLS, keep-alive)
    Upstream, // an enterprise server behind edge-c (Unified CM, IM and Presence, a web origin)
};
inline constexpr size_t kSideCount = size_t(Side::Upstream) + 1;

enum class FailureKind : uint8_t {
    None,      // no failure: a clean end
    Refused,   // refused before anything was acted on (HTTP/2 REFUSED_STREAM, RFC 9113 8.7): safe to retry
    Cancelled, // given up on purpose (HTTP/2 CANCEL)
    Reset,     // reset with another error code
    Protocol,  // the protocol was broken (malformed frames or messages)
    Limit,     // a limit was hit (ENHANCE_YOUR_CALM, sizes, counts)
    Lost,      // the connection underneath went away (closed, keep-alive timeout, GOAWAY with an error)
    Closed,    // closed on this side on purpose (shutdown, teardown)
    Timeout,   // no answer in time
};
inline constexpr size_t kFailureKindCount = size_t(FailureKind::Timeout) + 1;

// Stable lower-case labels for metrics and logs ("client", "edge", "link", "upstream"; "none",
// "refused", "cancelled", ...).
std::string_view label(Side s);
std::string_view label(FailureKind k);

struct Failure {
    FailureKind kind = FailureKind::None;
    Side side = Side::Link;
    std::string detail;

    Failure() = default;
    Failure(FailureKind k, Side s, std::string d = {}) : kind(k), side(s), detail(std::move(d)) {}

    // True when something failed.
    explicit operator bool() const { return kind != FailureKind::None; }
    // "<side> <kind>: <detail>" ("link lost: keep-alive timeout ..."); "ok" for no failure.
    std::string str() const;
};

} // namespace edgepair::core
