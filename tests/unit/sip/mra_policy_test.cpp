// The SIP routing decisions of the MRA proxy (issue #14 items 8-10) and the link message format (#13).
#include "common/sip/link_codec.h"
#include "common/sip/message.h"
#include "common/sip/mra_policy.h"
#include "common/sip/proxy.h"

#include <catch2/catch.hpp>

#include <string>

using namespace edgepair::sip;

namespace {

Message parse(std::string text) {
    std::string wire;
    for (char c : text) {
        if (c == '\n') wire += '\r';
        wire += c;
    }
    auto m = Message::parse(wire);
    REQUIRE(m);
    return std::move(*m);
}

const char* kInvite = R"(INVITE sip:bob@example.com SIP/2.0
Via: SIP/2.0/TLS 198.51.100.7:5061;branch=z9hG4bKa1
Max-Forwards: 70
From: <sip:alice@example.com>;tag=1
To: <sip:bob@example.com>
Call-ID: c1
CSeq: 1 INVITE
)";

Uri ours(size_t idx, const Uri&) {
    auto u = Uri::parse("sip:TOKEN@10.0.0.2:40000;transport=tcp");
    REQUIRE(u);
    u->params.set("epc", std::to_string(idx));
    return *u;
}

std::string with(const std::string& extra) {
    return std::string(kInvite) + extra + "Content-Length: 0\n\n";
}

} // namespace

TEST_CASE("every Contact a client sends is rewritten, across headers and list elements", "[sip][policy]") {
    Message m = parse(with("Contact: <sip:a@192.0.2.1:5061;transport=tls>;expires=60\n"
                           "Contact: \"B\" <sip:b@10.9.9.9>, sip:c@10.9.9.10\n"));
    ContactTable t;
    REQUIRE(rewrite_client_contacts(m, t, ours) == ContactVerdict::ok);
    auto vals = m.values(HeaderId::contact);
    REQUIRE(vals.size() == 3);
    for (auto v : vals) {
        CHECK(v.find("TOKEN@10.0.0.2") != std::string_view::npos);
        CHECK(v.find("10.9.9") == std::string_view::npos);
        CHECK(v.find("192.0.2.1") == std::string_view::npos);
    }
    CHECK(vals[0].find("expires=60") != std::string_view::npos); // header parameters kept
    CHECK(vals[1].find("\"B\"") != std::string_view::npos);
    CHECK(t.size() == 3);
    REQUIRE(t.lookup("1"));
    CHECK(*t.lookup("1") == "sip:b@10.9.9.9");
}

TEST_CASE("the 17th distinct Contact is refused, not passed through", "[sip][policy]") {
    ContactTable t;
    std::string contacts;
    for (int i = 0; i < 17; ++i)
        contacts += "Contact: <sip:u" + std::to_string(i) + "@10.1.1." + std::to_string(i) + ">\n";
    Message m = parse(with(contacts));
    CHECK(rewrite_client_contacts(m, t, ours) == ContactVerdict::too_many);

    SECTION("one at a time over many messages on the same flow") {
        ContactTable t2;
        for (int i = 0; i < 16; ++i) {
            Message one = parse(with("Contact: <sip:u" + std::to_string(i) + "@10.1.1.1>\n"));
            CHECK(rewrite_client_contacts(one, t2, ours) == ContactVerdict::ok);
        }
        // A Contact already known is still rewritten once the table is full.
        Message again = parse(with("Contact: <sip:u3@10.1.1.1>\n"));
        CHECK(rewrite_client_contacts(again, t2, ours) == ContactVerdict::ok);
        CHECK(again.values(HeaderId::contact)[0].find("epc=3") != std::string_view::npos);
        Message more = parse(with("Contact: <sip:u16@10.1.1.1>\n"));
        CHECK(rewrite_client_contacts(more, t2, ours) == ContactVerdict::too_many);
    }
}

TEST_CASE("Contact edge cases: star, malformed, bad epc", "[sip][policy]") {
    ContactTable t;
    Message star = parse(with("Contact: *\n"));
    CHECK(rewrite_client_contacts(star, t, ours) == ContactVerdict::ok);
    CHECK(star.values(HeaderId::contact)[0] == "*");
    Message bad = parse(with("Contact: <sip:a@\n"));
    CHECK(rewrite_client_contacts(bad, t, ours) == ContactVerdict::malformed);
    CHECK(t.lookup("0") == nullptr);
    CHECK(t.lookup("") == nullptr);
    CHECK(t.lookup("1x") == nullptr);
    CHECK(t.lookup("-1") == nullptr);
}

