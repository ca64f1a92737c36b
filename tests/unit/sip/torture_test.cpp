// Messages in the spirit of RFC 4475 (SIP torture tests), written for this suite. Each is run
// through the stream framer and then Message::parse + validate.
#include "common/sip/framer.h"
#include "common/sip/message.h"
#include "common/sip/proxy.h"

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

const char* kSdp = R"(v=0
o=mhandley 29739 7272939 IN IP4 192.0.2.3
s=-
c=IN IP4 192.0.2.4
t=0 0
m=audio 49217 RTP/AVP 0 12
m=video 3227 RTP/AVP 31
a=rtpmap:31 LPC
)";

// Frames `wire` as a single message and returns it parsed.
Message frame_and_parse(const std::string& wire) {
    Framer f;
    f.feed(wire);
    FrameEvent ev = f.next();
    INFO(wire);
    REQUIRE(ev.type == FrameEventType::message);
    REQUIRE(ev.message.size() == wire.size());
    auto m = Message::parse(ev.message);
    if (!m) FAIL(m.error().message);
    return std::move(*m);
}

} // namespace

TEST_CASE("wsinv: whitespace, folding and mixed case everywhere", "[sip][torture]") {
    std::string wire = make_msg("INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0\n"
                                "TO :\n"
                                " sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n\n"
                                "from   : \"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com>\n"
                                "  ;\n"
                                "  tag = 98asjd8\n"
                                "MaX-fOrWaRdS: 0068\n"
                                "Call-ID: wsinv.ndaksdj@192.0.2.1\n"
                                "Content-Length   : {CL}\n"
                                "cseq: 0009\n"
                                "  INVITE\n"
                                "Via  : SIP  /   2.0\n"
                                " /UDP\n"
                                "    192.0.2.2;rport;branch=390skdjuw\n"
                                "s :\n"
                                "NewFangledHeader:   newfangled value\n"
                                " continued newfangled value\n"
                                "UnknownHeaderWithUnusualValue: ;;,,;;,;\n"
                                "Content-Type: application/sdp\n"
                                "Route:\n"
                                " <sip:services.example.com;lr;unknownwith=value;unknown-no-value>\n"
                                "v:  SIP  / 2.0  / TCP     spindle.example.com   ;\n"
                                "  branch  =   z9hG4bK9ikj8  ,\n"
                                " SIP  /    2.0   / UDP  192.168.255.111   ; branch=\n"
                                " z9hG4bK30239\n"
                                "m:\"Quoted string \\\"\\\"\" <sip:jdrosen@example.com> ; newparam =\n"
                                "      newvalue ;\n"
                                "  secondparam ; q = 0.33\n",
                                kSdp);
    Message m = frame_and_parse(wire);
    CHECK(m.method() == "INVITE");
    CHECK(m.find(HeaderId::to)->name == "To");
    CHECK(m.find(HeaderId::max_forwards)->value == "0068");
    CHECK(m.find("newfangledheader")->value == "newfangled value continued newfangled value");
    CHECK(m.find(HeaderId::subject)->value.empty());
    CHECK(m.values(HeaderId::via).size() == 3);
    CHECK(m.body() == crlf(kSdp));

    ValidateOptions lenient;
    lenient.require_magic_cookie = false; // the top Via is an RFC 2543 branch
    RoutingInfo ri;
    Validation v = validate(m, lenient, &ri);
    INFO(v.detail);
    REQUIRE(v.ok());
    CHECK(ri.cseq.number == 9);
    CHECK(ri.cseq.method == "INVITE");
    CHECK(ri.max_forwards == 68);
    CHECK(ri.to.tag() == "1918181833n");
    CHECK(ri.from.tag() == "98asjd8");
    CHECK(ri.from.display == "\"J Rosenberg \\\\\\\"\"");
    CHECK(ri.top_via.transport == "UDP");
    CHECK(ri.top_via.host == "192.0.2.2");
    CHECK_FALSE(ri.top_via.rfc3261_branch());
    auto second = Via::parse(m.values(HeaderId::via)[1]);
    REQUIRE(second);
    CHECK(second->transport == "TCP");
    CHECK(second->branch() == "z9hG4bK9ikj8");
    auto contact = NameAddr::parse(m.values(HeaderId::contact)[0]);
    REQUIRE(contact);
    CHECK(contact->params.get("newparam") == "newvalue");
    CHECK(contact->params.has("secondparam"));
    CHECK(contact->params.get("q") == "0.33");

    CHECK(validate(m).status == 400); // the default policy refuses cookie-less branches
}

