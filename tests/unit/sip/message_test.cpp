#include "common/sip/message.h"
#include "common/sip/proxy.h"
#include "common/sip/uri.h"

#include <catch2/catch.hpp>

#include <string>

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

std::string make_msg(std::string_view head, std::string_view body = {}) {
    std::string h = crlf(head);
    std::string b = crlf(body);
    auto pos = h.find("{CL}");
    if (pos != std::string::npos) h.replace(pos, 4, std::to_string(b.size()));
    return h + "\r\n" + b;
}

// A Jabber for Windows style REGISTER towards edge-e, with the Cisco feature tags in the Contact.
const std::string kJabberRegister = make_msg(R"(REGISTER sip:cucm1.example.com SIP/2.0
Via: SIP/2.0/TLS 198.51.100.23:51234;branch=z9hG4bK000044b1;rport
From: <sip:alice@example.com>;tag=5c5b3b2a00040c2c
To: <sip:alice@example.com>
Call-ID: 5c5b3b2a-00040002-00006e7b-00003c3f@198.51.100.23
Max-Forwards: 70
Date: Mon, 23 Nov 2026 08:40:00 GMT
CSeq: 101 REGISTER
User-Agent: Cisco-CSF
Contact: <sip:8d7c9e0a-6f1b-4d1e-9a55-1234567890ab@198.51.100.23:51234;transport=tls>;+sip.instance="<urn:uuid:00000000-0000-0000-0000-005056a1b2c3>";+u.sip!devicename.ccm.cisco.com="CSFALICE";+u.sip!model.ccm.cisco.com="503";reg-id=1;expires=3600
Route: <sip:expe1.example.com:5061;transport=tls;lr>
Supported: replaces,join,sdp-anat,norefersub,resource-priority,extended-refer,X-cisco-callinfo,X-cisco-serviceuri
Reason: SIP;cause=200;text="cisco-alarm:25 Name=CSFALICE ActiveLoad=Jabber_for_Windows-14.1.0"
Expires: 3600
Content-Type: multipart/mixed; boundary=uniqueBoundary
Mime-Version: 1.0
Content-Length: {CL}
)",
                                             R"(--uniqueBoundary
Content-Type: application/x-cisco-remotecc-request+xml
Content-Disposition: session;handling=required

<x-cisco-remotecc-request><bulkregisterreq><contact all="true"><register></register></contact></bulkregisterreq></x-cisco-remotecc-request>
--uniqueBoundary--
)");

const std::string kNotify = make_msg(R"(NOTIFY sip:alice@198.51.100.23:51234;transport=tls SIP/2.0
Via: SIP/2.0/TCP 10.0.1.1:5060;branch=z9hG4bK5f1a2b
Via: SIP/2.0/TCP 10.0.2.2:5060;branch=z9hG4bK77,SIP/2.0/TCP 10.0.3.3:5060;branch=z9hG4bK78
From: <sip:alice@example.com>;tag=99
To: <sip:alice@example.com>;tag=5c5b
Call-ID: notify-1@10.0.1.1
CSeq: 1001 NOTIFY
Max-Forwards: 69
Event: message-summary
Subscription-State: active;expires=3600
Content-Type: application/simple-message-summary
Content-Length: {CL}
)",
                                     R"(Messages-Waiting: yes
Voice-Message: 2/8 (0/2)
)");

} // namespace

