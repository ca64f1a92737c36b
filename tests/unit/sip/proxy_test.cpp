#include "common/sip/message.h"
#include "common/sip/proxy.h"

#include <catch2/catch.hpp>

#include <cstring>
#include <string>

using namespace edgepair::sip;

namespace {

const char* kInvite =
    "INVITE sip:bob@example.com SIP/2.0\r\n"
    "Via: SIP/2.0/TLS 198.51.100.23:51234;branch=z9hG4bKc1;rport\r\n"
    "Via: SIP/2.0/TCP 10.1.1.1;branch=z9hG4bKc0\r\n"
    "Route: <sip:expe1.example.com:5061;transport=tls;lr>, <sip:cucm1.example.com;lr>\r\n"
    "From: \"Alice\" <sip:alice@example.com>;tag=abc\r\n"
    "To: <sip:bob@example.com>\r\n"
    "Call-ID: inv-1@198.51.100.23\r\n"
    "CSeq: 1 INVITE\r\n"
    "Max-Forwards: 70\r\n"
    "Contact: \"Alice\" <sip:alice@198.51.100.23:51234;transport=tls;ob>;+sip.instance=\"<urn:uuid:1>\";"
    "reg-id=1;expires=3600, <sip:alice2@198.51.100.23>;q=0.1\r\n"
    "Content-Length: 0\r\n\r\n";

Message parse(const std::string& s) {
    auto m = Message::parse(s);
    if (!m) FAIL(m.error().message);
    return std::move(*m);
}

RandomFill counting_random() {
    return [](uint8_t* out, size_t n) {
        for (size_t i = 0; i < n; ++i)
            out[i] = static_cast<uint8_t>(i * 7 + 1);
    };
}

} // namespace

TEST_CASE("branch generation uses the caller's randomness and the magic cookie", "[sip][proxy]") {
    std::string b1 = make_branch(counting_random());
    CHECK(b1.rfind("z9hG4bK", 0) == 0);
    CHECK(b1.size() == 7 + 26);
    CHECK(b1 == make_branch(counting_random()));
    std::string b2 = make_branch([](uint8_t* out, size_t n) { std::memset(out, 0xff, n); });
    CHECK(b1 != b2);
    auto v = Via::parse("SIP/2.0/TLS h;branch=" + b1);
    REQUIRE(v);
    CHECK(v->rfc3261_branch());
}

TEST_CASE("push and pop Via", "[sip][proxy]") {
    Message m = parse(kInvite);
    ViaSpec spec;
    spec.transport = "TLS";
    spec.host = "expe1.example.com";
    spec.port = 7001;
    spec.branch = "z9hG4bKedge1";
    spec.rport = true;
    push_via(m, spec);
    auto vias = m.values(HeaderId::via);
    REQUIRE(vias.size() == 3);
    CHECK(vias[0] == "SIP/2.0/TLS expe1.example.com:7001;branch=z9hG4bKedge1;rport");
    CHECK(m.headers()[0].id == HeaderId::via); // a new top Via goes before the first existing one
    REQUIRE(pop_via(m));
    CHECK(m.top_via()->branch() == "z9hG4bKc1");
    REQUIRE(pop_via(m));
    REQUIRE(pop_via(m));
    CHECK_FALSE(pop_via(m));
    CHECK(m.count(HeaderId::via) == 0);
}

TEST_CASE("pop_via splits a comma-joined Via field", "[sip][proxy]") {
    Message m =
        parse("SIP/2.0 200 OK\r\nv: SIP/2.0/TLS e1;branch=z9hG4bK1, SIP/2.0/TCP c1;branch=z9hG4bK2\r\n"
              "l: 0\r\n\r\n");
    REQUIRE(pop_via(m));
    REQUIRE(m.count(HeaderId::via) == 1);
    CHECK(m.find(HeaderId::via)->value == "SIP/2.0/TCP c1;branch=z9hG4bK2");
}

