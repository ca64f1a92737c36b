#include "common/xmpp/s2s.h"

#include <catch2/catch.hpp>

using namespace edgepair::xmpp;

namespace {
const std::string kHeader =
    "<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:db='jabber:server:dialback' "
    "xmlns:stream='http://etherx.jabber.org/streams' id='abc' from='partner.test' to='example.com' "
    "version='1.0'>";
} // namespace

TEST_CASE("domain policy: deny list, allow list, wildcards", "[xmpp][s2s]") {
    DomainPolicy open;
    CHECK(open.refusal("partner.test").empty());
    CHECK(open.refusal("Partner.TEST").empty());
    CHECK(open.refusal("") == "bad_domain");
    CHECK(open.refusal("a..b") == "bad_domain");
    CHECK(open.refusal("evil.test'/>") == "bad_domain");

    DomainPolicy deny{{}, {"denied.test", "*.bad.test"}};
    CHECK(deny.refusal("denied.test") == "denied");
    CHECK(deny.refusal("x.bad.test") == "denied");
    CHECK(deny.refusal("bad.test").empty()); // "*." matches subdomains only
    CHECK(deny.refusal("partner.test").empty());

    DomainPolicy allow{{"partner.test", "*.example.org"}, {"no.example.org"}};
    CHECK(allow.refusal("partner.test").empty());
    CHECK(allow.refusal("chat.example.org").empty());
    CHECK(allow.refusal("no.example.org") == "denied"); // the deny list wins
    CHECK(allow.refusal("other.test") == "not_allowed");
}

TEST_CASE("start tag attributes", "[xmpp][s2s]") {
    CHECK(start_tag_attr("<db:result from='a.test' to=\"b.test\">key</db:result>", "from") == "a.test");
    CHECK(start_tag_attr("<db:result from='a.test' to=\"b.test\">key</db:result>", "to") == "b.test");
    CHECK(start_tag_attr("<db:result xfrom='a.test'/>", "from").empty());
    CHECK(start_tag_attr("<db:result from = 'a.test'/>", "from") == "a.test");
    CHECK(start_tag_attr("<db:result/>", "from").empty());
    CHECK(start_tag_attr("<db:result from='unterminated", "from").empty());
    CHECK(start_tag_attr("", "from").empty());
}