TEST_CASE("parse a Jabber REGISTER", "[sip][message]") {
    auto m = Message::parse(kJabberRegister);
    REQUIRE(m);
    CHECK(m->is_request());
    CHECK(m->method() == "REGISTER");
    CHECK(m->request_uri() == "sip:cucm1.example.com");
    CHECK(m->version() == "SIP/2.0");
    REQUIRE(m->headers().size() == 16);
    CHECK(m->headers()[0].id == HeaderId::via);
    CHECK(m->headers()[5].name == "Date");
    CHECK(m->headers()[5].id == HeaderId::other);
    CHECK(m->body().rfind("--uniqueBoundary\r\n", 0) == 0);

    RoutingInfo ri;
    Validation v = validate(*m, {}, &ri);
    INFO(v.detail);
    REQUIRE(v.ok());
    CHECK(ri.top_via.transport == "TLS");
    CHECK(ri.top_via.port == 51234);
    CHECK(ri.top_via.params.has("rport"));
    CHECK(ri.top_via.rfc3261_branch());
    CHECK(ri.from.tag() == "5c5b3b2a00040c2c");
    CHECK_FALSE(ri.to.tag());

    auto contact = NameAddr::parse(m->values(HeaderId::contact).at(0));
    REQUIRE(contact);
    CHECK(contact->uri.user == "8d7c9e0a-6f1b-4d1e-9a55-1234567890ab");
    CHECK(contact->uri.transport() == "tls");
    CHECK(contact->params.get("+sip.instance") == "\"<urn:uuid:00000000-0000-0000-0000-005056a1b2c3>\"");
    CHECK(contact->params.get("reg-id") == "1");
    CHECK(contact->params.get("expires") == "3600");
    CHECK(contact->params.get("+u.sip!model.ccm.cisco.com") == "\"503\"");

    auto route = NameAddr::parse(m->values(HeaderId::route).at(0));
    REQUIRE(route);
    CHECK(route->uri.lr());
    CHECK(route->uri.port == 5061);
    CHECK(m->values(HeaderId::supported).size() == 8);
}

TEST_CASE("compact header names map to full names", "[sip][message]") {
    std::string wire = make_msg(R"(MESSAGE sip:b@example.com SIP/2.0
v: SIP/2.0/TLS h.example.com;branch=z9hG4bK1
f: <sip:a@example.com>;tag=1
t: <sip:b@example.com>
i: c1
m: <sip:a@h.example.com>
k: path, outbound
c: text/plain
e: gzip
o: presence
s: hi
u: talk
r: <sip:c@example.com>
b: <sip:d@example.com>
x: 1800
CSeq: 1 MESSAGE
l: {CL}
)",
                                "hello\n");
    auto m = Message::parse(wire);
    REQUIRE(m);
    const char* names[] = {"Via",          "From",
                           "To",           "Call-ID",
                           "Contact",      "Supported",
                           "Content-Type", "Content-Encoding",
                           "Event",        "Subject",
                           "Allow-Events", "Refer-To",
                           "Referred-By",  "Session-Expires",
                           "CSeq",         "Content-Length"};
    REQUIRE(m->headers().size() == 16);
    for (size_t i = 0; i < 16; ++i)
        CHECK(m->headers()[i].name == names[i]);
    CHECK(m->body() == "hello\r\n");
    CHECK(m->find("Call-ID") == m->find(HeaderId::call_id));
    CHECK(m->find("I") == m->find(HeaderId::call_id));
    CHECK(validate(*m).ok());
}

TEST_CASE("multi-value headers split on commas outside quotes and brackets only", "[sip][message]") {
    auto m = Message::parse(kNotify);
    REQUIRE(m);
    auto vias = m->values(HeaderId::via);
    REQUIRE(vias.size() == 3);
    CHECK(vias[1] == "SIP/2.0/TCP 10.0.2.2:5060;branch=z9hG4bK77");
    CHECK(vias[2] == "SIP/2.0/TCP 10.0.3.3:5060;branch=z9hG4bK78");
    CHECK(m->count(HeaderId::via) == 2);
    // Subscription-State is not a list header: its value stays whole.
    CHECK(m->find("Subscription-State")->value == "active;expires=3600");

    std::string contacts = "<sip:a@h;x=\"1,2\">;q=0.5, \"Doe, John\" <sip:b@h>, sip:c@h;expires=5";
    std::string wire = "REGISTER sip:h SIP/2.0\r\nContact: " + contacts + "\r\nContent-Length: 0\r\n\r\n";
    auto r = Message::parse(wire);
    REQUIRE(r);
    auto cs = r->values(HeaderId::contact);
    REQUIRE(cs.size() == 3);
    CHECK(cs[1] == "\"Doe, John\" <sip:b@h>");
    CHECK(NameAddr::parse(cs[2])->params.get("expires") == "5");
}

