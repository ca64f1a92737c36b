#pragma once
// Framing of media between edge-e and edge-c. Every RTP/RTCP packet crossing the traversal zone is sent to
// a per-worker multiplexed port of edge-e's traversal range (default 36000-36011), prefixed with 8 bytes:
//
//   0xEB 0x50 | flags (bit 0: RTCP) | 0 | channel id (32 bits, big endian)
//
// The channel id names one media stream of one call; edge-e assigns it at random when edge-c opens the media
// session over the link's control stream, and accepts traversal packets only from the link peer's IP.
#include <cstddef>
#include <cstdint>
#include <optional>

namespace edgepair::media {

inline constexpr size_t kTraversalHeader = 8;
inline constexpr size_t kMaxDatagram = 2048; // larger RTP packets are dropped and counted

struct TraversalHeader {
    uint32_t channel = 0;
    bool rtcp = false;
};

inline void write_traversal_header(uint8_t* out, TraversalHeader h) {
    out[0] = 0xEB;
    out[1] = 0x50;
    out[2] = h.rtcp ? 1 : 0;
    out[3] = 0;
    out[4] = uint8_t(h.channel >> 24);
    out[5] = uint8_t(h.channel >> 16);
    out[6] = uint8_t(h.channel >> 8);
    out[7] = uint8_t(h.channel);
}

inline std::optional<TraversalHeader> read_traversal_header(const uint8_t* p, size_t len) {
    if (len < kTraversalHeader || p[0] != 0xEB || p[1] != 0x50 || (p[2] & ~1) != 0 || p[3] != 0)
        return std::nullopt;
    TraversalHeader h;
    h.rtcp = p[2] & 1;
    h.channel = uint32_t(p[4]) << 24 | uint32_t(p[5]) << 16 | uint32_t(p[6]) << 8 | uint32_t(p[7]);
    return h;
}

} // namespace edgepair::media