TEST_CASE("dial negotiation: STARTTLS offered", "[xmpp][s2s]") {
    DialNegotiator n(S2sSecurity::Required, 65536);
    auto st = n.feed(kHeader);
    CHECK(st.kind == DialStep::More);
    st = n.feed("<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"
                "<dialback xmlns='urn:xmpp:features:dialback'/></stream:features>");
    REQUIRE(st.kind == DialStep::SendStarttls);
    CHECK(DialNegotiator::starttls_request() == "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    st = n.feed("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    CHECK(st.kind == DialStep::Handshake);
}

TEST_CASE("dial negotiation: split input", "[xmpp][s2s]") {
    DialNegotiator n(S2sSecurity::Optional, 65536);
    std::string all =
        kHeader + "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features>";
    DialStep st;
    for (char c : all) {
        st = n.feed(std::string_view(&c, 1));
        if (st.kind != DialStep::More) break;
    }
    CHECK(st.kind == DialStep::SendStarttls);
    st = n.feed("<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    CHECK(st.kind == DialStep::Fail);
}

TEST_CASE("dial negotiation: no TLS offered", "[xmpp][s2s]") {
    const std::string features =
        "<stream:features><dialback xmlns='urn:xmpp:features:dialback'/></stream:features>";
    {
        DialNegotiator n(S2sSecurity::Required, 65536);
        auto st = n.feed(kHeader + features);
        CHECK(st.kind == DialStep::Fail);
        CHECK(st.reason.find("STARTTLS") != std::string::npos);
    }
    for (auto sec : {S2sSecurity::Optional, S2sSecurity::None}) {
        DialNegotiator n(sec, 65536);
        auto st = n.feed(kHeader + " " + features);
        REQUIRE(st.kind == DialStep::Plain);
        // The remote's header and features, unchanged, for the far end.
        CHECK(st.bytes == kHeader + " " + features);
    }
    {
        // none never starts TLS; a server that insists is given up.
        DialNegotiator n(S2sSecurity::None, 65536);
        auto st =
            n.feed(kHeader +
                   "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"
                   "</stream:features>");
        CHECK(st.kind == DialStep::Fail);
    }
}

TEST_CASE("dial negotiation: errors", "[xmpp][s2s]") {
    {
        DialNegotiator n(S2sSecurity::Required, 65536);
        auto st = n.feed(kHeader + "<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
                                   "</stream:error></stream:stream>");
        CHECK(st.kind == DialStep::Fail);
        CHECK(st.reason.find("host-unknown") != std::string::npos);
    }
    {
        DialNegotiator n(S2sSecurity::Required, 65536);
        auto st = n.feed("HTTP/1.1 400 Bad Request\r\n\r\n");
        CHECK(st.kind == DialStep::Fail);
    }
    {
        // A client stream where a server stream is expected.
        DialNegotiator n(S2sSecurity::Required, 65536);
        auto st =
            n.feed("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
                   "version='1.0'>");
        CHECK(st.kind == DialStep::Fail);
    }
}

TEST_CASE("s2s stream pieces", "[xmpp][s2s]") {
    auto h = s2s_stream_header("example.com", "partner.test", "id1");
    CHECK(h.find("xmlns='jabber:server'") != std::string::npos);
    CHECK(h.find("xmlns:db='jabber:server:dialback'") != std::string::npos);
    CHECK(h.find("from='example.com' to='partner.test'") != std::string::npos);
    CHECK(s2s_features(true, true, false) ==
          "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"
          "</stream:features>");
    CHECK(s2s_features(false, false, true) ==
          "<stream:features><dialback xmlns='urn:xmpp:features:dialback'/></stream:features>");
    auto r = s2s_refusal("example.com", "evil.test", "id9", StreamErrorCondition::policy_violation, "no");
    CHECK(r.find("<policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>") != std::string::npos);
    CHECK(r.ends_with("</stream:stream>"));
    CHECK(r.find("id='id9'") != std::string::npos);
    // The framer takes a jabber:server stream with these options, and refuses a jabber:client one.
    Framer f(s2s_framer_options(4096));
    f.feed(h);
    auto ev = f.next();
    REQUIRE(ev);
    CHECK(ev->type == EventType::stream_open);
    CHECK(ev->header.to == "partner.test");
}

TEST_CASE("STARTTLS added to a server's features", "[xmpp][s2s]") {
    const std::string tls = "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
    CHECK(add_starttls_feature(
              "<stream:features><dialback xmlns='urn:xmpp:features:dialback'/></stream:features>") ==
          "<stream:features>" + tls + "<dialback xmlns='urn:xmpp:features:dialback'/></stream:features>");
    CHECK(add_starttls_feature("<stream:features/>") == "<stream:features>" + tls + "</stream:features>");
    CHECK(add_starttls_feature("<s:features xmlns:s='http://etherx.jabber.org/streams' />") ==
          "<s:features xmlns:s='http://etherx.jabber.org/streams' >" + tls + "</s:features>");
    const std::string has = "<stream:features>" + tls + "</stream:features>";
    CHECK(add_starttls_feature(has) == has);
    CHECK(add_starttls_feature("garbage") == "garbage");
}

TEST_CASE("framer: unparsed bytes after the last event", "[xmpp][framer]") {
    Framer f(s2s_framer_options(4096));
    f.feed(kHeader + "<stream:features/><db:result from='a' to='b'>ke");
    int n = 0;
    while (auto ev = f.next())
        ++n;
    CHECK(n == 2);
    CHECK(f.unparsed() == "<db:result from='a' to='b'>ke");
}
