#include "common/sip/framer.h"
#include "common/sip/stun.h"

#include <catch2/catch.hpp>

#include <string>

using namespace edgepair::sip;

namespace {

// A Binding request as Jabber's keep-alive sends it: header only, 12-byte transaction id.
std::string binding_request(std::string tid = "ABCDEFGHIJKL") {
    std::string m("\x00\x01\x00\x00\x21\x12\xA4\x42", 8);
    return m + tid;
}

const std::string kRegister = "REGISTER sip:example.com SIP/2.0\r\n"
                              "Via: SIP/2.0/TLS 198.51.100.23:51234;branch=z9hG4bK1;rport\r\n"
                              "From: <sip:a@example.com>;tag=1\r\nTo: <sip:a@example.com>\r\n"
                              "Call-ID: c1\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n";

} // namespace

TEST_CASE("stun: sniff tells STUN from SIP and from garbage") {
    CHECK(stun::sniff("REGISTER").kind == stun::Sniff::not_stun);
    CHECK(stun::sniff(std::string("\x00\x01\x00", 3)).kind == stun::Sniff::need_more);
    auto r = stun::sniff(binding_request());
    CHECK(r.kind == stun::Sniff::stun);
    CHECK(r.size == 20);
    // Wrong cookie: framing is lost.
    std::string bad = binding_request();
    bad[5] = 0;
    CHECK(stun::sniff(bad).kind == stun::Sniff::bad);
    CHECK(stun::sniff(bad.substr(0, 6)).kind == stun::Sniff::bad);
    // A length that is not a multiple of 4, or over the keep-alive bound.
    std::string odd = binding_request();
    odd[3] = 3;
    CHECK(stun::sniff(odd).kind == stun::Sniff::bad);
    std::string big = binding_request();
    big[2] = 0x10;
    CHECK(stun::sniff(big).kind == stun::Sniff::bad);
}

TEST_CASE("stun: Binding success carries the XOR-mapped address and the transaction id") {
    auto h = stun::parse_header(binding_request());
    REQUIRE(h);
    CHECK(h->type == stun::kBindingRequest);
    std::string r = stun::binding_success(*h, "192.0.2.1", 32853);
    REQUIRE(r.size() == 32);
    CHECK(uint8_t(r[0]) == 0x01);
    CHECK(uint8_t(r[1]) == 0x01);
    CHECK(uint8_t(r[3]) == 12);
    CHECK(r.substr(8, 12) == "ABCDEFGHIJKL");
    CHECK(uint8_t(r[20]) == 0x00);
    CHECK(uint8_t(r[21]) == 0x20); // XOR-MAPPED-ADDRESS
    CHECK(uint8_t(r[25]) == 0x01); // IPv4
    CHECK(((uint8_t(r[26]) << 8) | uint8_t(r[27])) == (32853 ^ 0x2112));
    CHECK((uint8_t(r[28]) ^ 0x21) == 192);
    CHECK((uint8_t(r[29]) ^ 0x12) == 0);
    CHECK((uint8_t(r[30]) ^ 0xA4) == 2);
    CHECK((uint8_t(r[31]) ^ 0x42) == 1);
    CHECK(stun::binding_success(*h, "::1", 5061).size() == 44);
    CHECK(stun::binding_success(*h, "not-an-ip", 5061).empty());
}

TEST_CASE("framer: STUN between SIP messages is reported, split across reads, only when enabled") {
    FramerLimits on;
    on.stun = true;
    Framer f(on);
    std::string wire = kRegister + binding_request() + "\r\n\r\n" + kRegister;
    // Byte by byte: every boundary is split.
    int msgs = 0, stuns = 0, pings = 0;
    for (char c : wire) {
        f.feed(std::string_view(&c, 1));
        for (;;) {
            auto ev = f.next();
            if (ev.type == FrameEventType::need_more) break;
            REQUIRE(ev.type != FrameEventType::error);
            if (ev.type == FrameEventType::message) ++msgs;
            if (ev.type == FrameEventType::stun) {
                ++stuns;
                CHECK(ev.message == binding_request());
            }
            if (ev.type == FrameEventType::keepalive_ping) ++pings;
        }
    }
    CHECK(msgs == 2);
    CHECK(stuns == 1);
    CHECK(pings == 1);

    Framer off; // edge-c towards Unified CM: a STUN byte is not SIP
    off.feed(binding_request());
    auto ev = off.next();
    REQUIRE(ev.type == FrameEventType::error);
    CHECK(ev.error->fatal);

    Framer garbage(on);
    std::string g = binding_request();
    g[4] = 'x';
    garbage.feed(g);
    ev = garbage.next();
    REQUIRE(ev.type == FrameEventType::error);
    CHECK(ev.error->code == FrameErrorCode::bad_start_line);
}
