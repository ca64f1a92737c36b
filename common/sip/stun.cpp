#include "common/sip/stun.h"

#include <arpa/inet.h>

#include <cstring>

namespace edgepair::sip::stun {

namespace {

uint16_t be16(const unsigned char* p) {
    return uint16_t((p[0] << 8) | p[1]);
}
uint32_t be32(const unsigned char* p) {
    return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}
void put16(std::string& out, uint16_t v) {
    out += char(v >> 8);
    out += char(v & 0xff);
}

} // namespace

SniffResult sniff(std::string_view d) {
    if (d.empty()) return {Sniff::need_more, 0};
    auto* p = reinterpret_cast<const unsigned char*>(d.data());
    if (p[0] > 0x01) return {Sniff::not_stun, 0};
    if (d.size() < kHeader) {
        // Check what is there of the cookie already, so garbage is refused as early as possible.
        static constexpr unsigned char cookie[4] = {0x21, 0x12, 0xA4, 0x42};
        for (size_t i = 4; i < d.size() && i < 8; ++i)
            if (p[i] != cookie[i - 4]) return {Sniff::bad, 0};
        return {Sniff::need_more, 0};
    }
    if (be32(p + 4) != kMagicCookie) return {Sniff::bad, 0};
    size_t len = be16(p + 2);
    // RFC 5389 6: attributes are padded to 4 bytes, so the length is a multiple of 4.
    if (len % 4 != 0 || kHeader + len > kMaxMessage) return {Sniff::bad, 0};
    return {Sniff::stun, kHeader + len};
}

std::optional<Header> parse_header(std::string_view msg) {
    auto s = sniff(msg);
    if (s.kind != Sniff::stun || s.size != msg.size()) return std::nullopt;
    auto* p = reinterpret_cast<const unsigned char*>(msg.data());
    Header h;
    h.type = be16(p);
    h.transaction_id.assign(msg.substr(8, 12));
    return h;
}

std::string binding_success(const Header& request, std::string_view ip, uint16_t port) {
    std::string host(ip);
    if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
    unsigned char addr[16];
    uint8_t family = 0;
    size_t alen = 0;
    if (inet_pton(AF_INET, host.c_str(), addr) == 1) {
        family = 0x01;
        alen = 4;
    } else if (inet_pton(AF_INET6, host.c_str(), addr) == 1) {
        family = 0x02;
        alen = 16;
    } else {
        return {};
    }
    // XOR-MAPPED-ADDRESS (RFC 5389 15.2): port XOR the cookie's top 16 bits, address XOR cookie || tid.
    unsigned char mask[16];
    mask[0] = 0x21;
    mask[1] = 0x12;
    mask[2] = 0xA4;
    mask[3] = 0x42;
    std::memcpy(mask + 4, request.transaction_id.data(), 12);
    std::string attr;
    put16(attr, 0x0020);
    put16(attr, uint16_t(4 + alen));
    attr += char(0);
    attr += char(family);
    put16(attr, uint16_t(port ^ 0x2112));
    for (size_t i = 0; i < alen; ++i)
        attr += char(addr[i] ^ mask[i]);

    std::string out;
    put16(out, kBindingSuccess);
    put16(out, uint16_t(attr.size()));
    out += "\x21\x12\xA4\x42";
    out += request.transaction_id;
    out += attr;
    return out;
}

} // namespace edgepair::sip::stun