TEST_CASE("intmeth: unusual but valid characters in method, URI, headers", "[sip][torture]") {
    std::string method = "!interesting-Method0123456789_*+`.%indeed'~";
    std::string wire = make_msg(
        method +
        " sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
        "@example.com SIP/2.0\n"
        "Via: SIP/2.0/TCP host1.example.com;branch=z9hG4bK-.!%66*_+`'~\n"
        "To: \"BEL:\\\x07 NUL:\\" +
        std::string(1, '\0') +
        " DEL:\\\x7f\" <sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*@example.com>\n"
        "From: token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;fromParam''~+*_!.-%="
        "\"\xd1\x80\xd0\xb0\xd0\xb1\xd0\xbe\xd1\x82\xd0\xb0\xd1\x8e\xd1\x89\xd0\xb8\xd0\xb9\""
        ";tag=_token~1'+`*%!-.\n"
        "Call-ID: intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{\n"
        "CSeq: 139122385 " +
        method +
        "\nMax-Forwards: 255\nextensionHeader-!.%*+_`'~:\xef\xbb\xbf\xe5\xa4\xa7\xe5\x81\x9c\xe9\x9b\xbb\n"
        "Content-Length: {CL}\n");
    Message m = frame_and_parse(wire);
    CHECK(m.method() == method);
    RoutingInfo ri;
    Validation v = validate(m, {}, &ri);
    INFO(v.detail);
    REQUIRE(v.ok());
    CHECK(ri.cseq.number == 139122385u);
    CHECK(ri.max_forwards == 255);
    CHECK(ri.from.display == "token1~` token2'+_ token3*%!.-");
    CHECK(ri.from.tag() == "_token~1'+`*%!-.");
    auto ru = Uri::parse(m.request_uri());
    REQUIRE(ru);
    CHECK(ru->user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*");
    CHECK(ru->password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)");
    CHECK(ru->host == "example.com");
    CHECK(m.find("extensionHeader-!.%*+_`'~") != nullptr);
}

TEST_CASE("esc01: valid % escaping, compact C for Content-Type", "[sip][torture]") {
    std::string wire = make_msg(R"(INVITE sip:sips%3Auser%40example.com@example.net SIP/2.0
To: sip:%75se%72@example.com
From: <sip:I%20have%20spaces@example.net>;tag=938
Max-Forwards: 87
i: esc01.239409asdfakjkn23onasd0-3234
CSeq: 234234 INVITE
Via: SIP/2.0/UDP host5.example.net;branch=z9hG4bKkdjuw
C: application/sdp
Contact:
  <sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>
Content-Length: {CL}
)",
                                kSdp);
    Message m = frame_and_parse(wire);
    RoutingInfo ri;
    Validation v = validate(m, {}, &ri);
    INFO(v.detail);
    REQUIRE(v.ok());
    CHECK(m.find(HeaderId::content_type)->value == "application/sdp");
    CHECK(ri.call_id == "esc01.239409asdfakjkn23onasd0-3234");
    auto c = NameAddr::parse(m.values(HeaderId::contact)[0]);
    REQUIRE(c);
    CHECK(c->uri.user == "cal%6Cer");
    CHECK(c->uri.params.get("n%61me") == "v%61lue%25%34%31");
}

