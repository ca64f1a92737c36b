#include "common/sip/headers.h"
#include "common/sip/uri.h"

#include <catch2/catch.hpp>

using namespace edgepair::sip;

TEST_CASE("SIP URI parsing", "[sip][uri]") {
    auto u = Uri::parse("sips:alice:secret@[2001:db8::1]:5061;transport=tls;lr;ob?Subject=hi");
    REQUIRE(u);
    CHECK(u->is_sip());
    CHECK(u->is_sips());
    CHECK(u->user == "alice");
    CHECK(u->password == "secret");
    CHECK(u->host == "[2001:db8::1]");
    CHECK(u->port == 5061);
    CHECK(u->transport() == "tls");
    CHECK(u->lr());
    CHECK(u->ob());
    CHECK(u->headers == "Subject=hi");
    CHECK(u->to_string() == "sips:alice:secret@[2001:db8::1]:5061;transport=tls;lr;ob?Subject=hi");

    auto h = Uri::parse("sip:expe1.example.com");
    REQUIRE(h);
    CHECK(h->user.empty());
    CHECK_FALSE(h->port);
    CHECK(h->to_string() == "sip:expe1.example.com");

    auto t = Uri::parse("tel:+15551234;phone-context=example.com");
    REQUIRE(t);
    CHECK_FALSE(t->is_sip());
    CHECK(t->opaque == "+15551234;phone-context=example.com");
    CHECK(t->to_string() == "tel:+15551234;phone-context=example.com");

    auto mixed = Uri::parse("SIP:Bob@Example.COM;LR");
    REQUIRE(mixed);
    CHECK(mixed->is_sip());
    CHECK(mixed->lr());
}

TEST_CASE("malformed URIs", "[sip][uri]") {
    for (const char* bad : {"",
                            "sip:",
                            "sip:@host",
                            "sip:a@",
                            "sip:a@host:",
                            "sip:a@host:65536",
                            "sip:a@host:12x",
                            "sip:a@[::1",
                            "sip:a@[zz::1]",
                            "sip:a b@host",
                            "sip:a@ho st",
                            "sip:a@host;",
                            "sip:a@host;=x",
                            "sip:a@host;x=",
                            "sip:%4@host",
                            "sip:%zz@host",
                            "<sip:a@host>",
                            "1sip:a@host",
                            "sip:a@h\x01",
                            "sip:a@-host",
                            "sip:a@host;p=\"q\""}) {
        INFO(bad);
        CHECK_FALSE(Uri::parse(bad));
    }
    CHECK(Uri::parse("sip:a@host:65535"));
}

TEST_CASE("name-addr and addr-spec", "[sip][uri]") {
    auto a = NameAddr::parse("\"Alice \\\"A\\\" Smith\" <sip:alice@example.com>;tag=88");
    REQUIRE(a);
    CHECK(a->display == "\"Alice \\\"A\\\" Smith\"");
    CHECK(a->tag() == "88");
    CHECK(a->angle);
    CHECK(a->to_string() == "\"Alice \\\"A\\\" Smith\" <sip:alice@example.com>;tag=88");

    // In addr-spec form the parameters belong to the header, not the URI (RFC 3261 20.10).
    auto b = NameAddr::parse("sip:bob@example.com;tag=7;expires=60");
    REQUIRE(b);
    CHECK_FALSE(b->angle);
    CHECK(b->uri.params.empty());
    CHECK(b->tag() == "7");
    CHECK(b->to_string() == "<sip:bob@example.com>;tag=7;expires=60");

    auto c = NameAddr::parse("<sip:bob@example.com;transport=tls>;expires=60");
    REQUIRE(c);
    CHECK(c->uri.transport() == "tls");
    CHECK(c->params.get("expires") == "60");
    CHECK_FALSE(c->tag());

    auto d = NameAddr::parse("Anonymous   User <sip:anonymous@anonymous.invalid>");
    REQUIRE(d);
    CHECK(d->display == "Anonymous   User");

    for (const char* bad : {"<sip:a@b", "\"x <sip:a@b>", "x <sip:a@b>;", "<sip:a@b>;;tag=1", "<sip:a@b> junk",
                            "<sip:a@b>;tag", "\"x\" sip:a@b", "a@b"}) {
        INFO(bad);
        if (std::string_view(bad) == "<sip:a@b>;tag") {
            CHECK(NameAddr::parse(bad)); // a parameter without value is legal
            continue;
        }
        CHECK_FALSE(NameAddr::parse(bad));
    }
}

