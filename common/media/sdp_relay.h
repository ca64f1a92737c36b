#pragma once
// The SDP edits of a media relay in the middle of an offer/answer exchange (issue #16): which m-lines it can
// relay, and the rewrite of one side's SDP into what the other side is told. edge-c's B2BUA decides per
// m-line (ports, keys, rtcp-mux) and hands the decision here as one LineView per m-line; this file owns the
// rules that keep both legs consistent:
// - an m-line the relay cannot carry is never dropped and never offered onward: it goes on with port 0, and
// the
//   answer back carries port 0 for it too;
// - attributes that describe the sender's own transport (ICE, a=rtcp, rtcp-mux, a=crypto, BUNDLE) never cross
//   the relay; the relay writes its own.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/media/sdp.h"

namespace edgepair::media {

// What a relay can carry for one m-line.
enum class RelayKind {
    None, // unsupported transport (TCP/BFCP, UDP/TLS/RTP/SAVPF, port counts, ...) or a disabled line (port 0)
    Rtp,  // RTP/AVP, RTP/SAVP, RTP/AVPF, RTP/SAVPF: SRTP terminated per leg, RTCP on port+1 or rtcp-mux
    Bfcp, // UDP/BFCP (RFC 8856): datagrams relayed as they are (BFCP has no media and no addresses in it)
};
RelayKind relay_kind(const SdpMedia& md);

// a=rtcp-mux (RFC 5761) or a=rtcp-mux-only (RFC 8858) in the section.
bool wants_rtcp_mux(const SdpMedia& md);

// How the relay rewrites m-line i for the side that receives the SDP.
struct LineView {
    bool relay = false;                // false: the line goes on rejected (port 0)
    uint16_t port = 0;                 // the relay's port facing the receiver
    std::string proto;                 // written as is when not empty
    std::optional<std::string> crypto; // the value of the one a=crypto to write
    bool rtcp_mux = false;             // write a=rtcp-mux
};

// Rewrites sdp for the receiving side: every m-line i with lines[i].relay gets the view's port, proto,
// a=crypto and a=rtcp-mux; every other m-line (also those past lines.size()) port 0. Transport attributes are
// stripped from every line, BUNDLE groups from the session, and every c= becomes one session c= with address.
void rewrite_for_relay(Sdp& sdp, std::span<const LineView> lines, std::string_view address);

// The RFC 5761 section 4 test on a packet received on a muxed RTP port: RTCP packet types 192-223 (SR, RR,
// SDES, BYE, APP, RTPFB, PSFB, ...) fall where RTP's marker bit + payload types 64-95 would be, which a muxed
// session must not use.
inline bool is_muxed_rtcp(const uint8_t* p, size_t len) {
    return len >= 8 && (p[0] >> 6) == 2 && p[1] >= 192 && p[1] <= 223;
}

} // namespace edgepair::media
