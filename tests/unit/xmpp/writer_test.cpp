#include "common/xmpp/framer.h"
#include "common/xmpp/writer.h"

#include <catch2/catch.hpp>

using namespace edgepair::xmpp;

TEST_CASE("XML escaping", "[xmpp][writer]") {
    CHECK(escape_xml("a<b>&\"c'") == "a&lt;b&gt;&amp;&quot;c&apos;");
    CHECK(escape_xml("plain") == "plain");
    CHECK(escape_xml("") == "");
}

TEST_CASE("server stream header", "[xmpp][writer]") {
    ServerHeader h;
    h.id = "c2s-'1'";
    h.from = "example.com";
    std::string s = stream_header(h);
    CHECK(s == "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
               "xmlns:stream='http://etherx.jabber.org/streams' id='c2s-&apos;1&apos;' from='example.com' "
               "version='1.0' xml:lang='en'>");
    h.to = "alice@example.com";
    CHECK(stream_header(h).find(" to='alice@example.com'") != std::string::npos);
}

TEST_CASE("features, proceed, failure", "[xmpp][writer]") {
    CHECK(features_starttls_required() ==
          "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>"
          "<required/></starttls></stream:features>");
    CHECK(starttls_proceed() == "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    CHECK(starttls_failure() == "<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:stream>");
    CHECK(stream_close() == "</stream:stream>");
}

TEST_CASE("stream errors", "[xmpp][writer]") {
    CHECK(stream_error(StreamErrorCondition::host_unknown) ==
          "<stream:error><host-unknown "
          "xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>");
    CHECK(stream_error(StreamErrorCondition::policy_violation, "too <big> & bad") ==
          "<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
          "<text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>too &lt;big&gt; &amp; bad</text>"
          "</stream:error></stream:stream>");
    CHECK(condition_name(StreamErrorCondition::not_well_formed) == "not-well-formed");
    CHECK(condition_name(StreamErrorCondition::restricted_xml) == "restricted-xml");
    CHECK(condition_name(StreamErrorCondition::remote_connection_failed) == "remote-connection-failed");
    CHECK(condition_name(StreamErrorCondition::unsupported_version) == "unsupported-version");
}

TEST_CASE("an error before our header sends the header first", "[xmpp][writer]") {
    ServerHeader h;
    h.id = "abc";
    h.from = "example.com";
    ServerStreamWriter w(h);
    std::string early = w.error(StreamErrorCondition::not_well_formed, "garbage");
    CHECK(early.rfind(stream_header(h) + "<stream:error><not-well-formed", 0) == 0);
    CHECK(w.header_sent());

    ServerStreamWriter w2(h);
    std::string open = w2.open();
    CHECK(open == stream_header(h));
    CHECK(w2.error(StreamErrorCondition::conflict).rfind("<stream:error><conflict", 0) == 0);

    ServerStreamWriter w3(h);
    CHECK(w3.features() == stream_header(h) + features_starttls_required());
    CHECK(w3.features() == features_starttls_required());
    w3.restart("def");
    CHECK_FALSE(w3.header_sent());
    CHECK(w3.features().find("id='def'") != std::string::npos);
}

TEST_CASE("what the writer produces parses as a stream", "[xmpp][writer]") {
    // Our own output fed to our own framer (configured for the server's header, which has from/id).
    ServerHeader h;
    h.id = "x1";
    h.from = "example.com";
    ServerStreamWriter w(h);
    std::string out = w.features(); // separate statements: the order of the writer calls matters
    out += starttls_proceed();
    out += w.error(StreamErrorCondition::host_unknown, "a<b");
    Framer f;
    f.feed(out);
    std::vector<Event> evs;
    while (auto e = f.next())
        evs.push_back(std::move(*e));
    REQUIRE(evs.size() == 5);
    CHECK(evs[0].header.id == "x1");
    CHECK(evs[0].header.from == "example.com");
    CHECK(evs[1].name == "features");
    CHECK(evs[1].ns == "http://etherx.jabber.org/streams");
    CHECK(evs[2].name == "proceed");
    CHECK(evs[3].name == "error");
    CHECK(evs[4].type == EventType::stream_close);
}