TEST_CASE("escnull and esc02: escaped NULs, '%' in a method", "[sip][torture]") {
    std::string escnull = make_msg(R"(REGISTER sip:example.com SIP/2.0
To: sip:null-%00-null@example.com
From: sip:null-%00-null@example.com;tag=839923423
Max-Forwards: 70
Call-ID: escnull.39203ndfvkjdasfkq3w4otrq0adsfdfnavd
CSeq: 14398234 REGISTER
Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bKkdjuw
Contact: <sip:%00@host5.example.com>
Contact: <sip:%00%00@host5.example.com>
L:{CL}
)");
    Message m = frame_and_parse(escnull);
    CHECK(validate(m).ok());
    CHECK(m.values(HeaderId::contact).size() == 2);

    std::string esc02 = make_msg(R"(RE%47IST%45R sip:registrar.example.com SIP/2.0
To: "%Z%45" <sip:resource@example.com>
From: "%Z%45" <sip:resource@example.com>;tag=f232jadfj23
Call-ID: esc02.asdfnqwo34rq23i34jrjasdcnl23nrlknsdf
Via: SIP/2.0/TCP host.example.com;rport;branch=z9hG4bKkdjuw
CSeq: 29344 RE%47IST%45R
Max-Forwards: 70
Contact: <sip:alias1@host1.example.com>
C%6Fntact: <sip:alias2@host2.example.com>
Contact: <sip:alias3@host3.example.com>
l: {CL}
)");
    Message m2 = frame_and_parse(esc02);
    Validation v = validate(m2);
    INFO(v.detail);
    CHECK(v.ok());
    CHECK(m2.method() == "RE%47IST%45R");    // not REGISTER: escapes mean nothing in a method
    CHECK(m2.count(HeaderId::contact) == 2); // C%6Fntact is an extension header
}

TEST_CASE("lwsdisp, semiuri, transports, noreason, unreason: valid", "[sip][torture]") {
    std::string lwsdisp = make_msg(R"(OPTIONS sip:user@example.com SIP/2.0
To: sip:user@example.com
From: caller<sip:caller@example.com>;tag=323
Max-Forwards: 70
Call-ID: lwsdisp.1234abcd@funky.example.com
CSeq: 60 OPTIONS
Via: SIP/2.0/UDP funky.example.com;branch=z9hG4bKkdjuw
l: 0
)");
    RoutingInfo ri;
    CHECK(validate(frame_and_parse(lwsdisp), {}, &ri).ok());
    CHECK(ri.from.display == "caller");

    std::string semiuri = make_msg(R"(OPTIONS sip:user;par=u%40example.net@example.com SIP/2.0
To: sip:j_user@example.com
From: sip:caller@example.org;tag=33242
Max-Forwards: 3
Call-ID: semiuri.0ha0isndaksdj
CSeq: 8 OPTIONS
Accept: application/sdp, application/pkcs7-mime,
        multipart/mixed, multipart/signed,
        message/sip, message/sipfrag
Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKkdjuw
l: 0
)");
    Message sm = frame_and_parse(semiuri);
    CHECK(validate(sm).ok());
    auto ru = Uri::parse(sm.request_uri());
    REQUIRE(ru);
    CHECK(ru->user == "user;par=u%40example.net");
    CHECK(ru->host == "example.com");

    std::string transports = make_msg(R"(OPTIONS sip:user@example.com SIP/2.0
To: sip:user@example.com
From: <sip:caller@example.com>;tag=323
Max-Forwards: 70
Call-ID: transports.kijh4akdnaqjkwendsasfdj
Accept: application/sdp
CSeq: 60 OPTIONS
Via: SIP/2.0/UDP t1.example.com;branch=z9hG4bKkdjuw
Via: SIP/2.0/SCTP t2.example.com;branch=z9hG4bKklasjdhf
Via: SIP/2.0/TLS t3.example.com;branch=z9hG4bK2980unddj
Via: SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en
Via: SIP/2.0/TCP t5.example.com;branch=z9hG4bK0a9idfnee
l: 0
)");
    Message tm = frame_and_parse(transports);
    CHECK(validate(tm).ok());
    auto vias = tm.values(HeaderId::via);
    REQUIRE(vias.size() == 5);
    CHECK(Via::parse(vias[3])->transport == "UNKNOWN");

    std::string noreason = make_msg(R"(SIP/2.0 100 
Via: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe
Call-ID: noreason.asndj203insdf99223ndf
CSeq: 35 INVITE
From: <sip:user@example.com>;tag=39ansfi3
To: <sip:user@example.edu>;tag=902jndnke3
Content-Length: 0
)");
    Message nr = frame_and_parse(noreason);
    CHECK(nr.status() == 100);
    CHECK(nr.reason().empty());
    CHECK(validate(nr).ok());

    std::string unreason = make_msg("SIP/2.0 200 = 2**3 * 5**2 \xd0\xbd\xd0\xbe \xd1\x81\xd1\x82\xd0\xbe\n"
                                    "Via: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1324923\n"
                                    "Call-ID: unreason.1234ksdfak3j2erwedfsASdf\n"
                                    "CSeq: 35 INVITE\n"
                                    "From: sip:user@example.com;tag=11141343\n"
                                    "To: sip:user@example.edu;tag=2229\n"
                                    "Content-Length: {CL}\n"
                                    "Content-Type: application/sdp\n"
                                    "Contact: <sip:user@host198.example.com>\n",
                                    kSdp);
    Message ur = frame_and_parse(unreason);
    CHECK(ur.status() == 200);
    CHECK(ur.reason().rfind("= 2**3 * 5**2 ", 0) == 0);
    CHECK(validate(ur).ok());
}