// The top element is found without splitting the whole list (issue 18): a comma inside a quoted value or
// between angle brackets does not end it, and the elements after it are kept as they were.
TEST_CASE("top element of a comma-joined field: quotes and brackets", "[sip][proxy]") {
    Message m = parse("SIP/2.0 200 OK\r\nVia: SIP/2.0/TLS e1;branch=z9hG4bK1;x=\"a,b\" ,  SIP/2.0/TCP c1;"
                      "branch=z9hG4bK2, SIP/2.0/UDP d1;branch=z9hG4bK3\r\nl: 0\r\n\r\n");
    REQUIRE(m.top_via());
    CHECK(m.top_via()->params.get("x") == "\"a,b\"");
    REQUIRE(fill_received_rport(m, "192.0.2.7", 5061));
    CHECK(m.find(HeaderId::via)->value ==
          "SIP/2.0/TLS e1;branch=z9hG4bK1;x=\"a,b\";received=192.0.2.7, SIP/2.0/TCP c1;branch=z9hG4bK2, "
          "SIP/2.0/UDP d1;branch=z9hG4bK3");
    REQUIRE(pop_via(m));
    CHECK(m.find(HeaderId::via)->value == "SIP/2.0/TCP c1;branch=z9hG4bK2, SIP/2.0/UDP d1;branch=z9hG4bK3");
    CHECK(m.top_via()->branch() == "z9hG4bK2");

    Message r = parse("OPTIONS sip:u@h SIP/2.0\r\nRoute: <sip:a@e1;lr>;x=\"1,2\", <sip:b@n1;lr>\r\n"
                      "Via: SIP/2.0/TLS c;branch=z9hG4bKq\r\nl: 0\r\n\r\n");
    auto popped = pop_route_if(r, [](const Uri& u) { return u.host == "e1"; });
    REQUIRE(popped);
    CHECK(*popped);
    CHECK(r.find(HeaderId::route)->value == "<sip:b@n1;lr>");
}

TEST_CASE("Record-Route, Path and Route are added on top", "[sip][proxy]") {
    Message m = parse(kInvite);
    auto rr = Uri::parse("sip:ft1abc@expe1.example.com:5061;transport=tls;lr");
    REQUIRE(rr);
    push_record_route(m, *rr);
    push_record_route(m, *Uri::parse("sip:expc1.example.com;lr"));
    auto rrs = m.values(HeaderId::record_route);
    REQUIRE(rrs.size() == 2);
    CHECK(rrs[0] == "<sip:expc1.example.com;lr>");
    CHECK(rrs[1] == "<sip:ft1abc@expe1.example.com:5061;transport=tls;lr>");

    push_path(m, *Uri::parse("sip:expc1.example.com;lr;ob"));
    CHECK(m.values(HeaderId::path).at(0) == "<sip:expc1.example.com;lr;ob>");

    push_route(m, *Uri::parse("sip:first.example.com;lr"));
    auto routes = m.values(HeaderId::route);
    REQUIRE(routes.size() == 3);
    CHECK(routes[0] == "<sip:first.example.com;lr>");
}

TEST_CASE("pop the top Route only when it is us", "[sip][proxy]") {
    Message m = parse(kInvite);
    auto is_expe = [](const Uri& u) {
        return u.host == "expe1.example.com" && u.port.value_or(5060) == 5061;
    };
    auto not_us = [](const Uri&) { return false; };
    auto r = pop_route_if(m, not_us);
    REQUIRE(r);
    CHECK_FALSE(*r);
    CHECK(m.values(HeaderId::route).size() == 2);
    r = pop_route_if(m, is_expe);
    REQUIRE(r);
    CHECK(*r);
    auto routes = m.values(HeaderId::route);
    REQUIRE(routes.size() == 1);
    CHECK(routes[0] == "<sip:cucm1.example.com;lr>");
    r = pop_route_if(m, is_expe); // cucm1 is not us
    REQUIRE(r);
    CHECK_FALSE(*r);

    Message bad = parse("OPTIONS sip:x SIP/2.0\r\nRoute: garbage\r\nl: 0\r\n\r\n");
    CHECK_FALSE(pop_route_if(bad, is_expe));
}

