#include "common/media/sdp_relay.h"
#include "media_test_util.h"

#include <catch2/catch.hpp>

using namespace edgepair::media;
using edgepair::media::test::crlf;
using edgepair::media::test::kJabberOffer;

namespace {

Sdp parse(std::string_view lf) {
    auto r = Sdp::parse(crlf(lf));
    REQUIRE(r);
    return *r;
}

std::vector<std::string> attr_names(const SdpMedia& md) {
    std::vector<std::string> out;
    for (const auto& l : md.lines)
        if (l.type == 'a') out.push_back(l.value.substr(0, l.value.find(':')));
    return out;
}

constexpr std::string_view kAvOffer = R"(v=0
o=- 1 1 IN IP4 10.0.0.5
s=-
t=0 0
a=group:BUNDLE 0 1
a=group:LS 0 1
m=audio 5000 RTP/SAVP 0 101
c=IN IP4 10.0.0.5
a=mid:0
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz
a=rtcp:5001
a=sendrecv
m=video 5002 RTP/SAVPF 97
c=IN IP4 10.0.0.5
a=mid:1
a=rtpmap:97 H264/90000
a=rtcp-fb:* nack pli
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz
a=rtcp-mux
a=ice-ufrag:abcd
a=candidate:1 1 UDP 2130706431 10.0.0.5 5002 typ host
m=application 5004 TCP/BFCP *
a=setup:actpass
a=connection:new
a=floorctrl:c-s
m=video 5006 UDP/TLS/RTP/SAVPF 98
a=fingerprint:sha-256 00:11
m=application 5008 UDP/BFCP *
a=floorctrl:c-s
a=confid:1
a=userid:2
a=floorid:2 mstrm:12
m=video 0 RTP/SAVP 99
)";

} // namespace

TEST_CASE("SDP relay: which m-lines a relay carries", "[media][sdp]") {
    auto s = parse(kAvOffer);
    REQUIRE(s.media.size() == 6);
    CHECK(relay_kind(s.media[0]) == RelayKind::Rtp);
    CHECK(relay_kind(s.media[1]) == RelayKind::Rtp);
    CHECK(relay_kind(s.media[2]) == RelayKind::None); // TCP/BFCP: no TCP relay
    CHECK(relay_kind(s.media[3]) == RelayKind::None); // DTLS-SRTP: end-to-end keys
    CHECK(relay_kind(s.media[4]) == RelayKind::Bfcp);
    CHECK(relay_kind(s.media[5]) == RelayKind::None); // disabled
    CHECK_FALSE(wants_rtcp_mux(s.media[0]));
    CHECK(wants_rtcp_mux(s.media[1]));

    auto j = parse(kJabberOffer);
    REQUIRE(j.media.size() == 3);
    CHECK(relay_kind(j.media[0]) == RelayKind::Rtp);
    CHECK(relay_kind(j.media[1]) == RelayKind::Rtp);
    CHECK(relay_kind(j.media[2]) == RelayKind::Bfcp); // Jabber's content sharing floor control
    CHECK(wants_rtcp_mux(j.media[0]));

    auto pc = parse("v=0\no=- 1 1 IN IP4 1.2.3.4\ns=-\nt=0 0\nm=video 4000/2 RTP/AVP 96\n"
                    "m=audio 4000 rtp/savp 0\nm=application 9 udp/bfcp *\na=rtcp-mux-only\n");
    CHECK(relay_kind(pc.media[0]) == RelayKind::None); // layered coding over port pairs
    CHECK(relay_kind(pc.media[1]) == RelayKind::Rtp);  // protocol names are case-insensitive
    CHECK(relay_kind(pc.media[2]) == RelayKind::Bfcp);
    CHECK(wants_rtcp_mux(pc.media[2]));
}