TEST_CASE("longreq: long values, many Vias", "[sip][torture]") {
    std::string tag(2000, 'k');
    std::string head = "INVITE sip:user@example.com SIP/2.0\n"
                       "To: \"I have a user name of " +
                       std::string(300, 'x') +
                       "\" <sip:user@example.com>\n"
                       "From: sip:caller@example.net;tag=" +
                       tag + "\nCall-ID: longreq.one" + std::string(500, 'r') +
                       "@example.com\nCSeq: 3882340 INVITE\nMax-Forwards: 70\n";
    for (int i = 0; i < 40; ++i)
        head += "Via: SIP/2.0/TCP sip" + std::to_string(i) + ".example.com;branch=z9hG4bK" +
                std::string(200, 'b') + std::to_string(i) + "\n";
    head += "Content-Length: {CL}\n";
    Message m = frame_and_parse(make_msg(head, kSdp));
    RoutingInfo ri;
    CHECK(validate(m, {}, &ri).ok());
    CHECK(ri.from.tag()->size() == 2000);
    CHECK(m.values(HeaderId::via).size() == 40);
}

TEST_CASE("dblreq: two messages back to back", "[sip][torture]") {
    std::string reg = make_msg(R"(REGISTER sip:example.com SIP/2.0
To: sip:j.user@example.com
From: sip:j.user@example.com;tag=43251j3j324
Max-Forwards: 8
I: dblreq.0ha0isndaksdj99sdfafnl3lk233412
Contact: sip:j.user@host.example.com
CSeq: 8 REGISTER
Via: SIP/2.0/UDP 192.0.2.125;branch=z9hG4bKkdjuw23492
Content-Length: 0
)");
    std::string inv = make_msg(R"(INVITE sip:joe@example.com SIP/2.0
t: sip:joe@example.com
From: sip:caller@example.net;tag=141334
Max-Forwards: 8
Call-ID: dblreq.0ha0isnda977644900765@192.0.2.15
CSeq: 8 INVITE
Via: SIP/2.0/UDP 192.0.2.15;branch=z9hG4bKkdjuw380234
Content-Type: application/sdp
Content-Length: {CL}
)",
                               kSdp);
    Framer f;
    f.feed(reg + inv);
    FrameEvent a = f.next();
    REQUIRE(a.type == FrameEventType::message);
    CHECK(a.message == reg);
    FrameEvent b = f.next();
    REQUIRE(b.type == FrameEventType::message);
    CHECK(b.message == inv);
    // As one datagram, only the first message counts (RFC 3261 18.3).
    auto m = Message::parse(reg + inv);
    REQUIRE(m);
    CHECK(m->method() == "REGISTER");
    CHECK(m->body().empty());
}

namespace {

// An invalid message must either fail framing, fail Message::parse, or fail validate with the
// expected status.
void expect_invalid(const std::string& wire, int status = 400) {
    INFO(wire);
    auto m = Message::parse(wire);
    if (!m) {
        SUCCEED("rejected by the parser: " + m.error().message);
        return;
    }
    Validation v = validate(*m);
    INFO(v.detail);
    CHECK(v.status == status);
}

const char* kStdHeaders = "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\n"
                          "From: <sip:a@example.com>;tag=1\n"
                          "To: <sip:b@example.com>\n"
                          "Call-ID: inv.1@192.0.2.1\n"
                          "Max-Forwards: 70\n";

} // namespace

