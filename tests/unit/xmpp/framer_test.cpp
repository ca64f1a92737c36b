#include "common/xmpp/framer.h"
#include "common/xmpp/writer.h"

#include <catch2/catch.hpp>

#include <random>
#include <string>
#include <vector>

using namespace edgepair::xmpp;

namespace {

// What Jabber sends on 5222 before TLS.
const std::string kOpen = "<?xml version='1.0'?><stream:stream to='example.com' xmlns='jabber:client' "
                          "xmlns:stream='http://etherx.jabber.org/streams' version='1.0' xml:lang='en'>";
const std::string kStartTls = "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
const std::string kIq =
    "<iq type='get' id='purple4a8e7b1a' to='example.com'><query xmlns='jabber:iq:roster'/></iq>";
const std::string kMessage =
    "<message to='bob@example.com/jabber_1234' type='chat' id='m1'><body>caf\xc3\xa9 &amp; &lt;tea&gt; "
    "\xf0\x9f\x8d\xb5</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>";
const std::string kPresence = "<presence/>";
const std::string kAuth =
    "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHNlY3JldA==</auth>";

std::vector<Event> drain(Framer& f) {
    std::vector<Event> out;
    while (auto ev = f.next())
        out.push_back(std::move(*ev));
    return out;
}

std::vector<Event> feed_all(std::string_view data, FramerOptions opts = {}) {
    Framer f(std::move(opts));
    f.feed(data);
    return drain(f);
}

Event last_error(std::string_view data, FramerOptions opts = {}) {
    auto evs = feed_all(data, std::move(opts));
    REQUIRE_FALSE(evs.empty());
    REQUIRE(evs.back().type == EventType::error);
    return evs.back();
}

// Collapses keep-alive runs so results can be compared across different chunkings.
std::vector<std::string> summary(const std::vector<Event>& evs) {
    std::vector<std::string> out;
    for (const auto& e : evs) {
        switch (e.type) {
        case EventType::stream_open:
            out.push_back("open:" + e.header.to);
            break;
        case EventType::stanza:
            out.push_back("stanza:" + e.raw);
            break;
        case EventType::starttls:
            out.push_back("starttls:" + e.raw);
            break;
        case EventType::keepalive:
            if (out.empty() || out.back().rfind("ws:", 0) != 0)
                out.push_back("ws:" + e.raw);
            else
                out.back() += e.raw;
            break;
        case EventType::stream_close:
            out.push_back("close");
            break;
        case EventType::error:
            out.push_back("error:" + std::string(condition_name(e.condition)));
            break;
        }
    }
    return out;
}

} // namespace

TEST_CASE("stream header is reported as soon as it arrives", "[xmpp][framer]") {
    Framer f;
    f.feed(kOpen.substr(0, kOpen.size() - 1));
    CHECK(drain(f).empty());
    f.feed(">");
    auto evs = drain(f);
    REQUIRE(evs.size() == 1);
    REQUIRE(evs[0].type == EventType::stream_open);
    const StreamHeader& h = evs[0].header;
    CHECK(h.to == "example.com");
    CHECK(h.version == "1.0");
    CHECK(h.lang == "en");
    CHECK(h.content_ns == "jabber:client");
    CHECK(h.from.empty());
    CHECK(h.raw == kOpen);
    CHECK(f.header_seen());
}

TEST_CASE("stanzas come out byte-exact", "[xmpp][framer]") {
    auto evs = feed_all(kOpen + kIq + kMessage + kPresence + kAuth);
    REQUIRE(evs.size() == 5);
    CHECK(evs[1].type == EventType::stanza);
    CHECK(evs[1].raw == kIq);
    CHECK(evs[1].name == "iq");
    CHECK(evs[1].ns == "jabber:client");
    CHECK(evs[2].raw == kMessage);
    CHECK(evs[3].raw == kPresence);
    CHECK(evs[4].raw == kAuth);
    CHECK(evs[4].name == "auth");
    CHECK(evs[4].ns == "urn:ietf:params:xml:ns:xmpp-sasl");
}