TEST_CASE("Route policy: edge entries popped, node entries kept, anything else refused", "[sip][policy]") {
    auto is_edge = [](const Uri& u) {
        return (u.user == "TOKEN" && u.host == "10.0.0.2" && u.port == 40000) ||
               u.host == "expe1.example.com";
    };
    auto is_node = [](const Uri& u) { return u.host == "127.0.1.1" && (!u.port || *u.port == 5060); };

    SECTION("an in-dialog request along the recorded route set") {
        Message m = parse(with("Route: <sip:TOKEN@10.0.0.2:40000;transport=tcp;lr>\n"
                               "Route: <sip:127.0.1.1:5060;transport=tcp;lr>\n"));
        auto v = apply_client_route_policy(m, is_edge, is_node);
        CHECK(v.ok);
        CHECK(v.popped == 1);
        REQUIRE(m.values(HeaderId::route).size() == 1);
        CHECK(m.values(HeaderId::route)[0].find("127.0.1.1") != std::string_view::npos);
    }
    SECTION("a call between two MRA clients: the edge again behind the node") {
        Message m = parse(with("Route: <sip:TOKEN@10.0.0.2:40000;lr>, <sip:127.0.1.1;lr>\n"
                               "Route: <sip:TOKEN@10.0.0.2:40000;transport=tcp;lr>\n"));
        auto v = apply_client_route_policy(m, is_edge, is_node);
        CHECK(v.ok);
        CHECK(m.values(HeaderId::route).size() == 2);
    }
    SECTION("a token copied into a URI naming another host") {
        Message m = parse(with("Route: <sip:127.0.1.1;lr>, <sip:TOKEN@10.66.0.9:5060;lr>\n"));
        auto v = apply_client_route_policy(m, is_edge, is_node);
        CHECK_FALSE(v.ok);
        CHECK(v.foreign.find("10.66.0.9") != std::string::npos);
    }
    SECTION("a preloaded outbound-proxy Route naming edge-e") {
        Message m = parse(with("Route: <sip:expe1.example.com:5061;transport=tls;lr>\n"));
        auto v = apply_client_route_policy(m, is_edge, is_node);
        CHECK(v.ok);
        CHECK(m.values(HeaderId::route).empty());
    }
    SECTION("a foreign host, alone or behind ours") {
        Message m = parse(with("Route: <sip:10.66.0.9:5060;lr>\n"));
        auto v = apply_client_route_policy(m, is_edge, is_node);
        CHECK_FALSE(v.ok);
        CHECK(v.foreign.find("10.66.0.9") != std::string::npos);
        Message m2 =
            parse(with("Route: <sip:TOKEN@10.0.0.2:40000;lr>, <sip:127.0.1.1;lr>, <sip:10.66.0.9;lr>\n"));
        CHECK_FALSE(apply_client_route_policy(m2, is_edge, is_node).ok);
    }
    SECTION("a node host on another port") {
        Message m = parse(with("Route: <sip:127.0.1.1:8443;lr>\n"));
        CHECK_FALSE(apply_client_route_policy(m, is_edge, is_node).ok);
    }
    SECTION("malformed") {
        Message m = parse(with("Route: <sip:\n"));
        CHECK_FALSE(apply_client_route_policy(m, is_edge, is_node).ok);
    }
    SECTION("no Route at all") {
        Message m = parse(with(""));
        auto v = apply_client_route_policy(m, is_edge, is_node);
        CHECK(v.ok);
        CHECK(v.popped == 0);
    }
}

TEST_CASE("Proxy-Require: the pair supports no proxy extension", "[sip][policy]") {
    Message m = parse(with("Proxy-Require: foo, sec-agree\n"));
    auto u = unsupported_proxy_require(m, mra_supported_proxy_extensions());
    REQUIRE(u.size() == 2);
    CHECK(u[0] == "foo");
    CHECK(u[1] == "sec-agree");
    Message none = parse(with(""));
    CHECK(unsupported_proxy_require(none, mra_supported_proxy_extensions()).empty());
}

TEST_CASE("link format: messages keep their boundaries across arbitrary splits", "[sip][link]") {
    std::string a = "OPTIONS sip:a SIP/2.0\r\nContent-Length: 0\r\n\r\n";
    std::string b = "MESSAGE sip:b SIP/2.0\r\nContent-Length: 5\r\n\r\nhello";
    std::string wire = link_encode(a) + link_encode(b);
    CHECK(wire.size() == a.size() + b.size() + 8);
    for (size_t chunk = 1; chunk <= wire.size(); ++chunk) {
        LinkDecoder d(1024);
        std::vector<std::string> got;
        for (size_t pos = 0; pos < wire.size(); pos += chunk) {
            d.feed(std::string_view(wire).substr(pos, chunk));
            std::string_view out;
            while (d.next(out) == LinkDecoder::Status::message)
                got.emplace_back(out);
        }
        REQUIRE(got.size() == 2);
        CHECK(got[0] == a);
        CHECK(got[1] == b);
    }
}

TEST_CASE("link format: an empty or over-limit length is a broken peer", "[sip][link]") {
    LinkDecoder d(100);
    d.feed(link_encode(std::string(101, 'x')));
    std::string_view out;
    CHECK(d.next(out) == LinkDecoder::Status::error);
    CHECK(d.failed());
    d.feed(link_encode("x"));
    CHECK(d.next(out) == LinkDecoder::Status::error);
    LinkDecoder z(100);
    z.feed(std::string(4, '\0'));
    CHECK(z.next(out) == LinkDecoder::Status::error);
}

TEST_CASE("the Expressway Contact form keeps the user part and names the client", "[sip][policy]") {
    auto client = Uri::parse("sip:6a1b2c3d-uuid@192.0.2.7:51000;transport=tls;ob");
    REQUIRE(client);
    auto base = Uri::parse("sip:10.0.0.2:40000;transport=tcp");
    REQUIRE(base);
    Uri u = mra_contact(*client, *base, "tok123", 2, "192.0.2.7:51000");
    if (kContactForm == ContactForm::expressway) {
        CHECK(u.user == "6a1b2c3d-uuid");
        CHECK(u.params.get("orig-hostport") == std::optional<std::string_view>("192.0.2.7:51000"));
        CHECK(u.params.get(kFlowParam) == std::optional<std::string_view>("tok123"));
        CHECK(!u.params.has("ob")); // the client's own parameters stay outside
    } else {
        CHECK(u.user == "tok123");
    }
    CHECK(u.host == "10.0.0.2");
    CHECK(u.params.get("epc") == std::optional<std::string_view>("2"));
    CHECK(mra_flow_token(u) == std::optional<std::string_view>("tok123"));
    auto reparsed = Uri::parse(u.to_string());
    REQUIRE(reparsed);
    CHECK(mra_flow_token(*reparsed) == std::optional<std::string_view>("tok123"));
}
