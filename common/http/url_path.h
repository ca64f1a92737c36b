#pragma once
// Request-target normalisation and host/port canonicalisation, applied before any allow-list decision.
// The rule that matters: the path the allow list matches must be the path the upstream will interpret,
// so anything an upstream (Tomcat, nginx, IIS) could read differently from us is rejected, not guessed.
// What the allow list matches (match_path) is also what the proxy forwards (common/mra/request_gate.h), so
// matching and forwarding can never disagree.
// docs/SECURITY.md, "HTTP request normalisation and smuggling defence", lists every rule.
#include "common/core/result.h"

#include <cstdint>
#include <string>
#include <string_view>

namespace edgepair::http {

enum class PathReason : uint8_t {
    None,
    Empty,
    TooLong,
    AsteriskForm,
    AbsoluteForm,      // "http://h/p" while the policy does not allow it
    AuthorityForm,     // "host:port"
    BadForm,           // none of the RFC 9112 forms
    Fragment,          // '#' never belongs in a request-target
    BadChar,           // a byte RFC 3986 does not allow raw (SP, '"', '<', '|', '{', ...)
    NonAscii,          // raw byte >= 0x80 (percent-encoded ones are kept encoded)
    ControlChar,       // raw or encoded NUL/CR/LF/other CTL
    Backslash,         // raw '\' or %5C: IIS and some Java stacks treat it as '/'
    BadPercent,        // '%' not followed by two hex digits
    EncodedSlash,      // %2F: some upstreams decode it into a separator
    EncodedDotSegment, // %2e%2e, .%2e: decoded late by some upstreams into a real '..'
    DoubleEncoding,    // %25 followed by two hex digits (%252e): decoded twice somewhere
    DotSegmentParams,  // "..;x" or ".;x": Tomcat strips ;params, then climbs
    AboveRoot,         // dot segments climbing above '/'
    EmptySegment,      // "//" inside a path (unless the policy collapses it)
    BadHost,
    BadPort,
};

std::string_view path_reason_name(PathReason r);

struct PathPolicy {
    bool allow_absolute_form = false; // "http(s)://authority/path": authority canonicalised into host/port
    bool collapse_slashes = false;    // false: "/a//b" is rejected; true: read as "/a/b"
    size_t max_length = 8192;
};

struct NormalisedTarget {
    std::string path;       // starts with '/', dot segments resolved, ;params kept (logs, Tomcat's view)
    std::string match_path; // path with ;params removed from each segment: match allow lists on this, and
                            // forward this (nginx and others read ";x" as part of the segment's name)
    std::string query;      // without '?', percent hex uppercased, otherwise as received
    bool has_query = false;
    // absolute-form only:
    std::string scheme;
    std::string host; // canonical (see canonical_host)
    uint16_t port = 0;

    // path + optional "?query": feeding it back to normalise_target gives the same result.
    std::string to_target() const { return has_query ? path + "?" + query : path; }
};

// Errors carry "<reason name>: detail" as their message; `why`, when given, receives the reason.
Result<NormalisedTarget> normalise_target(std::string_view raw, const PathPolicy& policy = {},
                                          PathReason* why = nullptr);

// Lowercase DNS name without one trailing dot; IPv4 only as canonical dotted quad (0x7f.1, 127.1,
// 0177.0.0.1 and 2130706433 are rejected: resolvers read them as loopback, allow lists do not);
// IPv6 only bracketed, returned in inet_ntop's compressed form, e.g. "[2001:db8::1]". No zone ids.
Result<std::string> canonical_host(std::string_view host);

enum class HostKind { Name, IPv4, IPv6 };
HostKind host_kind(std::string_view canonical);

// 1..65535, decimal, no sign, no leading zero.
Result<uint16_t> parse_port(std::string_view s);
// 80 for http, 443 for https (case-insensitive), 0 for anything else.
uint16_t default_port(std::string_view scheme);

struct Authority {
    std::string host; // canonical
    uint16_t port = 0;
};
// "host[:port]" as in a Host field or an absolute URI; no userinfo. Missing port: the scheme's default.
Result<Authority> parse_authority(std::string_view authority, std::string_view scheme);

// The stable label before ':' in messages produced by this module and b64_domain (metric label).
std::string_view error_label(const Error& e);

} // namespace edgepair::http