TEST_CASE("whitespace keep-alives between stanzas", "[xmpp][framer]") {
    Framer f;
    f.feed(kOpen);
    drain(f);
    f.feed(" ");
    auto evs = drain(f);
    REQUIRE(evs.size() == 1);
    CHECK(evs[0].type == EventType::keepalive);
    CHECK(evs[0].raw == " ");
    f.feed("\n\n" + kPresence + "\t");
    evs = drain(f);
    REQUIRE(evs.size() == 3);
    CHECK(evs[0].type == EventType::keepalive);
    CHECK(evs[0].raw == "\n\n");
    CHECK(evs[1].type == EventType::stanza);
    CHECK(evs[2].type == EventType::keepalive);
    // Whitespace inside a stanza is part of the stanza, not a keep-alive.
    f.feed("<message>\n <body> </body>\n</message>");
    evs = drain(f);
    REQUIRE(evs.size() == 1);
    CHECK(evs[0].type == EventType::stanza);
    CHECK(evs[0].raw == "<message>\n <body> </body>\n</message>");
}

TEST_CASE("text between stanzas is an error", "[xmpp][framer]") {
    CHECK(last_error(kOpen + " hello ").condition == StreamErrorCondition::bad_format);
}

TEST_CASE("stanzas split at random boundaries", "[xmpp][framer]") {
    std::string stream = kOpen + kIq + "  " + kMessage + "\n" + kPresence + kAuth + " </stream:stream>";
    auto whole = summary(feed_all(stream));
    REQUIRE(whole.size() == 9);
    CHECK(whole.back() == "close");
    std::mt19937 rng(12345);
    for (int round = 0; round < 300; ++round) {
        Framer f;
        std::vector<Event> evs;
        size_t pos = 0;
        while (pos < stream.size()) {
            size_t n = std::uniform_int_distribution<size_t>(1, 40)(rng);
            f.feed(std::string_view(stream).substr(pos, n));
            pos += n;
            for (auto& e : drain(f))
                evs.push_back(std::move(e));
        }
        REQUIRE(summary(evs) == whole);
    }
    // And one byte at a time, which also splits every UTF-8 sequence.
    Framer f;
    std::vector<Event> evs;
    for (char c : stream) {
        f.feed(std::string_view(&c, 1));
        for (auto& e : drain(f))
            evs.push_back(std::move(e));
    }
    CHECK(summary(evs) == whole);
}

TEST_CASE("STARTTLS then a new stream after restart", "[xmpp][framer]") {
    Framer f;
    f.feed(kOpen + kStartTls);
    auto evs = drain(f);
    REQUIRE(evs.size() == 2);
    CHECK(evs[1].type == EventType::starttls);
    CHECK(evs[1].raw == kStartTls);
    // The long form is the same command.
    auto long_form = feed_all(kOpen + "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'></starttls>");
    REQUIRE(long_form.size() == 2);
    CHECK(long_form[1].type == EventType::starttls);
    // A starttls element in another namespace is just a stanza.
    auto other = feed_all(kOpen + "<starttls xmlns='jabber:client'/>");
    REQUIRE(other.size() == 2);
    CHECK(other[1].type == EventType::stanza);

    f.restart();
    CHECK_FALSE(f.header_seen());
    f.feed(kOpen + kAuth);
    evs = drain(f);
    REQUIRE(evs.size() == 2);
    CHECK(evs[0].type == EventType::stream_open);
    CHECK(evs[1].raw == kAuth);
    // SASL success: another restart, this time without an XML declaration.
    f.restart();
    f.feed("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
           "to='example.com' "
           "version='1.0'>" +
           kIq);
    evs = drain(f);
    REQUIRE(evs.size() == 2);
    CHECK(evs[1].raw == kIq);
}