TEST_CASE("invalid: badinv01 extraneous separators", "[sip][torture]") {
    expect_invalid(make_msg(R"(INVITE sip:user@example.com SIP/2.0
To: sip:j.user@example.com
From: sip:caller@example.net;;tag=134161461246
Max-Forwards: 7
Call-ID: badinv01.0ha0isndaksdjasdf3234nas
CSeq: 8 INVITE
Via: SIP/2.0/UDP 192.0.2.15;;,;,,
Contact: "Joe" <sip:joe@example.org>;;;;
Content-Length: 0
)"));
    // Only the Via is broken:
    expect_invalid(make_msg(std::string("INVITE sip:user@example.com SIP/2.0\n") +
                            "Via: SIP/2.0/UDP 192.0.2.15;branch=z9hG4bK1,,\n"
                            "From: <sip:a@example.com>;tag=1\nTo: <sip:b@example.com>\nCall-ID: c\n"
                            "CSeq: 1 INVITE\nContent-Length: 0\n"));
}

TEST_CASE("invalid: clerr Content-Length larger than the message", "[sip][torture]") {
    std::string wire = make_msg(std::string("INVITE sip:user@example.com SIP/2.0\n") + kStdHeaders +
                                    "CSeq: 1 INVITE\nContent-Length: 9999\nContent-Type: application/sdp\n",
                                kSdp);
    // On a stream the framer simply waits for the rest...
    Framer f;
    f.feed(wire);
    CHECK(f.next().type == FrameEventType::need_more);
    // ...as a datagram it is an error.
    CHECK_FALSE(Message::parse(wire));
}

TEST_CASE("invalid: ncl negative Content-Length", "[sip][torture]") {
    std::string wire = make_msg(std::string("INVITE sip:user@example.com SIP/2.0\n") + kStdHeaders +
                                "CSeq: 1 INVITE\nContent-Length: -999\n");
    Framer f;
    f.feed(wire);
    FrameEvent ev = f.next();
    REQUIRE(ev.type == FrameEventType::error);
    CHECK(ev.error->code == FrameErrorCode::bad_content_length);
    CHECK(ev.error->can_reply);
    CHECK_FALSE(Message::parse(wire));
}

TEST_CASE("invalid: scalar02 overlarge scalar values", "[sip][torture]") {
    std::string base = "REGISTER sip:example.com SIP/2.0\n"
                       "Via: SIP/2.0/TCP host129.example.com;branch=z9hG4bK342sdfoi3\n"
                       "To: <sip:user@example.com>\n"
                       "From: <sip:user@example.com>;tag=239232jh3\n"
                       "Call-ID: scalar02.23o0pd9vanlq3wnrlnewofjas9ui32\n";
    expect_invalid(make_msg(base + "Max-Forwards: 300\nCSeq: 1 REGISTER\nContent-Length: 0\n"));
    expect_invalid(
        make_msg(base + "Max-Forwards: 70\nCSeq: 36893488147419103232 REGISTER\nContent-Length: 0\n"));
    expect_invalid(make_msg(base + "Max-Forwards: 70\nCSeq: 2147483648 REGISTER\nContent-Length: 0\n"));
    // 2**31 - 1 is the largest legal CSeq: proves the check above is a bound, not a blanket reject.
    auto ok =
        Message::parse(make_msg(base + "Max-Forwards: 70\nCSeq: 2147483647 REGISTER\nContent-Length: 0\n"));
    REQUIRE(ok);
    CHECK(validate(*ok).ok());
    // The overlarge Content-Length variant is stopped by the framer.
    Framer f;
    f.feed(make_msg(base + "Max-Forwards: 70\nCSeq: 1 REGISTER\nContent-Length: 18446744073709551616\n"));
    FrameEvent ev = f.next();
    REQUIRE(ev.type == FrameEventType::error);
    CHECK(ev.error->code == FrameErrorCode::message_too_large);
}

TEST_CASE("invalid: insuf missing required headers", "[sip][torture]") {
    std::string wire = make_msg(R"(INVITE sip:user@example.com SIP/2.0
CSeq: 193942 INVITE
Via: SIP/2.0/UDP 192.0.2.95;branch=z9hG4bKkdj.insuf
Content-Type: application/sdp
l: {CL}
)",
                                kSdp);
    Message m = frame_and_parse(wire);
    Validation v = validate(m);
    CHECK(v.status == 400);
    CHECK(v.detail.find("Call-ID") != std::string::npos);
}