TEST_CASE("SDP relay: rewrite keeps every m-line and rejects what is not relayed", "[media][sdp]") {
    auto s = parse(kAvOffer);
    std::vector<LineView> v(s.media.size());
    v[0] = {true, 40000, "RTP/AVP", "1 AES_CM_128_HMAC_SHA1_80 inline:KEY0", false};
    v[1] = {true, 40002, "", "1 AES_CM_128_HMAC_SHA1_80 inline:KEY1", true};
    v[4] = {true, 40004, "", std::nullopt, false};
    rewrite_for_relay(s, v, "192.0.2.1");

    REQUIRE(s.media.size() == 6); // never dropped
    // the relayed lines
    CHECK(s.media[0].port == 40000);
    CHECK(s.media[0].proto == "RTP/AVP");
    CHECK(s.media[0].formats == std::vector<std::string>{"0", "101"});
    CHECK(attr_names(s.media[0]) ==
          std::vector<std::string>{"mid", "rtpmap", "rtpmap", "sendrecv", "crypto"});
    CHECK(s.media[0].attributes("crypto") ==
          std::vector<std::string_view>{"1 AES_CM_128_HMAC_SHA1_80 inline:KEY0"});
    CHECK(s.media[1].port == 40002);
    CHECK(s.media[1].proto == "RTP/SAVPF"); // empty view proto: kept
    CHECK(attr_names(s.media[1]) ==
          std::vector<std::string>{"mid", "rtpmap", "rtcp-fb", "crypto", "rtcp-mux"});
    CHECK(s.media[4].port == 40004);
    CHECK(s.media[4].proto == "UDP/BFCP");
    CHECK(attr_names(s.media[4]) == std::vector<std::string>{"floorctrl", "confid", "userid", "floorid"});
    CHECK(s.media[4].attributes("floorid") == std::vector<std::string_view>{"2 mstrm:12"});
    // the rejected ones: port 0, same media, proto and formats
    for (size_t i : {2u, 3u, 5u}) {
        INFO("m-line " << i);
        CHECK(s.media[i].port == 0);
        CHECK(s.media[i].attributes("crypto").empty());
    }
    CHECK(s.media[2].proto == "TCP/BFCP");
    CHECK(s.media[3].proto == "UDP/TLS/RTP/SAVPF");
    CHECK(s.media[3].formats == std::vector<std::string>{"98"});
    CHECK(s.media[5].proto == "RTP/SAVP");
    // BUNDLE is gone from the session, other groups stay; one session c= with the relay's address
    std::vector<std::string> session_attrs;
    for (const auto& l : s.session)
        if (l.type == 'a') session_attrs.push_back(l.value);
    CHECK(session_attrs == std::vector<std::string>{"group:LS 0 1"});
    for (size_t i = 0; i < s.media.size(); ++i) {
        CHECK_FALSE(s.media[i].connection());
        CHECK(s.address_of(i) == "192.0.2.1");
    }
    // and what it writes parses back the same
    auto again = Sdp::parse(s.serialize());
    REQUIRE(again);
    CHECK(again->serialize() == s.serialize());
}

TEST_CASE("SDP relay: m-lines past the views are rejected, never dropped", "[media][sdp]") {
    auto s = parse(kAvOffer);
    std::vector<LineView> v(1);
    v[0] = {true, 40000, "", std::nullopt, true};
    rewrite_for_relay(s, v, "2001:db8::1");
    REQUIRE(s.media.size() == 6);
    CHECK(s.media[0].port == 40000);
    CHECK(s.media[0].has_attribute("rtcp-mux"));
    CHECK(s.media[0].attributes("rtcp").empty()); // the sender's RTCP port never crosses
    for (size_t i = 1; i < s.media.size(); ++i)
        CHECK(s.media[i].port == 0);
    CHECK(s.media[1].attributes("rtcp-mux").empty());
    CHECK(s.media[1].attributes("candidate").empty());
    CHECK(s.address_of(0) == "2001:db8::1");
}

TEST_CASE("SDP relay: RFC 5761 demultiplexing", "[media][sdp]") {
    auto pkt = [](uint8_t b0, uint8_t b1) {
        std::vector<uint8_t> p(12, 0);
        p[0] = b0;
        p[1] = b1;
        return p;
    };
    for (uint8_t pt : {200, 201, 202, 203, 204, 205, 206, 207}) { // SR RR SDES BYE APP RTPFB PSFB XR
        auto p = pkt(0x80, pt);
        CHECK(is_muxed_rtcp(p.data(), p.size()));
    }
    for (uint8_t b1 :
         {0, 8, 96, 101, 127, 0x80 | 0, 0x80 | 8, 0x80 | 96, 0x80 | 127}) { // RTP, with or without marker
        auto p = pkt(0x80, b1);
        CHECK_FALSE(is_muxed_rtcp(p.data(), p.size()));
    }
    auto v1 = pkt(0x40, 200); // version 1: not RTCP
    CHECK_FALSE(is_muxed_rtcp(v1.data(), v1.size()));
    auto p = pkt(0x80, 200);
    CHECK_FALSE(is_muxed_rtcp(p.data(), 7)); // shorter than an RTCP header + SSRC
}
