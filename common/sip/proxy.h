#pragma once
// What a SIP proxy does to a message on its way through (RFC 3261 16): validation of the fields
// routing depends on, Via / Route / Record-Route / Path handling, Contact rewriting, Max-Forwards,
// locally generated responses and the MRA method policy.
#include "common/core/result.h"
#include "common/sip/headers.h"
#include "common/sip/message.h"
#include "common/sip/uri.h"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace edgepair::sip {

struct ValidateOptions {
    // RFC 2543 peers send branches without the cookie; none exist on MRA, and a cookie-less
    // branch breaks transaction matching, so they are refused unless a caller opts in.
    bool require_magic_cookie = true;
    bool require_from_tag = true;
    // A Via sent-by of a broadcast or multicast address would make a response fan out
    // (RFC 4475 bcast); MRA never needs multicast.
    bool reject_broadcast_via = true;
};

struct RoutingInfo {
    std::string call_id;
    CSeq cseq;
    NameAddr from;
    NameAddr to;
    Via top_via;
    std::optional<int> max_forwards;
};

struct Validation {
    // 0 when valid; else the response to send: 400, 416 for a Request-URI scheme other than
    // sip/sips/tel (RFC 3261 16.3 step 2), 505 for a well-formed SIP version other than 2.0.
    int status = 0;
    std::string detail;
    bool ok() const { return status == 0; }
};

// Checks a parsed message before it is routed: SIP/2.0, a well-formed Request-URI (no headers
// component, no whitespace), exactly one Call-ID / CSeq / From / To, CSeq method equal to the request
// method, parseable From/To (From tag), every Via parseable and the top one with a branch, and a
// Max-Forwards in 0..255 when present. For responses the same minus the Request-URI and method.
// On failure *info is left partly filled.
Validation validate(const Message& m, const ValidateOptions& opts = {}, RoutingInfo* info = nullptr);

// Proxy-Require option tags not in `supported` (RFC 3261 16.3 step 5): non-empty means answer 420
// Bad Extension with those tags in an Unsupported header.
std::vector<std::string> unsupported_proxy_require(const Message& m,
                                                   const std::vector<std::string_view>& supported);

// Fills `n` bytes; the caller passes its CSPRNG so this code stays deterministic under test.
using RandomFill = std::function<void(uint8_t* out, size_t n)>;

// "z9hG4bK" + 26 base32 characters (128 random bits).
std::string make_branch(const RandomFill& random);

struct ViaSpec {
    std::string transport = "TLS";
    std::string host;
    std::optional<uint16_t> port;
    std::string branch;
    bool rport = false; // RFC 3581: ask for the response to come back to the source port
};

void push_via(Message& m, const ViaSpec& via);
// Removes the topmost Via element (splitting a comma-joined field if needed). False when none.
bool pop_via(Message& m);

// RFC 3581 / RFC 3261 18.2.1 on the request as it arrives from `src_ip`:`src_port`: the topmost Via gets
// `received=<src_ip>` when its sent-by host differs or it asked for `rport`, and a valueless `rport` is
// filled with `src_port`. Responses copy the Via, so the client learns the address the pair saw (a
// client behind NAT needs it to keep its registration on the right flow). False when there is no
// parseable top Via.
bool fill_received_rport(Message& m, std::string_view src_ip, uint16_t src_port);
// The same with the top Via already parsed (validate's RoutingInfo::top_via), so it is not parsed again.
bool fill_received_rport(Message& m, Via top, std::string_view src_ip, uint16_t src_port);

// Adds `<uri>` (plus header params) as the topmost element.
void push_record_route(Message& m, const Uri& uri);
void push_path(Message& m, const Uri& uri);
void push_route(Message& m, const Uri& uri);

// Removes the top Route element when `is_us` says its URI designates this proxy (RFC 3261 16.4).
// Returns true when one was removed; an unparseable top Route is an error.
Result<bool> pop_route_if(Message& m, const std::function<bool(const Uri&)>& is_us);

// Calls `rewrite` for every Contact URI ("*" excepted) and replaces it with the returned URI text when
// there is one (text, so a URI kept as text, like a client's Contact, is not parsed only to be written
// out again). Display name and header parameters (+sip.instance, reg-id, expires, q, ...) are kept.
// Returns how many were rewritten.
Result<size_t> rewrite_contacts(Message& m,
                                const std::function<std::optional<std::string>(const Uri&)>& rewrite);

enum class MaxForwardsResult : uint8_t {
    ok,        // decremented (or set to `initial` when absent, RFC 3261 16.6 step 3)
    exhausted, // was 0: answer 483 Too Many Hops (RFC 3261 16.3 step 3)
    invalid,   // unparseable or > 255: answer 400
};
MaxForwardsResult decrement_max_forwards(Message& m, int initial = 70);

std::string_view default_reason(int status);

// A response to `request` per RFC 3261 8.2.6: all Vias, From, To (with `to_tag` added when the To
// has no tag and status > 100), Call-ID, CSeq, Content-Length 0. An empty reason uses the default.
Message make_response(const Message& request, int status, std::string_view reason = {},
                      std::string_view to_tag = {});

// MRA method policy. Cisco's "Mobile and Remote Access via Cisco Expressway Deployment Guide"
// (X8.9, section "Unsupported Features When Using Mobile and Remote Access") states that features
// relying on SIP UPDATE (RFC 3311) do not work "because the Expressway does not support this
// method"; it names no response code. A method the element does not implement for any target is
// answered 501 Not Implemented (RFC 3261 21.5.2); 405 would claim the method exists but is not
// allowed for this Request-URI and would require an Allow header. So UPDATE gets 501. Unknown
// methods are relayed: a proxy need not understand a method to route it (RFC 3261 16).
struct MethodPolicy {
    int status = 0; // 0: relay
    std::string_view reason;
};
MethodPolicy mra_method_policy(std::string_view method);
// The methods the MRA path relays, for an Allow header on locally generated responses.
std::string_view mra_allow_header();

} // namespace edgepair::sip
