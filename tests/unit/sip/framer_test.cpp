#include "common/sip/framer.h"
#include "common/sip/message.h"
#include "common/sip/proxy.h"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace edgepair::sip;

namespace {

std::string crlf(std::string_view s) {
    std::string out;
    for (char c : s) {
        if (c == '\n') out += '\r';
        out += c;
    }
    return out;
}

// head: header lines ending in "\n", "{CL}" replaced by the body length.
std::string make_msg(std::string_view head, std::string_view body = {}) {
    std::string h = crlf(head);
    std::string b = crlf(body);
    auto pos = h.find("{CL}");
    if (pos != std::string::npos) h.replace(pos, 4, std::to_string(b.size()));
    return h + "\r\n" + b;
}

const std::string kRegister = make_msg(R"(REGISTER sip:example.com SIP/2.0
Via: SIP/2.0/TLS 198.51.100.23:51234;branch=z9hG4bK000044b1;rport
From: <sip:alice@example.com>;tag=5c5b3b2a00040c2c
To: <sip:alice@example.com>
Call-ID: 5c5b3b2a-00040002-00006e7b-00003c3f@198.51.100.23
Max-Forwards: 70
CSeq: 101 REGISTER
User-Agent: Cisco-CSF
Contact: <sip:8d7c9e0a@198.51.100.23:51234;transport=tls>;+sip.instance="<urn:uuid:00000000-0000-0000-0000-005056a1b2c3>";reg-id=1;expires=3600
Expires: 3600
Content-Length: {CL}
)");

const std::string kInvite = make_msg(R"(INVITE sip:bob@example.com SIP/2.0
v: SIP/2.0/TLS 198.51.100.23:51234;branch=z9hG4bK3a1f
f: "Alice" <sip:alice@example.com>;tag=abc
t: <sip:bob@example.com>
i: inv-1@198.51.100.23
CSeq: 1 INVITE
Max-Forwards: 70
m: <sip:alice@198.51.100.23:51234;transport=tls>
c: application/sdp
l: {CL}
)",
                                     R"(v=0
o=alice 1 1 IN IP4 198.51.100.23
s=-
c=IN IP4 198.51.100.23
t=0 0
m=audio 49170 RTP/SAVP 0
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz
)");

const std::string kOk = make_msg(R"(SIP/2.0 200 OK
Via: SIP/2.0/TLS 198.51.100.23:51234;branch=z9hG4bK000044b1;rport=51234
From: <sip:alice@example.com>;tag=5c5b3b2a00040c2c
To: <sip:alice@example.com>;tag=1234
Call-ID: 5c5b3b2a-00040002-00006e7b-00003c3f@198.51.100.23
CSeq: 101 REGISTER
Content-Length: 0
)");

struct Collected {
    std::vector<std::string> messages;
    int pings = 0;
    int pongs = 0;
    int stun = 0;
    std::vector<FrameErrorCode> errors;
};

void drain(Framer& f, Collected& c) {
    while (true) {
        FrameEvent ev = f.next();
        switch (ev.type) {
        case FrameEventType::need_more:
            return;
        case FrameEventType::message:
            c.messages.emplace_back(ev.message);
            break;
        case FrameEventType::keepalive_ping:
            ++c.pings;
            break;
        case FrameEventType::keepalive_pong:
            ++c.pongs;
            break;
        case FrameEventType::stun:
            ++c.stun;
            break;
        case FrameEventType::error:
            c.errors.push_back(ev.error->code);
            return;
        }
    }
}

Collected feed_all(std::string_view data, FramerLimits limits = {}) {
    Framer f(limits);
    Collected c;
    f.feed(data);
    drain(f, c);
    return c;
}

FrameError first_error(std::string_view data, FramerLimits limits = {}) {
    Framer f(limits);
    f.feed(data);
    while (true) {
        FrameEvent ev = f.next();
        if (ev.type == FrameEventType::error) return *ev.error;
        if (ev.type == FrameEventType::need_more) break;
    }
    FAIL("no error reported");
    return {};
}

} // namespace

TEST_CASE("framer yields a complete message as received", "[sip][framer]") {
    for (const auto& m : {kRegister, kInvite, kOk}) {
        auto c = feed_all(m);
        REQUIRE(c.errors.empty());
        REQUIRE(c.messages.size() == 1);
        CHECK(c.messages[0] == m);
    }
}

