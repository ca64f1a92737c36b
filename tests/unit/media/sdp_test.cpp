#include "common/media/sdp.h"
#include "media_test_util.h"

#include <catch2/catch.hpp>

using namespace edgepair::media;
using Catch::Matchers::Contains;
using edgepair::media::test::crlf;
using edgepair::media::test::kJabberOffer;
using edgepair::media::test::kSippOffer;

namespace {

std::string line_of(const Sdp& s, char type) {
    for (const auto& l : s.session)
        if (l.type == type) return l.value;
    return "<none>";
}

} // namespace

TEST_CASE("SDP: Jabber offer with audio, video and BFCP", "[media][sdp]") {
    auto body = crlf(kJabberOffer);
    auto r = Sdp::parse(body);
    REQUIRE(r);
    const Sdp& s = *r;
    REQUIRE(s.session.size() == 5);
    CHECK(s.session[0].type == 'v');
    CHECK(line_of(s, 'o') == "Cisco-SIPUA 23517 0 IN IP4 192.168.1.50");
    CHECK(line_of(s, 'b') == "AS:4000");
    CHECK(line_of(s, 'c') == "<none>");
    REQUIRE(s.media.size() == 3);

    const auto& a = s.media[0];
    CHECK(a.media == "audio");
    CHECK(a.port == 24580);
    CHECK(a.port_count == 1);
    CHECK(a.proto == "RTP/SAVP");
    CHECK(a.formats == std::vector<std::string>{"114", "9", "104", "105", "0", "8", "18", "111", "101"});
    CHECK(a.is_rtp());
    CHECK(a.connection() == "192.168.1.50");
    auto cr = a.attributes("crypto");
    REQUIRE(cr.size() == 2);
    CHECK(cr[0] == "0 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^31");
    // "rtcp" must not match a=rtcp-mux or a=rtcp-fb.
    CHECK(a.attributes("rtcp") == std::vector<std::string_view>{"24581"});
    CHECK(a.has_attribute("rtcp-mux"));
    CHECK(a.attributes("rtcp-mux") == std::vector<std::string_view>{""});
    CHECK(a.attributes("candidate").size() == 3);
    CHECK(a.has_attribute("sendrecv"));
    CHECK_FALSE(a.has_attribute("sendrec"));
    CHECK_FALSE(a.has_attribute("inactive"));

    const auto& v = s.media[1];
    CHECK(v.media == "video");
    CHECK(v.port == 24582);
    CHECK(v.is_rtp());
    CHECK(v.attributes("rtcp-fb").size() == 2);
    CHECK(v.attributes("rtcp") == std::vector<std::string_view>{"24583"});

    const auto& b = s.media[2];
    CHECK(b.media == "application");
    CHECK(b.proto == "UDP/BFCP");
    CHECK(b.formats == std::vector<std::string>{"*"});
    CHECK_FALSE(b.is_rtp());
    CHECK(b.attributes("floorid") == std::vector<std::string_view>{"2 mstrm:12"});

    for (size_t i = 0; i < 3; ++i)
        CHECK(s.address_of(i) == "192.168.1.50");
    CHECK_FALSE(s.address_of(3));

    // Every line comes back byte for byte, in order.
    CHECK(s.serialize() == body);
}

TEST_CASE("SDP: sipp/Kamailio plain RTP body with session c=", "[media][sdp]") {
    auto body = crlf(kSippOffer);
    auto r = Sdp::parse(body);
    REQUIRE(r);
    REQUIRE(r->media.size() == 1);
    const auto& m = r->media[0];
    CHECK(m.proto == "RTP/AVP");
    CHECK(m.is_rtp());
    CHECK_FALSE(m.connection());
    CHECK(r->address_of(0) == "127.0.0.1");
    CHECK(m.attributes("ptime") == std::vector<std::string_view>{"20"});
    CHECK(r->serialize() == body);
}

TEST_CASE("SDP: line endings and trailing lines", "[media][sdp]") {
    auto crlf_body = crlf(kSippOffer);
    auto lf = Sdp::parse(kSippOffer);
    REQUIRE(lf);
    CHECK(lf->serialize() == crlf_body);

    std::string no_final(crlf_body.substr(0, crlf_body.size() - 2));
    auto nf = Sdp::parse(no_final);
    REQUIRE(nf);
    CHECK(nf->serialize() == crlf_body);

    auto extra = Sdp::parse(crlf_body + "\r\n");
    REQUIRE(extra);
    CHECK(extra->serialize() == crlf_body);

    // Mixed endings are fine too: each line loses one LF and at most one CR before it.
    auto mixed = Sdp::parse("v=0\r\no=- 1 1 IN IP4 10.0.0.1\ns=-\r\nt=0 0\n");
    REQUIRE(mixed);
    CHECK(mixed->serialize() == "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\n");
}