TEST_CASE("plaintext after STARTTLS is refused", "[xmpp][framer]") {
    SECTION("in the same read") {
        auto evs = feed_all(kOpen + kStartTls + kIq);
        REQUIRE(evs.size() == 2);
        CHECK(evs[1].type == EventType::error);
        CHECK(evs[1].condition == StreamErrorCondition::policy_violation);
    }
    SECTION("in a later read") {
        Framer f;
        f.feed(kOpen + kStartTls);
        drain(f);
        f.feed(kIq);
        auto evs = drain(f);
        REQUIRE(evs.size() == 1);
        CHECK(evs[0].condition == StreamErrorCondition::policy_violation);
    }
    SECTION("trailing whitespace is harmless") {
        auto evs = feed_all(kOpen + kStartTls + "\r\n");
        REQUIRE(evs.size() == 2);
        CHECK(evs[1].type == EventType::starttls);
    }
}

TEST_CASE("stream close", "[xmpp][framer]") {
    Framer f;
    f.feed(kOpen + kPresence + "</stream:stream>garbage that is never parsed <<<");
    auto evs = drain(f);
    REQUIRE(evs.size() == 3);
    CHECK(evs[2].type == EventType::stream_close);
    CHECK(f.closed());
    CHECK_FALSE(f.failed());
}

TEST_CASE("billion laughs and other DTD use is restricted-xml", "[xmpp][framer]") {
    std::string lol = "<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'>"
                      "<!ENTITY lol2 '&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;'>"
                      "<!ENTITY lol3 '&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;'>]>"
                      "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
                      "version='1.0'><message><body>&lol3;</body></message>";
    auto evs = feed_all(lol);
    REQUIRE(evs.size() == 1); // nothing before the error, in particular no stream_open
    CHECK(evs[0].type == EventType::error);
    CHECK(evs[0].condition == StreamErrorCondition::restricted_xml);
    CHECK(last_error("<!DOCTYPE stream:stream SYSTEM 'http://attacker/x.dtd'>").condition ==
          StreamErrorCondition::restricted_xml);
    // An entity reference without a DTD is undefined: restricted as well.
    CHECK(last_error(kOpen + "<message><body>&lol;</body></message>").condition ==
          StreamErrorCondition::restricted_xml);
    // The five predefined entities and character references are fine.
    auto ok = feed_all(kOpen + "<message><body>&amp;&lt;&gt;&quot;&apos;&#x41;&#66;</body></message>");
    REQUIRE(ok.size() == 2);
    CHECK(ok[1].type == EventType::stanza);
}

TEST_CASE("comments and processing instructions are restricted-xml", "[xmpp][framer]") {
    CHECK(last_error(kOpen + "<!-- hi -->").condition == StreamErrorCondition::restricted_xml);
    CHECK(last_error(kOpen + "<message><!-- hi --></message>").condition ==
          StreamErrorCondition::restricted_xml);
    CHECK(last_error(kOpen + "<?php echo 1; ?>").condition == StreamErrorCondition::restricted_xml);
    CHECK(last_error("<?xml-stylesheet href='x'?>" + kOpen).condition ==
          StreamErrorCondition::restricted_xml);
    // CDATA sections are not on RFC 6120's list.
    auto ok = feed_all(kOpen + "<message><body><![CDATA[<b>]]></body></message>");
    REQUIRE(ok.size() == 2);
    CHECK(ok[1].raw == "<message><body><![CDATA[<b>]]></body></message>");
}

TEST_CASE("garbage before the stream header", "[xmpp][framer]") {
    CHECK(last_error("GET / HTTP/1.1\r\nHost: x\r\n\r\n").condition == StreamErrorCondition::not_well_formed);
    CHECK(last_error(std::string("\x16\x03\x01\x00\x45\x01", 6)).condition ==
          StreamErrorCondition::not_well_formed);
    // Bytes that are not even UTF-8 say so.
    CHECK(last_error("\xa5<stream:stream").condition == StreamErrorCondition::unsupported_encoding);
    // Detected at the first byte, without waiting for a delimiter.
    CHECK(last_error("g").condition == StreamErrorCondition::not_well_formed);
    CHECK(feed_all("\xef\xbb\xbf" + kOpen).at(0).type == EventType::stream_open); // UTF-8 BOM is fine
    CHECK(last_error("hello" + kOpen).condition == StreamErrorCondition::not_well_formed);
    CHECK(last_error(" " + kOpen).condition == StreamErrorCondition::not_well_formed); // space before <?xml
}