TEST_CASE("framer reports head size so the body can be found", "[sip][framer]") {
    Framer f;
    f.feed(kInvite);
    FrameEvent ev = f.next();
    REQUIRE(ev.type == FrameEventType::message);
    CHECK(ev.message.substr(ev.head_size, 4) == "v=0\r");
    CHECK(ev.message.substr(ev.head_size - 4, 4) == "\r\n\r\n");
}

TEST_CASE("framer handles a split at every byte boundary", "[sip][framer]") {
    for (const auto& m : {kRegister, kInvite, kOk}) {
        for (size_t i = 0; i <= m.size(); ++i) {
            Framer f;
            Collected c;
            f.feed(std::string_view(m).substr(0, i));
            drain(f, c);
            if (i < m.size()) REQUIRE(c.messages.empty());
            f.feed(std::string_view(m).substr(i));
            drain(f, c);
            REQUIRE(c.errors.empty());
            REQUIRE(c.messages.size() == 1);
            REQUIRE(c.messages[0] == m);
        }
    }
}

TEST_CASE("framer handles byte-at-a-time delivery of pipelined messages and keep-alives", "[sip][framer]") {
    std::string stream = kRegister + "\r\n\r\n" + kInvite + "\r\n" + kOk + kInvite;
    Framer f;
    Collected c;
    for (char ch : stream) {
        f.feed(std::string_view(&ch, 1));
        drain(f, c);
    }
    REQUIRE(c.errors.empty());
    REQUIRE(c.messages.size() == 4);
    CHECK(c.messages[0] == kRegister);
    CHECK(c.messages[1] == kInvite);
    CHECK(c.messages[2] == kOk);
    CHECK(c.messages[3] == kInvite);
    CHECK(c.pings == 1);
    CHECK(c.pongs == 1);
}

TEST_CASE("framer splits pipelined messages at every boundary", "[sip][framer]") {
    std::string stream = kRegister + kOk + "\r\n\r\n" + kInvite;
    for (size_t i = 0; i <= stream.size(); i += 7) {
        Framer f;
        Collected c;
        f.feed(std::string_view(stream).substr(0, i));
        drain(f, c);
        f.feed(std::string_view(stream).substr(i));
        drain(f, c);
        REQUIRE(c.errors.empty());
        REQUIRE(c.messages == std::vector<std::string>{kRegister, kOk, kInvite});
        REQUIRE(c.pings == 1);
    }
}

TEST_CASE("CRLF keep-alives: double CRLF is a ping, single CRLF a pong", "[sip][framer]") {
    Framer f;
    f.feed("\r\n");
    CHECK(f.next().type == FrameEventType::need_more); // could still become a ping
    f.feed("\r\n");
    CHECK(f.next().type == FrameEventType::keepalive_ping);
    CHECK(f.next().type == FrameEventType::need_more);
    f.feed("\r\n" + kOk);
    CHECK(f.next().type == FrameEventType::keepalive_pong);
    FrameEvent ev = f.next();
    REQUIRE(ev.type == FrameEventType::message);
    CHECK(ev.message == kOk);
    f.feed("\r\n\r\n\r\n\r\n");
    CHECK(f.next().type == FrameEventType::keepalive_ping);
    CHECK(f.next().type == FrameEventType::keepalive_ping);
    CHECK(f.next().type == FrameEventType::need_more);
}

TEST_CASE("missing Content-Length is fatal on a stream but a 400 is possible", "[sip][framer]") {
    std::string m = make_msg(R"(OPTIONS sip:example.com SIP/2.0
Via: SIP/2.0/TLS 198.51.100.23:5061;branch=z9hG4bKx1
From: <sip:a@example.com>;tag=1
To: <sip:example.com>
Call-ID: nocl@198.51.100.23
CSeq: 7 OPTIONS
)");
    FrameError e = first_error(m);
    CHECK(e.code == FrameErrorCode::missing_content_length);
    CHECK(metric_label(e.code) == "missing_content_length");
    REQUIRE(e.can_reply);
    auto req = Message::parse_head(e.head);
    REQUIRE(req);
    Message resp = make_response(*req, 400);
    std::string wire = resp.serialize();
    CHECK(wire.rfind("SIP/2.0 400 Bad Request\r\n", 0) == 0);
    CHECK(wire.find("Call-ID: nocl@198.51.100.23\r\n") != std::string::npos);
    CHECK(wire.find("CSeq: 7 OPTIONS\r\n") != std::string::npos);
}