TEST_CASE("invalid: bcast response with a broadcast Via", "[sip][torture]") {
    std::string wire = make_msg(R"(SIP/2.0 200 OK
Via: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1324923
Via: SIP/2.0/UDP 255.255.255.255;branch=z9hG4bK1saber23
Call-ID: bcast.0384840201234ksdfak3j2erwedfsASdf
CSeq: 35 INVITE
From: sip:user@example.com;tag=11141343
To: sip:user@example.edu;tag=2229
Content-Length: 0
)");
    Message m = frame_and_parse(wire);
    CHECK(validate(m).status == 400);
    ValidateOptions allow;
    allow.reject_broadcast_via = false;
    CHECK(validate(m, allow).ok());
    std::string mcast = wire;
    mcast.replace(mcast.find("255.255.255.255"), 15, "239.1.2.3");
    CHECK(validate(frame_and_parse(mcast)).status == 400);
}

TEST_CASE("invalid: request line and URI torture", "[sip][torture]") {
    std::string rest = std::string(kStdHeaders) + "CSeq: 1 INVITE\nContent-Length: 0\n";
    SECTION("ltgtruri: <> around the Request-URI") {
        expect_invalid(make_msg("INVITE <sip:user@example.com> SIP/2.0\n" + rest));
    }
    SECTION("lwsruri: whitespace inside the Request-URI") {
        expect_invalid(make_msg("INVITE sip:user@example.com; lr SIP/2.0\n" + rest));
    }
    SECTION("lwsstart: several SP between elements") {
        expect_invalid(make_msg("INVITE  sip:user@example.com  SIP/2.0\n" + rest));
    }
    SECTION("trws: trailing SP after the version") {
        expect_invalid(make_msg("INVITE sip:user@example.com SIP/2.0 \n" + rest));
    }
    SECTION("escruri: headers in the Request-URI") {
        expect_invalid(make_msg("INVITE sip:user@example.com?Route=%3Csip:example.com%3E SIP/2.0\n" + rest));
    }
    SECTION("badvers: unknown protocol version") {
        std::string wire = make_msg("INVITE sip:user@example.com SIP/7.0\n" + rest);
        expect_invalid(wire, 505);
        // It is still framed and still answerable:
        Framer f;
        f.feed(wire);
        CHECK(f.next().type == FrameEventType::message);
    }
    SECTION("mismatch01: CSeq method differs from the request method") {
        expect_invalid(make_msg(std::string("OPTIONS sip:user@example.com SIP/2.0\n") + kStdHeaders +
                                "CSeq: 1 INVITE\nContent-Length: 0\n"));
    }
    SECTION("mismatch02: unknown method, CSeq differs") {
        expect_invalid(make_msg(std::string("NEWMETHOD sip:user@example.com SIP/2.0\n") + kStdHeaders +
                                "CSeq: 1 INVITE\nContent-Length: 0\n"));
    }
    SECTION("bigcode: overlarge response code") {
        expect_invalid(make_msg(std::string("SIP/2.0 4294967301 better not break the receiver\n") +
                                kStdHeaders + "CSeq: 1 INVITE\nContent-Length: 0\n"));
        expect_invalid(make_msg(std::string("SIP/2.0 099 Too low\n") + kStdHeaders +
                                "CSeq: 1 INVITE\nContent-Length: 0\n"));
    }
}