TEST_CASE("wrong root element or namespaces", "[xmpp][framer]") {
    CHECK(last_error("<html>").condition == StreamErrorCondition::invalid_namespace);
    CHECK(last_error("<stream:stream xmlns='jabber:client' xmlns:stream='http://wrong' version='1.0'>")
              .condition == StreamErrorCondition::invalid_namespace);
    CHECK(last_error("<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' "
                     "version='1.0'>")
              .condition == StreamErrorCondition::invalid_namespace);
    CHECK(last_error("<stream:stream xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>")
              .condition == StreamErrorCondition::invalid_namespace);
    CHECK(last_error("<stream:stream xmlns='jabber:client' version='1.0'>").condition ==
          StreamErrorCondition::bad_namespace_prefix);
    CHECK(last_error(kOpen + "<foo:bar/>").condition == StreamErrorCondition::bad_namespace_prefix);
}

TEST_CASE("version and host checks", "[xmpp][framer]") {
    std::string pre = "<stream:stream to='example.com' xmlns='jabber:client' "
                      "xmlns:stream='http://etherx.jabber.org/streams'";
    CHECK(last_error(pre + ">").condition == StreamErrorCondition::unsupported_version);
    CHECK(last_error(pre + " version='2.0'>").condition == StreamErrorCondition::unsupported_version);
    CHECK(last_error(pre + " version='0.9'>").condition == StreamErrorCondition::unsupported_version);
    CHECK(last_error(pre + " version='x'>").condition == StreamErrorCondition::unsupported_version);
    CHECK(feed_all(pre + " version='1.1'>").at(0).type == EventType::stream_open);

    FramerOptions opts;
    opts.accept_to = [](std::string_view to) { return to == "example.com"; };
    CHECK(feed_all(kOpen, opts).at(0).type == EventType::stream_open);
    std::string other = kOpen;
    other.replace(other.find("example.com"), 11, "evil.example");
    CHECK(last_error(other, opts).condition == StreamErrorCondition::host_unknown);
}

TEST_CASE("encoding checks", "[xmpp][framer]") {
    CHECK(last_error("<?xml version='1.0' encoding='ISO-8859-1'?>").condition ==
          StreamErrorCondition::unsupported_encoding);
    CHECK(feed_all("<?xml version='1.0' encoding='utf-8'?>" + kOpen.substr(21)).at(0).type ==
          EventType::stream_open);
    CHECK(last_error(kOpen + "<message><body>\xff</body></message>").condition ==
          StreamErrorCondition::unsupported_encoding);
    CHECK(last_error(kOpen + "<message><body>\xc0\xaf</body></message>").condition ==
          StreamErrorCondition::unsupported_encoding); // overlong '/'
    CHECK(last_error(kOpen + "<message><body>\xed\xa0\x80</body></message>").condition ==
          StreamErrorCondition::unsupported_encoding); // UTF-16 surrogate
    CHECK(last_error(kOpen + "<message><body>\xe0\x80\xaf</body></message>").condition ==
          StreamErrorCondition::unsupported_encoding); // overlong 3-byte
    // A UTF-16 byte order mark is not UTF-8.
    CHECK(last_error(std::string("\xfe\xff\x00<", 4)).condition ==
          StreamErrorCondition::unsupported_encoding);
    // Control characters are valid UTF-8 but not XML.
    CHECK(last_error(kOpen + "<message><body>\x01</body></message>").condition ==
          StreamErrorCondition::not_well_formed);
}