TEST_CASE("SDP: session-level vs media-level c=", "[media][sdp]") {
    auto r = Sdp::parse("v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
                        "m=audio 4000 RTP/AVP 0\r\n"
                        "m=video 4002 RTP/AVP 96\r\nc=IN IP4 10.0.0.2\r\n"
                        "m=audio 4004 RTP/AVP 0\r\nc=IN IP4 0.0.0.0\r\n"
                        "m=audio 4006 RTP/AVP 0\r\nc=IN IP4 224.2.1.1/127/3\r\n"
                        "m=audio 4008/2 RTP/AVP 0\r\nc=IN IP6 ::\r\n");
    REQUIRE(r);
    CHECK(r->address_of(0) == "10.0.0.1");
    CHECK(r->address_of(1) == "10.0.0.2");
    CHECK_FALSE(r->address_of(2)); // hold
    CHECK(r->address_of(3) == "224.2.1.1");
    CHECK(r->media[4].port_count == 2);
    CHECK_FALSE(r->address_of(4));
    CHECK(r->serialize().find("m=audio 4008/2 RTP/AVP 0\r\n") != std::string::npos);

    auto none = Sdp::parse("v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n");
    REQUIRE(none);
    CHECK_FALSE(none->address_of(0));
}

TEST_CASE("SDP: set_address IPv4 and IPv6", "[media][sdp]") {
    SECTION("session c= is replaced in place") {
        auto r = Sdp::parse(kSippOffer);
        REQUIRE(r);
        r->set_address("203.0.113.10");
        CHECK(r->serialize() == crlf(R"(v=0
o=user1 53655765 2353687637 IN IP4 203.0.113.10
s=-
c=IN IP4 203.0.113.10
t=0 0
m=audio 6000 RTP/AVP 0 8 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-11,16
a=ptime:20
)"));
    }
    SECTION("media c= lines go, one session c= comes after s=") {
        auto r = Sdp::parse(kJabberOffer);
        REQUIRE(r);
        r->set_address("2001:db8::5");
        CHECK(line_of(*r, 'o') == "Cisco-SIPUA 23517 0 IN IP6 2001:db8::5");
        REQUIRE(r->session.size() == 6);
        CHECK(r->session[3].type == 'c');
        CHECK(r->session[3].value == "IN IP6 2001:db8::5");
        CHECK(r->session[4].type == 'b');
        for (size_t i = 0; i < r->media.size(); ++i) {
            CHECK_FALSE(r->media[i].connection());
            CHECK(r->address_of(i) == "2001:db8::5");
        }
        // Everything else is untouched: the same text minus the three media c= lines.
        std::string want = crlf(kJabberOffer);
        const std::string media_c = "c=IN IP4 192.168.1.50\r\n";
        for (size_t p; (p = want.find(media_c)) != std::string::npos;)
            want.erase(p, media_c.size());
        want.replace(want.find("IN IP4 192.168.1.50"), 19, "IN IP6 2001:db8::5");
        want.insert(want.find("b=AS:4000"), "c=IN IP6 2001:db8::5\r\n");
        CHECK(r->serialize() == want);
        // And it parses again.
        CHECK(Sdp::parse(r->serialize()));
    }
    SECTION("several session c= lines collapse to one") {
        auto r =
            Sdp::parse("v=0\r\no=- 1 1 IN IP6 ::1\r\ns=-\r\nc=IN IP6 ::1\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
                       "m=audio 4000 RTP/AVP 0\r\nc=IN IP4 10.0.0.9\r\n");
        REQUIRE(r);
        r->set_address("192.0.2.1");
        CHECK(r->serialize() == "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
                                "m=audio 4000 RTP/AVP 0\r\n");
    }
}

TEST_CASE("SDP: bump_version", "[media][sdp]") {
    auto r = Sdp::parse(kSippOffer);
    REQUIRE(r);
    r->bump_version();
    CHECK(line_of(*r, 'o') == "user1 53655765 2353687638 IN IP4 127.0.0.1");
    auto j = Sdp::parse(kJabberOffer);
    REQUIRE(j);
    j->bump_version();
    j->bump_version();
    CHECK(line_of(*j, 'o') == "Cisco-SIPUA 23517 2 IN IP4 192.168.1.50");
    auto w = Sdp::parse("v=0\r\no=- 7 99999999999999999999 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\n");
    REQUIRE(w);
    w->bump_version();
    CHECK(line_of(*w, 'o') == "- 7 100000000000000000000 IN IP4 10.0.0.1");
}

TEST_CASE("SDP: editing a media section", "[media][sdp]") {
    auto r = Sdp::parse(kJabberOffer);
    REQUIRE(r);
    auto& a = r->media[0];
    size_t before = a.lines.size();
    CHECK(a.remove_attributes({"crypto", "candidate", "ice-ufrag", "ice-pwd", "rtcp"}) == 8);
    CHECK(a.lines.size() == before - 8);
    CHECK(a.has_attribute("rtcp-mux")); // not a prefix match
    CHECK(a.remove_attributes({"nonexistent"}) == 0);
    a.add_attribute("crypto", "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR");
    a.add_attribute("rtcp-mux");
    a.port = 36002;
    a.proto = "RTP/AVP";
    CHECK(a.lines.back().value == "rtcp-mux");
    auto out = r->serialize();
    CHECK_THAT(out, Contains("m=audio 36002 RTP/AVP 114 9 104 105 0 8 18 111 101\r\n"));
    CHECK_THAT(out, Contains("a=sendrecv\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 "
                             "inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR\r\na=rtcp-mux\r\nm=video"));
    CHECK(out.find("a=candidate") == std::string::npos);
    auto again = Sdp::parse(out);
    REQUIRE(again);
    CHECK(again->media[0].attributes("crypto").size() == 1);
    CHECK(again->serialize() == out);
}

TEST_CASE("SDP: unknown line types are kept", "[media][sdp]") {
    std::string body = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\ny=0123456789\r\nz=0 -1h\r\n"
                       "m=audio 4000 RTP/AVP 0\r\nx=vendor thing\r\nk=prompt\r\n";
    auto r = Sdp::parse(body);
    REQUIRE(r);
    CHECK(r->session.back().type == 'z');
    CHECK(r->media[0].lines.size() == 2);
    CHECK(r->serialize() == body);
}

TEST_CASE("SDP: malformed bodies are rejected with the line number", "[media][sdp]") {
    const std::string head = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\n";
    struct Case {
        std::string body;
        const char* want;
    };
    std::vector<Case> cases = {
        {"", "empty"},
        {"\r\n", "empty"},
        {"o=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\n", "line 1"},
        {"v=1\r\no=- 1 1 IN IP4 10.0.0.1\r\n", "line 1"},
        {"v=0\r\ns=-\r\nt=0 0\r\n", "o="},
        {head + "m=audio 70000 RTP/AVP 0\r\n", "line 4"},
        {head + "m=audio 40a0 RTP/AVP 0\r\n", "line 4"},
        {head + "m=audio -1 RTP/AVP 0\r\n", "line 4"},
        {head + "m=audio 004000 RTP/AVP 0\r\n", "line 4"},
        {head + "m=audio 4000/0 RTP/AVP 0\r\n", "line 4"},
        {head + "m=audio 4000/ RTP/AVP 0\r\n", "line 4"},
        {head + "m=audio 4000\r\n", "line 4"},
        {head + "t=0 0\r\nhello\r\n", "line 5"},
        {head + "t=0 0\r\n=x\r\n", "line 5"},
        {head + "t=0 0\r\n1=x\r\n", "line 5"},
        {head + "t=0 0\r\n a=x\r\n", "line 5"},
        {head + "\r\nt=0 0\r\n", "line 4"},
        {head + "t=0 0\r\na=x\ry\r\n", "line 5"},
        {head + "t=0 0\r\na=x\r\r\n", "line 5"},
        {head + std::string("t=0 0\r\na=x\0y\r\n", 14), "line 5"},
        {head + "c=IN IP4\r\n", "line 4"},
        {head + "o=- 1 1 IN IP4 10.0.0.1\r\n", "line 4"},
        {"v=0\r\no=- 1 x IN IP4 10.0.0.1\r\n", "line 2"},
        {"v=0\r\no=- 1 1 IN IP4\r\n", "line 2"},
        {head + "v=0\r\n", "line 4"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.body);
        auto r = Sdp::parse(c.body);
        REQUIRE_FALSE(r);
        CHECK_THAT(r.error().message, Contains(c.want));
    }
}

TEST_CASE("SDP: limits", "[media][sdp]") {
    const std::string head = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\n";
    SECTION("64 media sections pass, 65 do not") {
        std::string body = head;
        for (int i = 0; i < 64; ++i)
            body += "m=audio 0 RTP/AVP 0\r\n";
        auto ok = Sdp::parse(body);
        REQUIRE(ok);
        CHECK(ok->media.size() == 64);
        auto r = Sdp::parse(body + "m=audio 0 RTP/AVP 0\r\n");
        REQUIRE_FALSE(r);
        CHECK_THAT(r.error().message, Contains("line 69"));
    }
    SECTION("1000 lines pass, 1001 do not") {
        std::string body = head;
        for (int i = 4; i < 1000; ++i)
            body += "a=x\r\n";
        auto ok = Sdp::parse(body);
        REQUIRE(ok);
        CHECK(ok->session.size() == 1000);
        CHECK(Sdp::parse(body + "\r\n")); // a trailing empty line does not count
        auto r = Sdp::parse(body + "a=x\r\n");
        REQUIRE_FALSE(r);
        CHECK_THAT(r.error().message, Contains("1000 lines"));
    }
    SECTION("64 kB") {
        std::string body = head + "a=" + std::string(64 * 1024 - head.size() - 4, 'x') + "\r\n";
        CHECK(body.size() == 64 * 1024);
        CHECK(Sdp::parse(body));
        auto r = Sdp::parse(body + "a");
        REQUIRE_FALSE(r);
        CHECK_THAT(r.error().message, Contains("bytes"));
    }
}