TEST_CASE("invalid: name-addr torture", "[sip][torture]") {
    auto with_to = [](const std::string& to) {
        return make_msg("OPTIONS sip:user@example.com SIP/2.0\n"
                        "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\n"
                        "From: <sip:a@example.com>;tag=1\n"
                        "To: " +
                        to +
                        "\nCall-ID: na.1@192.0.2.1\nCSeq: 1 OPTIONS\n"
                        "Content-Length: 0\n");
    };
    // Control: the same message with a sane To passes, so each failure below is the To's fault.
    REQUIRE(validate(*Message::parse(with_to("\"Mr. Watson\" <sip:mr.watson@example.com>"))).ok());
    SECTION("quotbal: unterminated quoted display name") {
        expect_invalid(with_to("\"Mr. J. User <sip:j.user@example.com>"));
    }
    SECTION("badaspec: spaces inside the addr-spec") {
        expect_invalid(with_to("\"Watson, Thomas\" < sip:t.watson@example.org >"));
        expect_invalid(with_to("<sip:mr.watson @example.com>"));
    }
    SECTION("baddn: non-token characters in an unquoted display name") {
        expect_invalid(with_to("Bell, Alexander <sip:a.g.bell@example.com>"));
    }
    SECTION("regbadct: addr-spec with '?' outside angle brackets") {
        expect_invalid(with_to("sip:user@example.com?Route=%3Csip:sip.example.com%3E"));
    }
    SECTION("two URIs in a single-valued header (multi01 style)") {
        expect_invalid(with_to("sip:user@example.com, sip:other@example.com"));
    }
}

TEST_CASE("invalid: multi01 repeated single-valued headers", "[sip][torture]") {
    std::string base = "INVITE sip:user@company.com SIP/2.0\n"
                       "Via: SIP/2.0/UDP 192.0.2.25;branch=z9hG4bKkdjuw\n"
                       "CSeq: 1 INVITE\n";
    std::string from = "From: <sip:a@example.com>;tag=1\n";
    std::string to = "To: <sip:b@example.com>\n";
    std::string cid = "Call-ID: multi01.98asdh@192.0.2.1\n";
    std::string mf = "Max-Forwards: 70\n";
    std::string cl = "Content-Length: 0\n";
    REQUIRE(validate(*Message::parse(make_msg(base + from + to + cid + mf + cl))).ok());
    expect_invalid(make_msg(base + from + to + cid + "Call-ID: multi01.98asdh@192.0.2.2\n" + mf + cl));
    expect_invalid(make_msg(base + from + "From: <sip:c@example.com>;tag=2\n" + to + cid + mf + cl));
    expect_invalid(make_msg(base + from + to + "t: <sip:d@example.com>\n" + cid + mf + cl));
    expect_invalid(make_msg(base + "CSeq: 2 INVITE\n" + from + to + cid + mf + cl));
    expect_invalid(make_msg(base + from + to + cid + mf + "Max-Forwards: 5\n" + cl));
}

TEST_CASE("invalid: missing branch or From tag", "[sip][torture]") {
    std::string tail = "To: <sip:b@example.com>\nCall-ID: x@y\nCSeq: 1 INVITE\nContent-Length: 0\n";
    expect_invalid(make_msg("INVITE sip:b@example.com SIP/2.0\nVia: SIP/2.0/TLS h.example.com\n"
                            "From: <sip:a@example.com>;tag=1\n" +
                            tail));
    expect_invalid(
        make_msg("INVITE sip:b@example.com SIP/2.0\nVia: SIP/2.0/TLS h.example.com;branch=z9hG4bKa\n"
                 "From: <sip:a@example.com>\n" +
                 tail));
}

TEST_CASE("unkscm, novelsc: unknown URI schemes", "[sip][torture]") {
    std::string rest = std::string(kStdHeaders) + "CSeq: 1 OPTIONS\nContent-Length: 0\n";
    // In the Request-URI a proxy cannot route it: 416 (RFC 3261 16.3 step 2).
    expect_invalid(make_msg("OPTIONS nobodyKnowsThisScheme:totallyopaquecontent SIP/2.0\n" + rest), 416);
    // tel: is understood (forwarded along the Route set).
    auto tel = Message::parse(make_msg("OPTIONS tel:+15551234 SIP/2.0\n" + rest));
    REQUIRE(tel);
    CHECK(validate(*tel).ok());
    // In To/From an unknown scheme is fine.
    std::string novelsc = make_msg("OPTIONS sip:user@example.com SIP/2.0\n"
                                   "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\n"
                                   "From: <sip:a@example.com>;tag=1\n"
                                   "To: isbn:2983792873\n"
                                   "Call-ID: novelsc.1@192.0.2.1\nCSeq: 1 OPTIONS\nContent-Length: 0\n");
    auto m = Message::parse(novelsc);
    REQUIRE(m);
    RoutingInfo ri;
    CHECK(validate(*m, {}, &ri).ok());
    CHECK(ri.to.uri.scheme == "isbn");
}