TEST_CASE("size and depth limits", "[xmpp][framer]") {
    FramerOptions opts;
    opts.max_stanza_size = 1024;
    std::string fits = "<message><body>" + std::string(1024 - 32, 'a') + "</body></message>";
    REQUIRE(fits.size() == 1024);
    auto ok = feed_all(kOpen + fits, opts);
    REQUIRE(ok.size() == 2);
    CHECK(ok[1].raw == fits);
    std::string big = "<message><body>" + std::string(1025 - 32, 'a') + "</body></message>";
    CHECK(last_error(kOpen + big, opts).condition == StreamErrorCondition::policy_violation);

    // An endless stanza is cut without waiting for its end.
    Framer f(opts);
    f.feed(kOpen + "<message><body>");
    bool failed = false;
    for (int i = 0; i < 20 && !failed; ++i) {
        f.feed(std::string(100, 'x'));
        for (auto& e : drain(f))
            if (e.type == EventType::error) {
                CHECK(e.condition == StreamErrorCondition::policy_violation);
                failed = true;
            }
    }
    CHECK(failed);

    // Also an endless start tag (expat reports nothing until '>').
    CHECK(last_error(kOpen + "<message a='" + std::string(2000, 'x'), opts).condition ==
          StreamErrorCondition::policy_violation);
    // And an endless stream header.
    CHECK(last_error("<stream:stream a='" + std::string(2000, 'x'), opts).condition ==
          StreamErrorCondition::policy_violation);
    // Default limit is 64 KiB.
    std::string huge = "<message><body>" + std::string(70000, 'a') + "</body></message>";
    CHECK(last_error(kOpen + huge).condition == StreamErrorCondition::policy_violation);

    FramerOptions shallow;
    shallow.max_depth = 4; // stream + 3 levels
    CHECK(feed_all(kOpen + "<a><b><c/></b></a>", shallow).back().type == EventType::stanza);
    CHECK(last_error(kOpen + "<a><b><c><d/></c></b></a>", shallow).condition ==
          StreamErrorCondition::policy_violation);
}

TEST_CASE("a failed framer reports once and stays failed", "[xmpp][framer]") {
    Framer f;
    f.feed("garbage");
    auto evs = drain(f);
    REQUIRE(evs.size() == 1);
    CHECK(f.failed());
    f.feed(kOpen);
    CHECK(drain(f).empty());
}

TEST_CASE("stanzas before an error are still delivered", "[xmpp][framer]") {
    auto evs = feed_all(kOpen + kIq + "<bad");
    CHECK(evs.size() == 2); // "<bad" is incomplete, not yet an error
    evs = feed_all(kOpen + kIq + "</wrong>");
    REQUIRE(evs.size() == 3);
    CHECK(evs[1].raw == kIq);
    CHECK(evs[2].condition == StreamErrorCondition::not_well_formed);
}

TEST_CASE("a long tag is cut at the token limit, long text is not", "[xmpp][framer]") {
    FramerOptions opts;
    opts.max_token_size = 1024;
    // Trickled tag: fails once the incomplete tag passes the limit, long before the stanza limit.
    Framer f(opts);
    f.feed(kOpen);
    drain(f);
    std::string tag = "<message a='" + std::string(2000, 'x');
    size_t fed = 0;
    for (char c : tag) {
        f.feed(std::string_view(&c, 1));
        ++fed;
        if (f.failed()) break;
    }
    CHECK(f.failed());
    CHECK(fed < 1100);
    auto evs = drain(f);
    REQUIRE_FALSE(evs.empty());
    CHECK(evs.back().condition == StreamErrorCondition::policy_violation);
    // The same tag arriving whole fails as well.
    CHECK(last_error(kOpen + tag + "'/>", opts).condition == StreamErrorCondition::policy_violation);
    // A tag just under the limit is fine.
    std::string fits = "<message a='" + std::string(1000, 'x') + "'/>";
    CHECK(feed_all(kOpen + fits, opts).back().type == EventType::stanza);

    // Text, including CDATA and references, is reported as it arrives, so it is bounded only by
    // the stanza limit, however it is split.
    std::string body = "<message><body>" + std::string(3000, 't') + "&amp;<![CDATA[" +
                       std::string(3000, 'c') + "]]>" + std::string(3000, 'u') + "</body></message>";
    Framer g(opts);
    g.feed(kOpen);
    for (char c : body)
        g.feed(std::string_view(&c, 1));
    evs = drain(g);
    REQUIRE(evs.size() == 2);
    CHECK(evs[1].type == EventType::stanza);
    CHECK(evs[1].raw == body);
}