TEST_CASE("Contact rewrite keeps display name and parameters", "[sip][proxy]") {
    Message m = parse(kInvite);
    auto n = rewrite_contacts(m, [](const Uri& u) -> std::optional<std::string> {
        if (u.user != "alice") return std::nullopt;
        Uri out = u;
        out.user = "ft-token";
        out.host = "expc1.example.com";
        out.port = 5060;
        out.params.set("transport", std::string("tcp"));
        return out.to_string();
    });
    REQUIRE(n);
    CHECK(*n == 1);
    auto cs = m.values(HeaderId::contact);
    REQUIRE(cs.size() == 2);
    CHECK(cs[0] ==
          "\"Alice\" <sip:ft-token@expc1.example.com:5060;transport=tcp;ob>;+sip.instance=\"<urn:uuid:1>\";"
          "reg-id=1;expires=3600");
    CHECK(cs[1] == "<sip:alice2@198.51.100.23>;q=0.1"); // untouched, byte for byte

    Message star = parse("REGISTER sip:h SIP/2.0\r\nContact: *\r\nExpires: 0\r\nl: 0\r\n\r\n");
    auto none = rewrite_contacts(star, [](const Uri&) -> std::optional<std::string> {
        FAIL("called for *");
        return {};
    });
    REQUIRE(none);
    CHECK(*none == 0);
    CHECK(star.find(HeaderId::contact)->value == "*");

    Message broken = parse("REGISTER sip:h SIP/2.0\r\nContact: <sip:a@h\r\nl: 0\r\n\r\n");
    CHECK_FALSE(
        rewrite_contacts(broken, [](const Uri& u) -> std::optional<std::string> { return u.to_string(); }));
}

TEST_CASE("addr-spec Contact params stay header params after rewrite", "[sip][proxy]") {
    Message m = parse("REGISTER sip:h SIP/2.0\r\nm: sip:a@10.0.0.1;expires=60\r\nl: 0\r\n\r\n");
    auto n = rewrite_contacts(m, [](const Uri& u) -> std::optional<std::string> {
        Uri out = u;
        out.host = "edge.example.com";
        return out.to_string();
    });
    REQUIRE(n);
    CHECK(m.find(HeaderId::contact)->value == "<sip:a@edge.example.com>;expires=60");
}

TEST_CASE("Max-Forwards handling", "[sip][proxy]") {
    Message m = parse(kInvite);
    CHECK(decrement_max_forwards(m) == MaxForwardsResult::ok);
    CHECK(m.find(HeaderId::max_forwards)->value == "69");

    Message none = parse("OPTIONS sip:x SIP/2.0\r\nl: 0\r\n\r\n");
    CHECK(decrement_max_forwards(none) == MaxForwardsResult::ok);
    CHECK(none.find(HeaderId::max_forwards)->value == "70");

    Message one = parse("OPTIONS sip:x SIP/2.0\r\nMax-Forwards: 1\r\nl: 0\r\n\r\n");
    CHECK(decrement_max_forwards(one) == MaxForwardsResult::ok);
    CHECK(one.find(HeaderId::max_forwards)->value == "0");
    CHECK(decrement_max_forwards(one) == MaxForwardsResult::exhausted);
    CHECK(one.find(HeaderId::max_forwards)->value == "0");
    Message resp = make_response(one, 483);
    CHECK(resp.serialize().rfind("SIP/2.0 483 Too Many Hops\r\n", 0) == 0);

    Message bad = parse("OPTIONS sip:x SIP/2.0\r\nMax-Forwards: 300\r\nl: 0\r\n\r\n");
    CHECK(decrement_max_forwards(bad) == MaxForwardsResult::invalid);
    Message two = parse("OPTIONS sip:x SIP/2.0\r\nMax-Forwards: 3\r\nMax-Forwards: 3\r\nl: 0\r\n\r\n");
    CHECK(decrement_max_forwards(two) == MaxForwardsResult::invalid);
}

TEST_CASE("responses built from a request", "[sip][proxy]") {
    Message req = parse(kInvite);
    Message r = make_response(req, 503, {}, "edge42");
    std::string wire = r.serialize();
    CHECK(wire == "SIP/2.0 503 Service Unavailable\r\n"
                  "Via: SIP/2.0/TLS 198.51.100.23:51234;branch=z9hG4bKc1;rport\r\n"
                  "Via: SIP/2.0/TCP 10.1.1.1;branch=z9hG4bKc0\r\n"
                  "From: \"Alice\" <sip:alice@example.com>;tag=abc\r\n"
                  "To: <sip:bob@example.com>;tag=edge42\r\n"
                  "Call-ID: inv-1@198.51.100.23\r\n"
                  "CSeq: 1 INVITE\r\n"
                  "Content-Length: 0\r\n\r\n");
    auto parsed = Message::parse(wire);
    REQUIRE(parsed);
    CHECK(validate(*parsed).ok());

    CHECK(make_response(req, 100).find(HeaderId::to)->value == "<sip:bob@example.com>");
    CHECK(make_response(req, 100, {}, "x").find(HeaderId::to)->value == "<sip:bob@example.com>");
    CHECK(make_response(req, 403, "Nope").reason() == "Nope");
    CHECK(make_response(req, 405).reason() == "Method Not Allowed");

    Message tagged = parse(std::string(kInvite).replace(
        std::string(kInvite).find("<sip:bob@example.com>\r\n"), 23, "<sip:bob@example.com>;tag=t1\r\n"));
    CHECK(make_response(tagged, 400, {}, "mine").find(HeaderId::to)->value == "<sip:bob@example.com>;tag=t1");
}