TEST_CASE("no 400 when the routing headers are missing or the message is a response", "[sip][framer]") {
    std::string no_callid = make_msg(R"(OPTIONS sip:example.com SIP/2.0
Via: SIP/2.0/TLS 198.51.100.23:5061;branch=z9hG4bKx1
From: <sip:a@example.com>;tag=1
To: <sip:example.com>
CSeq: 7 OPTIONS
)");
    FrameError e = first_error(no_callid);
    CHECK(e.code == FrameErrorCode::missing_content_length);
    CHECK_FALSE(e.can_reply);
    CHECK(e.head.empty());

    std::string resp = make_msg(R"(SIP/2.0 200 OK
Via: SIP/2.0/TLS 198.51.100.23:5061;branch=z9hG4bKx1
From: <sip:a@example.com>;tag=1
To: <sip:example.com>;tag=2
Call-ID: r@x
CSeq: 7 OPTIONS
)");
    e = first_error(resp);
    CHECK(e.code == FrameErrorCode::missing_content_length);
    CHECK_FALSE(e.can_reply);
}

TEST_CASE("compact Content-Length and whitespace around it", "[sip][framer]") {
    std::string m = "MESSAGE sip:b@example.com SIP/2.0\r\nl  :   5 \r\n\r\nhello";
    auto c = feed_all(m);
    REQUIRE(c.messages.size() == 1);
    CHECK(c.messages[0] == m);
    std::string folded = "MESSAGE sip:b@example.com SIP/2.0\r\nContent-Length:\r\n 5\r\n\r\nhello";
    c = feed_all(folded);
    REQUIRE(c.messages.size() == 1);
}

TEST_CASE("invalid Content-Length values", "[sip][framer]") {
    const char* head = "INVITE sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/TLS h;branch=z9hG4bK1\r\n"
                       "From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\nCall-ID: c\r\n"
                       "CSeq: 1 INVITE\r\n";
    SECTION("negative (RFC 4475 ncl)") {
        FrameError e = first_error(std::string(head) + "Content-Length: -999\r\n\r\n");
        CHECK(e.code == FrameErrorCode::bad_content_length);
        CHECK(e.can_reply);
    }
    SECTION("not a number") {
        CHECK(first_error(std::string(head) + "Content-Length: 1a\r\n\r\n").code ==
              FrameErrorCode::bad_content_length);
        CHECK(first_error(std::string(head) + "Content-Length: \r\n\r\n").code ==
              FrameErrorCode::bad_content_length);
    }
    SECTION("two of them, even equal (RFC 4475 mcl01)") {
        CHECK(first_error(std::string(head) + "Content-Length: 0\r\nl: 0\r\n\r\n").code ==
              FrameErrorCode::bad_content_length);
    }
    SECTION("overlarge and overflowing (RFC 4475 scalar02 style)") {
        FrameError e = first_error(std::string(head) + "Content-Length: 65536\r\n\r\n");
        CHECK(e.code == FrameErrorCode::message_too_large);
        CHECK(e.can_reply);
        CHECK(first_error(std::string(head) + "Content-Length: 99999999999999999999999\r\n\r\n").code ==
              FrameErrorCode::message_too_large);
    }
}

TEST_CASE("message size limit is inclusive", "[sip][framer]") {
    std::string head = "MESSAGE sip:b@example.com SIP/2.0\r\nContent-Length: ";
    FramerLimits lim;
    lim.max_message_size = 200;
    // Find a body size that makes the message exactly 200 bytes.
    for (size_t body = 100; body < 200; ++body) {
        std::string m = head + std::to_string(body) + "\r\n\r\n" + std::string(body, 'x');
        if (m.size() == 200) {
            auto c = feed_all(m, lim);
            REQUIRE(c.messages.size() == 1);
            std::string m2 = head + std::to_string(body + 1) + "\r\n\r\n" + std::string(body + 1, 'x');
            CHECK(first_error(m2, lim).code == FrameErrorCode::message_too_large);
            return;
        }
    }
    FAIL("no exact size found");
}