TEST_CASE("serialize round-trips and keeps Content-Length honest", "[sip][message]") {
    for (const auto& wire : {kJabberRegister, kNotify}) {
        auto m = Message::parse(wire);
        REQUIRE(m);
        std::string out = m->serialize();
        CHECK(out == wire); // these inputs are already in canonical form
        auto again = Message::parse(out);
        REQUIRE(again);
        CHECK(again->headers().size() == m->headers().size());
        CHECK(again->body() == m->body());
    }
    auto m = Message::parse(kNotify);
    REQUIRE(m);
    std::string old_cl = "Content-Length: " + std::to_string(m->body().size()) + "\r\n";
    REQUIRE(kNotify.find(old_cl) != std::string::npos);
    m->set_body("Messages-Waiting: no\r\n");
    std::string out = m->serialize();
    CHECK(out.find("Content-Length: 22\r\n") != std::string::npos);
    CHECK(out.find(old_cl) == std::string::npos);
    m->set_body("", {});
    out = m->serialize();
    CHECK(out.find("Content-Length: 0\r\n") != std::string::npos);
    CHECK(out.find("Content-Type") == std::string::npos);
    CHECK(out.substr(out.size() - 4) == "\r\n\r\n");
}

TEST_CASE("serialize adds Content-Length when missing and drops duplicates", "[sip][message]") {
    Message m = Message::request("OPTIONS", "sip:example.com");
    m.append_header("Call-ID", "x");
    m.set_body("abc", "text/plain");
    std::string out = m.serialize();
    CHECK(out == "OPTIONS sip:example.com SIP/2.0\r\nCall-ID: x\r\nContent-Type: text/plain\r\n"
                 "Content-Length: 3\r\n\r\nabc");
    m.append_header("l", "1");
    m.append_header("Content-Length", "2");
    out = m.serialize();
    CHECK(out.find("Content-Length: 3\r\n") != std::string::npos);
    CHECK(out.find("Content-Length: 1") == std::string::npos);
    CHECK(out.find("Content-Length: 2") == std::string::npos);
}

TEST_CASE("SDP body replacement", "[sip][message]") {
    std::string sdp =
        "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
    std::string wire =
        "INVITE sip:b@example.com SIP/2.0\r\nContent-Type: application/sdp\r\nContent-Length: " +
        std::to_string(sdp.size()) + "\r\n\r\n" + sdp;
    auto m = Message::parse(wire);
    REQUIRE(m);
    CHECK(m->body() == sdp);
    std::string rewritten = sdp;
    rewritten.replace(rewritten.find("10.0.0.1"), 8, "203.0.113.200");
    m->set_body(rewritten, "application/sdp");
    auto again = Message::parse(m->serialize());
    REQUIRE(again);
    CHECK(again->body() == rewritten);
    CHECK(again->find(HeaderId::content_length)->value == std::to_string(rewritten.size()));
    CHECK(again->count(HeaderId::content_type) == 1);
}

TEST_CASE("parse errors", "[sip][message]") {
    CHECK_FALSE(Message::parse("INVITE sip:a SIP/2.0\r\nContent-Length: 0\r\n"));    // no blank line
    CHECK_FALSE(Message::parse("INVITE sip:a SIP/2.0\r\n Folded: x\r\n\r\n"));       // fold first
    CHECK_FALSE(Message::parse("INVITE sip:a SIP/2.0\r\nBad Name: x\r\n\r\n"));      // space in name
    CHECK_FALSE(Message::parse("INVITE sip:a SIP/2.0\r\n: x\r\n\r\n"));              // empty name
    CHECK_FALSE(Message::parse("INVITE sip:a SIP/2.0\r\nA: x\ry\r\n\r\n"));          // bare CR
    CHECK_FALSE(Message::parse("INVITE sip:a HTTP/1.1\r\n\r\n"));                    // not SIP
    CHECK_FALSE(Message::parse("INVITE\r\n\r\n"));                                   // no URI
    CHECK_FALSE(Message::parse("SIP/2.0 20 OK\r\n\r\n"));                            // short code
    CHECK_FALSE(Message::parse("OPTIONS sip:a SIP/2.0\r\nl: 5\r\n\r\nabc"));         // CL beyond data
    CHECK_FALSE(Message::parse("OPTIONS sip:a SIP/2.0\r\nl: 1\r\nl: 1\r\n\r\nabc")); // two CLs
    CHECK(Message::parse("OPTIONS sip:a SIP/2.0\r\nl: 1\r\n\r\nabc"));               // datagram: cut
    CHECK(Message::parse("OPTIONS sip:a SIP/2.0\r\n\r\n"));
}