TEST_CASE("header params tolerate whitespace around ';' and '='", "[sip][uri]") {
    auto p = parse_header_params(" ; tag = abc ;  lr ; received=2001:db8::5 ; x=\"a;b\"");
    REQUIRE(p);
    REQUIRE(p->size() == 4);
    CHECK(p->get("TAG") == "abc");
    CHECK(p->get("lr") == "");
    CHECK(p->get("received") == "2001:db8::5");
    CHECK(p->get("x") == "\"a;b\"");
    CHECK_FALSE(p->get("missing"));
    Params q = *p;
    q.set("tag", std::string("new"));
    q.remove("lr");
    CHECK(q.to_string() == ";tag=new;received=2001:db8::5;x=\"a;b\"");
}

// Params keep their list as one normalised text (issue 18): look-ups, replacement and removal must find
// parameter boundaries past quoted values that hold ';', '=' and escaped quotes.
TEST_CASE("parameter text: boundaries past quoted values", "[sip][uri]") {
    auto p = parse_header_params(";a=\"x;b=1\\\";c\";b=2;flag;+sip.instance=\"<urn:uuid:1>\";last=\"\"");
    REQUIRE(p);
    CHECK(p->size() == 5);
    CHECK(p->get("a") == "\"x;b=1\\\";c\"");
    CHECK(p->get("b") == "2"); // not the "b=1" inside the quoted value
    CHECK(p->get("c") == std::nullopt);
    CHECK(p->get("flag") == "");
    CHECK(p->get("+SIP.INSTANCE") == "\"<urn:uuid:1>\"");
    CHECK(p->get("last") == "\"\"");
    Params q = *p;
    q.set("flag", std::string("on")); // a flag gains a value in place
    q.set("b", std::nullopt);         // a value is dropped in place
    q.set("new", std::string("v"));   // absent: appended
    CHECK(q.to_string() == ";a=\"x;b=1\\\";c\";b;flag=on;+sip.instance=\"<urn:uuid:1>\";last=\"\";new=v");
    CHECK(q.remove("A"));
    CHECK_FALSE(q.remove("a"));
    CHECK(q.to_string() == ";b;flag=on;+sip.instance=\"<urn:uuid:1>\";last=\"\";new=v");
    CHECK(q.remove("new"));
    CHECK(q.size() == 4);
    // A value taken from the same list survives the text growing under it.
    q.set("copy", q.get("+sip.instance"));
    q.set("last", q.get("flag"));
    CHECK(q.get("copy") == "\"<urn:uuid:1>\"");
    CHECK(q.get("last") == "on");
    q.remove("copy");
    Params empty;
    CHECK(empty.empty());
    CHECK(empty.size() == 0);
    CHECK_FALSE(empty.get("a"));
    CHECK_FALSE(empty.remove("a"));
    // URI parameters: no quotes in the grammar; names and values as received.
    auto u = Uri::parse("sip:u@h;transport=tls;lr;maddr=10.0.0.1");
    REQUIRE(u);
    CHECK(u->params.size() == 3);
    CHECK(u->lr());
    CHECK(u->transport() == "tls");
    CHECK(u->to_string() == "sip:u@h;transport=tls;lr;maddr=10.0.0.1");
}

TEST_CASE("Via, CSeq, Max-Forwards, Call-ID", "[sip][uri]") {
    auto v = Via::parse("SIP/2.0/TLS [2001:db8::9]:5061;branch=z9hG4bKabc;received=192.0.2.1;rport=5000");
    REQUIRE(v);
    CHECK(v->host == "[2001:db8::9]");
    CHECK(v->port == 5061);
    CHECK(v->rfc3261_branch());
    CHECK(v->to_string() == "SIP/2.0/TLS [2001:db8::9]:5061;branch=z9hG4bKabc;received=192.0.2.1;rport=5000");
    CHECK_FALSE(Via::parse("SIP/2.0/TLS"));
    CHECK_FALSE(Via::parse("SIP/2.0 host"));
    CHECK_FALSE(Via::parse("SIP/2.0/UDP host:99999"));
    CHECK_FALSE(Via::parse("SIP/2.0/UDP host;branch=z9hG4bK1 junk"));
    CHECK_FALSE(Via::parse("SIP/2.0/UDP host;branch=z9hG4bK1?"));

    CHECK(CSeq::parse("4711 INVITE")->number == 4711u);
    CHECK_FALSE(CSeq::parse("INVITE"));
    CHECK_FALSE(CSeq::parse("1INVITE"));
    CHECK_FALSE(CSeq::parse("-1 INVITE"));
    CHECK_FALSE(CSeq::parse("1 INVITE x"));

    CHECK(*parse_max_forwards("0") == 0);
    CHECK(*parse_max_forwards(" 255 ") == 255);
    CHECK_FALSE(parse_max_forwards("256"));
    CHECK_FALSE(parse_max_forwards("-1"));
    CHECK_FALSE(parse_max_forwards(""));

    CHECK(valid_call_id("a84b4c76e66710@pc33.atlanta.com"));
    CHECK_FALSE(valid_call_id("a b"));
    CHECK_FALSE(valid_call_id("a@b@c"));
    CHECK_FALSE(valid_call_id(""));
}
