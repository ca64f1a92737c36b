#pragma once
// Header names (full and compact forms) and the structured header values routing needs:
// Via (RFC 3261 20.42), CSeq (20.16), Max-Forwards (20.22), Call-ID (20.8).
#include "common/core/result.h"
#include "common/sip/uri.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace edgepair::sip {

enum class HeaderId : uint8_t {
    other,
    accept_contact,
    allow,
    allow_events,
    call_id,
    contact,
    content_encoding,
    content_length,
    content_type,
    cseq,
    event,
    expires,
    from,
    identity,
    identity_info,
    max_forwards,
    path,
    proxy_require,
    record_route,
    refer_to,
    referred_by,
    reject_contact,
    request_disposition,
    require,
    route,
    session_expires,
    subject,
    supported,
    to,
    unsupported,
    via,
};

// Maps a received header name (any case, full or compact form) to its id.
HeaderId header_id(std::string_view name);
// The canonical full name for a known id ("Call-ID"); empty for HeaderId::other.
std::string_view header_name(HeaderId id);
// Headers whose value is a comma-separated list that may be split across lines (RFC 3261 7.3.1)
// and that a proxy manipulates element by element.
bool is_list_header(HeaderId id);

struct Via {
    std::string protocol = "SIP";
    std::string version = "2.0";
    std::string transport; // UDP, TCP, TLS, SCTP, WS, WSS or an extension token
    std::string host;
    std::optional<uint16_t> port;
    Params params;

    static Result<Via> parse(std::string_view value);
    static Result<void> parse_into(std::string_view value, Via& out); // into a default-constructed one

    std::optional<std::string_view> branch() const { return params.get("branch"); }
    // RFC 3261 branches start with the magic cookie and so are globally unique transaction ids.
    bool rfc3261_branch() const;
    std::string to_string() const;
};

inline constexpr std::string_view kMagicCookie = "z9hG4bK";

struct CSeq {
    uint32_t number = 0; // < 2**31 (RFC 3261 8.1.1.5)
    std::string method;

    static Result<CSeq> parse(std::string_view value);
};

// Max-Forwards: 1*DIGIT in 0..255; larger values are rejected (RFC 4475 scalar02).
Result<int> parse_max_forwards(std::string_view value);
bool valid_call_id(std::string_view value);
bool valid_method(std::string_view method);

} // namespace edgepair::sip