TEST_CASE("MRA method policy: UPDATE is answered 501", "[sip][proxy]") {
    CHECK(mra_method_policy("UPDATE").status == 501);
    CHECK(mra_method_policy("UPDATE").reason == "Not Implemented");
    for (const char* m : {"INVITE", "ACK", "BYE", "CANCEL", "REGISTER", "SUBSCRIBE", "NOTIFY", "REFER",
                          "INFO", "MESSAGE", "OPTIONS", "PRACK", "PUBLISH", "update", "X-CUSTOM"})
        CHECK(mra_method_policy(m).status == 0);
    CHECK(std::string(mra_allow_header()).find("UPDATE") == std::string::npos);
    CHECK(std::string(mra_allow_header()).find("INVITE") != std::string::npos);
    Message upd = parse(std::string(kInvite)
                            .replace(0, 6, "UPDATE")
                            .replace(std::string(kInvite).find("CSeq: 1 INVITE"), 14, "CSeq: 1 UPDATE"));
    REQUIRE(validate(upd).ok());
    auto pol = mra_method_policy(upd.method());
    Message r = make_response(upd, pol.status, pol.reason);
    CHECK(r.serialize().rfind("SIP/2.0 501 Not Implemented\r\n", 0) == 0);
}

TEST_CASE("Proxy-Require inspection (bext01 style)", "[sip][proxy]") {
    Message m = parse("OPTIONS sip:x SIP/2.0\r\nProxy-Require: nothingSupportedHere, sec-agree\r\n"
                      "Proxy-Require: Path\r\nRequire: alsoUnknown\r\nl: 0\r\n\r\n");
    auto bad = unsupported_proxy_require(m, {"path", "outbound"});
    REQUIRE(bad.size() == 2);
    CHECK(bad[0] == "nothingSupportedHere");
    CHECK(bad[1] == "sec-agree");
    CHECK(unsupported_proxy_require(m, {"path", "sec-agree", "nothingsupportedhere"}).empty());
    Message none = parse("OPTIONS sip:x SIP/2.0\r\nRequire: foo\r\nl: 0\r\n\r\n");
    CHECK(unsupported_proxy_require(none, {}).empty()); // Require is for the UAS, not the proxy
}

TEST_CASE("rport and received are filled in the top Via only (RFC 3581)", "[sip][proxy]") {
    Message m = parse(kInvite);
    REQUIRE(fill_received_rport(m, "203.0.113.9", 40000));
    auto vias = m.values(HeaderId::via);
    REQUIRE(vias.size() == 2);
    auto top = Via::parse(vias[0]);
    REQUIRE(top);
    CHECK(top->params.get("received") == std::optional<std::string_view>("203.0.113.9"));
    CHECK(top->params.get("rport") == std::optional<std::string_view>("40000"));
    CHECK(vias[1].find("received") == std::string_view::npos);
    // A response built from it carries them back to the client.
    auto r = make_response(m, 200);
    CHECK(r.values(HeaderId::via)[0].find("rport=40000") != std::string_view::npos);

    // Same host, no rport asked: nothing to add (RFC 3261 18.2.1).
    Message same = parse(std::string(kInvite).replace(std::string(kInvite).find(";rport"), 6, ""));
    REQUIRE(fill_received_rport(same, "198.51.100.23", 51234));
    CHECK(same.values(HeaderId::via)[0].find("received") == std::string_view::npos);
    // Another host without rport: received only.
    REQUIRE(fill_received_rport(same, "192.0.2.1", 51234));
    CHECK(same.values(HeaderId::via)[0].find("received=192.0.2.1") != std::string_view::npos);
    CHECK(same.values(HeaderId::via)[0].find("rport") == std::string_view::npos);
}