TEST_CASE("a header section that never ends is cut at the limit", "[sip][framer]") {
    Framer f;
    f.feed("INVITE sip:b@example.com SIP/2.0\r\n");
    std::string filler = "X-Filler: " + std::string(1000, 'a') + "\r\n";
    FrameEvent ev;
    size_t fed = 0;
    for (int i = 0; i < 100; ++i) {
        f.feed(filler);
        fed += filler.size();
        ev = f.next();
        if (ev.type != FrameEventType::need_more) break;
    }
    REQUIRE(ev.type == FrameEventType::error);
    CHECK(ev.error->code == FrameErrorCode::message_too_large);
    CHECK_FALSE(ev.error->can_reply);
    CHECK(fed <= 64 * 1024 + filler.size());
}

TEST_CASE("too many header fields", "[sip][framer]") {
    FramerLimits lim;
    lim.max_headers = 10;
    std::string m = "MESSAGE sip:b@example.com SIP/2.0\r\n";
    for (int i = 0; i < 10; ++i)
        m += "X-H: " + std::to_string(i) + "\r\n";
    std::string ok = m + "\r\n"; // 10 headers, but no Content-Length: proves the count is not the issue
    CHECK(first_error(ok, lim).code == FrameErrorCode::missing_content_length);
    m += "Content-Length: 0\r\n\r\n";
    FrameError e = first_error(m, lim);
    CHECK(e.code == FrameErrorCode::too_many_headers);
    CHECK(metric_label(e.code) == "too_many_headers");
}

