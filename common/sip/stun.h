#pragma once
// STUN keep-alives on a SIP stream (RFC 5626 4.4.2, RFC 5389). Jabber sends a Binding request every 30 s on
// its SIP/TLS flow once the registrar's 200 advertises X-cisco-supports-AR_SK (Cisco TechNote 217244,
// confirmed from its log excerpt); the answer it waits for (3 s timeout, then registration fail-over) is
// taken to be a plain RFC 5389 Binding success response: the TechNote shows no capture of the answer
// (assumption).
//
// On a stream a STUN message is told from SIP by its first byte (0x00 or 0x01: the two top bits of the
// message type are zero, which no SIP start line or CRLF keep-alive can begin with) and the magic cookie
// 0x2112A442 at bytes 4..7; its length is the 20-byte header plus the header's length field (RFC 5389 6).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace edgepair::sip::stun {

inline constexpr size_t kHeader = 20;
inline constexpr uint32_t kMagicCookie = 0x2112A442;
// A keep-alive Binding request carries at most a FINGERPRINT and a SOFTWARE attribute; anything longer on
// a SIP flow is not a keep-alive.
inline constexpr size_t kMaxMessage = 548;
inline constexpr uint16_t kBindingRequest = 0x0001;
inline constexpr uint16_t kBindingIndication = 0x0011;
inline constexpr uint16_t kBindingSuccess = 0x0101;

enum class Sniff : uint8_t {
    not_stun,  // the bytes cannot start a STUN message
    need_more, // could be STUN: fewer than 20 bytes buffered
    stun,      // a STUN header; `size` bytes in all
    bad,       // starts like STUN (first byte 0x00/0x01) but is not a valid one: framing is lost
};

struct SniffResult {
    Sniff kind = Sniff::not_stun;
    size_t size = 0;
};

// Classifies what starts at `d` (the start of a message on the stream).
SniffResult sniff(std::string_view d);

struct Header {
    uint16_t type = 0;
    std::string transaction_id; // 12 bytes
};

// The header of one whole STUN message (as framed by sniff).
std::optional<Header> parse_header(std::string_view msg);

// A Binding success response to `request` with XOR-MAPPED-ADDRESS naming `ip`:`port` (RFC 5389 15.2), the
// address the client's flow comes from. Empty when `ip` is not a numeric IPv4/IPv6 address.
std::string binding_success(const Header& request, std::string_view ip, uint16_t port);

} // namespace edgepair::sip::stun
