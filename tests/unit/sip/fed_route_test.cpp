#include "common/sip/fed_route.h"
#include "common/sip/proxy.h"

#include <catch2/catch.hpp>

#include <string>

using namespace edgepair::sip;

namespace {

Message parse(const std::string& s) {
    auto m = Message::parse(s);
    REQUIRE(m);
    return *m;
}

std::string request(const std::string& method, const std::string& to_params, const std::string& routes) {
    return method +
           " sip:alice@example.com SIP/2.0\r\n"
           "Via: SIP/2.0/TLS 198.51.100.7:5061;branch=z9hG4bK1\r\n" +
           routes +
           "From: <sip:bob@partner.test>;tag=a\r\n"
           "To: <sip:alice@example.com>" +
           to_params +
           "\r\n"
           "Call-ID: c1\r\n"
           "CSeq: 1 " +
           method + "\r\nContent-Length: 0\r\n\r\n";
}

} // namespace

TEST_CASE("fed route: which requests form a dialog", "[sip][federation]") {
    CHECK(fed_dialog_forming(parse(request("SUBSCRIBE", "", ""))));
    CHECK(fed_dialog_forming(parse(request("INVITE", "", ""))));
    CHECK(fed_dialog_forming(parse(request("REFER", "", ""))));
    CHECK_FALSE(fed_dialog_forming(parse(request("SUBSCRIBE", ";tag=x", "")))); // a refresh
    CHECK_FALSE(fed_dialog_forming(parse(request("MESSAGE", "", ""))));
    CHECK_FALSE(fed_dialog_forming(parse(request("NOTIFY", "", ""))));
}

TEST_CASE("fed route: our entry names us and carries the remote domain", "[sip][federation]") {
    auto u = fed_record_route("10.0.0.2", 5062, "tcp", "partner.test");
    CHECK(u.to_string() == "sip:10.0.0.2:5062;transport=tcp;lr;epfed=partner.test");
    CHECK(fed_names(u, "10.0.0.2", 5062));
    CHECK_FALSE(fed_names(u, "10.0.0.2", 5063));
    CHECK(fed_domain(u) == "partner.test");
    CHECK(fed_record_route("2001:db8::1", 5062, "tls").to_string() ==
          "sip:[2001:db8::1]:5062;transport=tls;lr");
    // A URI without a port names the transport's default port.
    auto tls = Uri::parse("sip:SIP.Example.com;transport=TLS;lr");
    REQUIRE(tls);
    CHECK(fed_names(*tls, "sip.example.com", 5061));
    CHECK_FALSE(fed_names(*tls, "sip.example.com", 5060));
    auto bad = Uri::parse("sip:10.0.0.2:5062;lr;epfed=a..b");
    REQUIRE(bad);
    CHECK_FALSE(fed_domain(*bad));
}

TEST_CASE("fed route: only the top entries naming us are removed", "[sip][federation]") {
    auto m = parse(
        request("NOTIFY", ";tag=x",
                "Route: <sip:10.0.0.2:5062;transport=tcp;lr;epfed=Partner.Test>, <sip:10.0.0.2:5062;lr>\r\n"
                "Route: <sip:10.0.0.9:5060;lr>, <sip:10.0.0.2:5062;lr>\r\n"));
    auto p = fed_pop_own_routes(m, "10.0.0.2", 5062);
    REQUIRE(p);
    CHECK(p->count == 2);
    CHECK(p->domain == "partner.test");
    auto left = m.values(HeaderId::route);
    REQUIRE(left.size() == 2);
    CHECK(left[0] == "<sip:10.0.0.9:5060;lr>");
    // Someone else's entry on top: nothing removed.
    auto again = fed_pop_own_routes(m, "10.0.0.2", 5062);
    REQUIRE(again);
    CHECK(again->count == 0);
    CHECK_FALSE(again->domain);
    // A malformed top Route is an error, not a silent pass.
    auto broken = parse(request("NOTIFY", ";tag=x", "Route: garbage<\r\n"));
    CHECK_FALSE(fed_pop_own_routes(broken, "10.0.0.2", 5062));
}

TEST_CASE("fed route: the relay step both edges share", "[sip][federation]") {
    const FedHop hop{"2001:db8::2", 5062, "tcp"};
    // An IPv6 hop names itself bracketed, and recognises itself either way.
    auto sub = request("SUBSCRIBE", "", "Route: <sip:[2001:DB8::2]:5062;lr;epfed=partner.test>\r\n");
    auto m = parse(sub);
    auto out = fed_route_through(sub, m, hop, "partner.test");
    REQUIRE(out);
    auto back = parse(*out);
    CHECK(back.values(HeaderId::route).empty());
    auto rr = back.values(HeaderId::record_route);
    REQUIRE(rr.size() == 1);
    CHECK(rr[0] == "<sip:[2001:db8::2]:5062;transport=tcp;lr;epfed=partner.test>");
    // Nothing to change: the very bytes come back.
    auto notify = request("NOTIFY", ";tag=x", "");
    auto n = parse(notify);
    auto same = fed_route_through(notify, n, hop);
    REQUIRE(same);
    CHECK(*same == notify);
    // A malformed top Route is refused.
    auto broken_bytes = request("NOTIFY", ";tag=x", "Route: garbage<\r\n");
    auto broken = parse(broken_bytes);
    CHECK_FALSE(fed_route_through(broken_bytes, broken, hop));
}