TEST_CASE("leading garbage is rejected early", "[sip][framer]") {
    SECTION("TLS ClientHello on the plain port") {
        std::string hello("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11);
        Framer f;
        f.feed(hello.substr(0, 1));
        FrameEvent ev = f.next();
        REQUIRE(ev.type == FrameEventType::error);
        CHECK(ev.error->code == FrameErrorCode::bad_start_line);
        CHECK(metric_label(ev.error->code) == "bad_start_line");
    }
    SECTION("HTTP request") {
        Framer f;
        f.feed("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        CHECK(f.next().type == FrameEventType::error);
    }
    SECTION("an incomplete request line is judged once it ends") {
        Framer f;
        f.feed("GET /index.html");
        CHECK(f.next().type == FrameEventType::need_more);
        f.feed(" HTTP/1.1\r\n");
        CHECK(f.next().type == FrameEventType::error);
    }
    SECTION("a method followed by a non-token character") {
        CHECK(first_error("GET/ HTTP/1.1").code == FrameErrorCode::bad_start_line);
        CHECK(first_error("<stream:stream").code == FrameErrorCode::bad_start_line);
    }
    SECTION("CR not followed by LF") {
        CHECK(first_error("\r\r\n").code == FrameErrorCode::bad_start_line);
    }
    SECTION("binary after a valid message") {
        Framer f;
        f.feed(kOk + std::string("\x00\x01", 2));
        CHECK(f.next().type == FrameEventType::message);
        CHECK(f.next().type == FrameEventType::error);
    }
}

TEST_CASE("bare LF inside the header section is rejected", "[sip][framer]") {
    std::string m = "MESSAGE sip:b@example.com SIP/2.0\r\nX-A: 1\nContent-Length: 0\r\n\r\n";
    CHECK(first_error(m).code == FrameErrorCode::bad_header);
    std::string nocolon = "MESSAGE sip:b@example.com SIP/2.0\r\nNoColonHere\r\nContent-Length: 0\r\n\r\n";
    CHECK(first_error(nocolon).code == FrameErrorCode::bad_header);
}

TEST_CASE("a failed framer stays failed", "[sip][framer]") {
    Framer f;
    f.feed("\x01garbage");
    CHECK(f.next().type == FrameEventType::error);
    CHECK(f.failed());
    f.feed(kOk);
    CHECK(f.next().type == FrameEventType::error);
    CHECK(f.buffered() == 0);
}

TEST_CASE("body bytes that look like a message are not framed as one", "[sip][framer]") {
    std::string body = kOk; // an entire SIP message as opaque body (message/sipfrag style)
    std::string m =
        "NOTIFY sip:a@198.51.100.23 SIP/2.0\r\nContent-Type: message/sipfrag\r\nContent-Length: " +
        std::to_string(body.size()) + "\r\n\r\n" + body;
    auto c = feed_all(m + kOk);
    REQUIRE(c.messages.size() == 2);
    CHECK(c.messages[0] == m);
    CHECK(c.messages[1] == kOk);
}

TEST_CASE("an endless method token is cut early", "[sip][framer]") {
    Framer f;
    f.feed(std::string(256, 'A'));
    CHECK(f.next().type == FrameEventType::need_more);
    f.feed("A");
    FrameEvent ev = f.next();
    REQUIRE(ev.type == FrameEventType::error);
    CHECK(ev.error->code == FrameErrorCode::bad_start_line);
}

TEST_CASE("a start line trickled byte by byte is still framed", "[sip][framer]") {
    std::string m = "MESSAGE sip:" + std::string(3000, 'u') + "@example.com SIP/2.0\r\nl: 2\r\n\r\nhi";
    Framer f;
    Collected c;
    for (char ch : m) {
        f.feed(std::string_view(&ch, 1));
        drain(f, c);
    }
    REQUIRE(c.messages.size() == 1);
    CHECK(c.messages[0] == m);
}

// ---- recover mode (FramerLimits::recover): one bad message costs that message only ----

namespace {

const char* kRoutingHead = "MESSAGE sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/TLS h;branch=z9hG4bKr1\r\n"
                           "From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\nCall-ID: big@x\r\n"
                           "CSeq: 4 MESSAGE\r\n";

struct Recovered {
    std::vector<std::string> messages;
    std::vector<FrameError> errors; // copies
};

// Feeds `data` in `chunk`-sized pieces to a recovering framer.
Recovered feed_recover(std::string_view data, size_t max, size_t chunk) {
    FramerLimits lim;
    lim.max_message_size = max;
    lim.recover = true;
    Framer f(lim);
    Recovered r;
    for (size_t pos = 0; pos < data.size(); pos += chunk) {
        f.feed(data.substr(pos, chunk));
        for (;;) {
            FrameEvent ev = f.next();
            if (ev.type == FrameEventType::need_more) break;
            if (ev.type == FrameEventType::message) r.messages.emplace_back(ev.message);
            if (ev.type == FrameEventType::error) {
                r.errors.push_back(*ev.error);
                if (ev.error->fatal) return r;
            }
        }
        // Skipped bytes are not kept: what is buffered stays near the limit.
        CHECK(f.buffered() <= max + chunk + 16 * 1024);
    }
    return r;
}

} // namespace

TEST_CASE("recover: a message just over 64 KiB is skipped and framing goes on", "[sip][framer]") {
    std::string body(64 * 1024, 'b');
    std::string big =
        std::string(kRoutingHead) + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    for (size_t chunk : {size_t(1400), size_t(70000), size_t(7)}) {
        auto r = feed_recover(big + kOk + big + kOk, 64 * 1024, chunk);
        REQUIRE(r.errors.size() == 2);
        REQUIRE(r.messages.size() == 2);
        CHECK(r.messages[0] == kOk);
        CHECK(r.messages[1] == kOk);
        for (const auto& e : r.errors) {
            CHECK_FALSE(e.fatal);
            CHECK(e.code == FrameErrorCode::message_too_large);
            CHECK(reply_status(e.code) == 513);
            REQUIRE(e.can_reply);
            auto head = Message::parse_head(e.head);
            REQUIRE(head);
            CHECK(make_response(*head, 513).serialize().find("Call-ID: big@x\r\n") != std::string::npos);
        }
    }
}

TEST_CASE("recover: an oversized header section keeps only the routing headers", "[sip][framer]") {
    std::string m = kRoutingHead;
    for (int i = 0; i < 200; ++i)
        m += "X-Filler: " + std::string(500, 'f') + "\r\n";
    m += "X-Long: " + std::string(40000, 'L') + "\r\n"; // one line longer than the line buffer
    m += "Content-Length: 3\r\n\r\nabc";
    auto r = feed_recover(m + kOk, 11000, 999);
    REQUIRE(r.errors.size() == 1);
    CHECK_FALSE(r.errors[0].fatal);
    CHECK(r.errors[0].code == FrameErrorCode::message_too_large);
    REQUIRE(r.errors[0].can_reply);
    CHECK(r.errors[0].head.size() < 1000);
    CHECK(r.errors[0].head.find("X-Filler") == std::string::npos);
    REQUIRE(r.messages.size() == 1);
    CHECK(r.messages[0] == kOk);
}

TEST_CASE("recover: a header section that never ends is cut, memory stays bounded", "[sip][framer]") {
    FramerLimits lim;
    lim.max_message_size = 11000;
    lim.recover = true;
    Framer f(lim);
    f.feed(kRoutingHead);
    std::string filler = "X-Filler: " + std::string(1000, 'a') + "\r\n";
    FrameEvent ev;
    size_t fed = 0;
    for (int i = 0; i < 2000 && ev.type == FrameEventType::need_more; ++i) {
        f.feed(filler);
        fed += filler.size();
        ev = f.next();
        CHECK(f.buffered() <= 16 * 1024);
    }
    REQUIRE(ev.type == FrameEventType::error);
    CHECK(ev.error->fatal);
    CHECK(fed <= kMaxSkippedHead + filler.size());
}

TEST_CASE("recover: one malformed header line gets a 400 and the next message is framed", "[sip][framer]") {
    std::string bad = std::string(kRoutingHead) + "This line has no colon\r\nContent-Length: 2\r\n\r\nhi";
    auto r = feed_recover(bad + kOk, 64 * 1024, 5);
    REQUIRE(r.errors.size() == 1);
    const FrameError& e = r.errors[0];
    CHECK_FALSE(e.fatal);
    CHECK(e.code == FrameErrorCode::bad_header);
    CHECK(reply_status(e.code) == 400);
    REQUIRE(e.can_reply);
    CHECK(e.head.find("no colon") == std::string::npos);
    REQUIRE(Message::parse_head(e.head));
    REQUIRE(r.messages.size() == 1);
    CHECK(r.messages[0] == kOk);

    SECTION("a bare LF and an orphan continuation line are bad lines too") {
        std::string lf = std::string(kRoutingHead) + "X-A: 1\nX-B: 2\r\n  orphan? no, a continuation\r\n"
                                                     "Content-Length: 0\r\n\r\n";
        auto r2 = feed_recover(lf + kOk, 64 * 1024, 64);
        REQUIRE(r2.errors.size() == 1);
        CHECK(r2.errors[0].code == FrameErrorCode::bad_header);
        REQUIRE(r2.messages.size() == 1);
    }
}

TEST_CASE("recover: too many headers is refused, framing goes on", "[sip][framer]") {
    FramerLimits lim;
    lim.max_headers = 10;
    lim.recover = true;
    std::string m = kRoutingHead;
    for (int i = 0; i < 10; ++i)
        m += "X-H: " + std::to_string(i) + "\r\n";
    m += "Content-Length: 1\r\n\r\nz";
    Framer f(lim);
    f.feed(m + kOk);
    FrameEvent ev = f.next();
    REQUIRE(ev.type == FrameEventType::error);
    CHECK_FALSE(ev.error->fatal);
    CHECK(ev.error->code == FrameErrorCode::too_many_headers);
    ev = f.next();
    REQUIRE(ev.type == FrameEventType::message);
    CHECK(ev.message == kOk);
}

TEST_CASE("recover: an unknown or ambiguous length is still fatal", "[sip][framer]") {
    auto r = feed_recover(std::string(kRoutingHead) + "\r\n" + kOk, 64 * 1024, 4096);
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].fatal);
    CHECK(r.errors[0].code == FrameErrorCode::missing_content_length);
    r = feed_recover(std::string(kRoutingHead) + "Content-Length: 1\r\nl: 1\r\n\r\nx" + kOk, 64 * 1024, 4096);
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].fatal);
    CHECK(r.errors[0].code == FrameErrorCode::bad_content_length);
    // Bigger than anything worth skipping.
    r = feed_recover(std::string(kRoutingHead) + "Content-Length: 99999999999\r\n\r\n", 64 * 1024, 4096);
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].fatal);
}