TEST_CASE("a framer that frees its parser between stanzas frames the same", "[xmpp][framer]") {
    std::string stream = kOpen + kIq + "  " + kMessage + "\n" + kPresence + kAuth + " </stream:stream>";
    auto whole = summary(feed_all(stream));
    REQUIRE(whole.back() == "close");
    // Fed one piece at a time, every read ends between two stanzas and the parser goes after each; the
    // closing tag still needs the header's stream prefix.
    {
        Framer f;
        std::vector<Event> evs;
        for (const std::string& piece :
             {kOpen, kIq, std::string("  "), kMessage, std::string("\n"), kPresence, kAuth, std::string(" "),
              std::string("</stream:stream>")}) {
            f.feed(piece);
            f.release_parser();
            for (auto& e : drain(f))
                evs.push_back(std::move(e));
            CHECK(f.unparsed().empty());
        }
        CHECK(summary(evs) == whole);
        CHECK(evs[0].header.raw == kOpen);
    }
    // Random reads: a release in the middle of a stanza or a tag must change nothing (it is refused there).
    std::mt19937 rng(6789);
    for (int round = 0; round < 300; ++round) {
        Framer f;
        std::vector<Event> evs;
        for (size_t pos = 0; pos < stream.size();) {
            size_t n = std::uniform_int_distribution<size_t>(1, 40)(rng);
            f.feed(std::string_view(stream).substr(pos, n));
            f.release_parser();
            pos += n;
            for (auto& e : drain(f))
                evs.push_back(std::move(e));
        }
        REQUIRE(summary(evs) == whole);
    }
}

TEST_CASE("a framer that freed its parser still enforces every rule", "[xmpp][framer]") {
    FramerOptions small;
    small.max_stanza_size = 1024;
    auto after_idle = [&](const std::string& next) {
        Framer f(small);
        f.feed(kOpen);
        f.feed(kIq);
        f.release_parser();
        auto evs = drain(f);
        REQUIRE(evs.size() == 2);
        f.feed(next);
        evs = drain(f);
        REQUIRE_FALSE(evs.empty());
        return evs.back();
    };
    CHECK(after_idle("</wrong>").condition == StreamErrorCondition::not_well_formed);
    CHECK(after_idle("<x:message/>").condition == StreamErrorCondition::bad_namespace_prefix);
    CHECK(after_idle("hello").condition == StreamErrorCondition::bad_format);
    CHECK(after_idle("<?xml version='1.0'?>").type == EventType::error);
    CHECK(after_idle("<!-- c -->").condition == StreamErrorCondition::restricted_xml);
    CHECK(after_idle("<message><body>" + std::string(1100, 'a')).condition ==
          StreamErrorCondition::policy_violation);
    CHECK(after_idle("<message><body>\xff</body></message>").condition ==
          StreamErrorCondition::unsupported_encoding);
    CHECK(after_idle(kPresence).type == EventType::stanza);
    CHECK(after_idle("</stream:stream>").type == EventType::stream_close);

    // Not between stanzas (a stanza begun, a failed framer, before the header): nothing is released, and
    // framing goes on as before.
    Framer half(small);
    half.feed(kOpen + "<message><body>hi");
    half.release_parser();
    half.feed("</body></message>");
    auto evs = drain(half);
    REQUIRE(evs.size() == 2);
    CHECK(evs[1].raw == "<message><body>hi</body></message>");
    Framer early(small);
    early.release_parser();
    early.feed(kOpen);
    REQUIRE(drain(early).size() == 1);

    // A restart after the parser was freed starts a new stream as usual (SASL success on edge-e).
    Framer f(small);
    f.feed(kOpen + kAuth);
    f.release_parser();
    REQUIRE(drain(f).size() == 2);
    f.restart();
    f.feed(kOpen);
    f.release_parser();
    f.feed(kIq);
    evs = drain(f);
    REQUIRE(evs.size() == 2);
    CHECK(evs[0].type == EventType::stream_open);
    CHECK(evs[1].raw == kIq);
}
