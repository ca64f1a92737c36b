#include <catch2/catch.hpp>

#include "common/http/url_path.h"

#include <string>
#include <vector>

using namespace edgepair::http;
using namespace std::string_literals;

namespace {

struct Good {
    std::string in;
    std::string path;
    std::string match;
    std::string query;
};

struct Bad {
    std::string in;
    PathReason reason;
};

} // namespace

TEST_CASE("path: accepted targets normalise as documented and idempotently", "[http][path]") {
    std::vector<Good> cases = {
        {"/", "/", "/", ""},
        {"/a/b", "/a/b", "/a/b", ""},
        {"/a/./b", "/a/b", "/a/b", ""},
        {"/a/b/../c", "/a/c", "/a/c", ""},
        {"/a/b/..", "/a/", "/a/", ""},
        {"/a/.", "/a/", "/a/", ""},
        {"/.", "/", "/", ""},
        {"/a/b/", "/a/b/", "/a/b/", ""},
        {"/%41%62c", "/Abc", "/Abc", ""},
        {"/%7e%2D%5f", "/~-_", "/~-_", ""},
        {"/a%2Eb", "/a.b", "/a.b", ""},
        {"/a%3bb", "/a%3Bb", "/a%3Bb", ""},
        {"/caf%c3%a9", "/caf%C3%A9", "/caf%C3%A9", ""},
        {"/cucm-uds/user/jdoe%40example.com", "/cucm-uds/user/jdoe%40example.com",
         "/cucm-uds/user/jdoe%40example.com", ""},
        {"/a;jsessionid=1/b", "/a;jsessionid=1/b", "/a/b", ""},
        {"/a;x/../b", "/b", "/b", ""},
        {"/a/;jsessionid=1", "/a/;jsessionid=1", "/a/", ""},
        {"/a/b;c=d;e", "/a/b;c=d;e", "/a/b", ""},
        {"/a?x=%2f&y", "/a", "/a", "x=%2F&y"},
        {"/a?b/c?d", "/a", "/a", "b/c?d"},
        {"/a?%c3%a9=%25", "/a", "/a", "%C3%A9=%25"},
        {"/a:b@c!$&'()*+,=", "/a:b@c!$&'()*+,=", "/a:b@c!$&'()*+,=", ""},
        {"/a%25", "/a%25", "/a%25", ""},
        {"/a%25zz", "/a%25zz", "/a%25zz", ""},
        {"/...", "/...", "/...", ""},
        {"/..a/a..", "/..a/a..", "/..a/a..", ""},
    };
    for (const auto& c : cases) {
        INFO(c.in);
        PathReason why = PathReason::BadForm;
        auto r = normalise_target(c.in, {}, &why);
        REQUIRE(r.ok());
        CHECK(why == PathReason::None);
        CHECK(r->path == c.path);
        CHECK(r->match_path == c.match);
        CHECK(r->query == c.query);
        auto again = normalise_target(r->to_target());
        REQUIRE(again.ok());
        CHECK(again->path == r->path);
        CHECK(again->match_path == r->match_path);
        CHECK(again->query == r->query);
    }
}

TEST_CASE("path: query presence is kept", "[http][path]") {
    auto a = normalise_target("/a?");
    REQUIRE(a.ok());
    CHECK(a->has_query);
    CHECK(a->to_target() == "/a?");
    auto b = normalise_target("/a");
    REQUIRE(b.ok());
    CHECK_FALSE(b->has_query);
}

TEST_CASE("path: traversal and encoding tricks are rejected with the exact reason", "[http][path]") {
    using R = PathReason;
    std::vector<Bad> cases = {
        {"/a/../../etc/passwd", R::AboveRoot},
        {"/..", R::AboveRoot},
        {"/../", R::AboveRoot},
        {"/a/b/../../..", R::AboveRoot},
        {"/%2e%2e/", R::EncodedDotSegment},
        {"/%2E%2E/etc", R::EncodedDotSegment},
        {"/a/%2e%2e/b", R::EncodedDotSegment},
        {"/a/.%2e/b", R::EncodedDotSegment},
        {"/a/%2e./b", R::EncodedDotSegment},
        {"/a/%2e/b", R::EncodedDotSegment},
        {"/%252e%252e/", R::DoubleEncoding},
        {"/a/%252f", R::DoubleEncoding},
        {"/%25%32%65", R::DoubleEncoding},
        {"/%2541", R::DoubleEncoding},
        {"/a%2fb", R::EncodedSlash},
        {"/a%2Fb", R::EncodedSlash},
        {"/a\\b", R::Backslash},
        {"/a%5cb", R::Backslash},
        {"/a%5C..%5Cb", R::Backslash},
        {"/..;/", R::DotSegmentParams},
        {"/a/..;/b", R::DotSegmentParams},
        {"/a/..;x=1/b", R::DotSegmentParams},
        {"/a/.;/b", R::DotSegmentParams},
        {"/a/%2e%2e;/b", R::EncodedDotSegment},
        {"//double", R::EmptySegment},
        {"/a//b", R::EmptySegment},
        {"/a/;x/b", R::EmptySegment},
        {"/a%00", R::ControlChar},
        {"/a%0d%0aSet-Cookie:x", R::ControlChar},
        {"/a%0A", R::ControlChar},
        {"/a%09", R::ControlChar},
        {"/a%7f", R::ControlChar},
        {"/a\r", R::ControlChar},
        {"/a\n", R::ControlChar},
        {"/a\0b"s, R::ControlChar},
        {"/a?x=%00", R::ControlChar},
        {"/a?x=%0d%0a", R::ControlChar},
        {"/a?x\r", R::ControlChar},
        {"/a%", R::BadPercent},
        {"/a%2", R::BadPercent},
        {"/a%g1", R::BadPercent},
        {"/a%%41", R::BadPercent},
        {"/a?x=%", R::BadPercent},
        {"/caf\xc3\xa9", R::NonAscii},
        {"/a?caf\xc3\xa9", R::NonAscii},
        {"/a b", R::BadChar},
        {"/a\"b", R::BadChar},
        {"/a<b>", R::BadChar},
        {"/a|b", R::BadChar},
        {"/a{b}", R::BadChar},
        {"/a[b]", R::BadChar},
        {"/a`b", R::BadChar},
        {"/a#frag", R::Fragment},
        {"/a?b#frag", R::Fragment},
        {"/a?b\\c", R::Backslash},
        {"*", R::AsteriskForm},
        {"http://h/a", R::AbsoluteForm},
        {"HTTPS://h/a", R::AbsoluteForm},
        {"example.com:443", R::AuthorityForm},
        {"a/b", R::BadForm},
        {"\\a", R::BadForm},
        {"", R::Empty},
    };
    for (const auto& c : cases) {
        INFO(c.in);
        PathReason why = PathReason::None;
        auto r = normalise_target(c.in, {}, &why);
        REQUIRE_FALSE(r.ok());
        CHECK(path_reason_name(why) == path_reason_name(c.reason));
        CHECK(error_label(r.error()) == path_reason_name(c.reason));
    }
}

TEST_CASE("path: collapse_slashes policy", "[http][path]") {
    PathPolicy p;
    p.collapse_slashes = true;
    auto r = normalise_target("//a///b//", p);
    REQUIRE(r.ok());
    CHECK(r->path == "/a/b/");
    auto still = normalise_target("/a/;x/b", p);
    CHECK_FALSE(still.ok());
    auto climb = normalise_target("//..//", p);
    CHECK_FALSE(climb.ok());
}

TEST_CASE("path: length limit", "[http][path]") {
    PathPolicy p;
    p.max_length = 16;
    PathReason why{};
    CHECK(normalise_target("/0123456789abcde", p).ok());
    CHECK_FALSE(normalise_target("/0123456789abcdef", p, &why).ok());
    CHECK(why == PathReason::TooLong);
}

TEST_CASE("path: absolute-form when allowed", "[http][path]") {
    PathPolicy p;
    p.allow_absolute_form = true;
    auto a = normalise_target("http://CUCM1.Example.COM./a/../b?q", p);
    REQUIRE(a.ok());
    CHECK(a->scheme == "http");
    CHECK(a->host == "cucm1.example.com");
    CHECK(a->port == 80);
    CHECK(a->path == "/b");
    CHECK(a->query == "q");
    auto b = normalise_target("https://[2001:DB8::0:1]:8443", p);
    REQUIRE(b.ok());
    CHECK(b->host == "[2001:db8::1]");
    CHECK(b->port == 8443);
    CHECK(b->path == "/");
    auto c = normalise_target("https://h?x", p);
    REQUIRE(c.ok());
    CHECK(c->path == "/");
    CHECK(c->query == "x");
    PathReason why{};
    CHECK_FALSE(normalise_target("http://0x7f.1/", p, &why).ok());
    CHECK(why == PathReason::BadHost);
    CHECK_FALSE(normalise_target("http://h:0/", p, &why).ok());
    CHECK(why == PathReason::BadPort);
    CHECK_FALSE(normalise_target("http://u@h/", p, &why).ok());
    CHECK(why == PathReason::BadHost);
    CHECK_FALSE(normalise_target("http://h#x", p, &why).ok());
    CHECK(why == PathReason::Fragment);
    CHECK_FALSE(normalise_target("ftp://h/", p, &why).ok());
    CHECK(why == PathReason::BadForm);
}

TEST_CASE("host: canonical forms", "[http][host]") {
    auto ok = [](std::string in, std::string want) {
        INFO(in);
        auto r = canonical_host(in);
        REQUIRE(r.ok());
        CHECK(*r == want);
    };
    ok("Example.COM", "example.com");
    ok("example.com.", "example.com");
    ok("cucm1", "cucm1");
    ok("a_b.corp.example", "a_b.corp.example");
    ok("xn--bcher-kva.example", "xn--bcher-kva.example");
    ok("127.0.0.1", "127.0.0.1");
    ok("0.0.0.0", "0.0.0.0");
    ok("255.255.255.255", "255.255.255.255");
    ok("10.0.0.1.", "10.0.0.1");
    ok("0x7f.example.com", "0x7f.example.com");
    ok("[::1]", "[::1]");
    ok("[2001:DB8:0:0:0:0:0:1]", "[2001:db8::1]");
    ok("[2001:db8:0000::0001]", "[2001:db8::1]");
    ok("[::FFFF:127.0.0.1]", "[::ffff:127.0.0.1]");
    ok(std::string(63, 'a') + ".com", std::string(63, 'a') + ".com");
}

TEST_CASE("host: hostile and malformed hosts are rejected", "[http][host]") {
    for (const std::string& h : std::vector<std::string>{"",
                                                         ".",
                                                         "example.com..",
                                                         "a..b",
                                                         ".a",
                                                         "127.1",
                                                         "0x7f.1",
                                                         "0x7f000001",
                                                         "2130706433",
                                                         "0177.0.0.1",
                                                         "127.0.0.01",
                                                         "127.000.0.1",
                                                         "256.0.0.1",
                                                         "1.2.3.4.5",
                                                         "1.2.3",
                                                         "1.2.3.0x4",
                                                         "foo.123",
                                                         "-a.example",
                                                         "a-.example",
                                                         "ex%41mple",
                                                         "a b",
                                                         "a/b",
                                                         "a\\b",
                                                         "::1",
                                                         "[::1",
                                                         "[fe80::1%25eth0]",
                                                         "[fe80::1%eth0]",
                                                         "[1.2.3.4]",
                                                         "[:::]",
                                                         "[]",
                                                         "a@b",
                                                         std::string(64, 'a') + ".com",
                                                         std::string(254, 'a'),
                                                         "caf\xc3\xa9.example",
                                                         "a\0b"s}) {
        INFO(h);
        auto r = canonical_host(h);
        CHECK_FALSE(r.ok());
        if (!r.ok()) CHECK(error_label(r.error()) == "bad_host");
    }
}

TEST_CASE("host: kind", "[http][host]") {
    CHECK(host_kind("[::1]") == HostKind::IPv6);
    CHECK(host_kind("10.1.2.3") == HostKind::IPv4);
    CHECK(host_kind("cucm1.example.com") == HostKind::Name);
}

TEST_CASE("port: parse and defaults", "[http][host]") {
    CHECK(*parse_port("1") == 1);
    CHECK(*parse_port("8443") == 8443);
    CHECK(*parse_port("65535") == 65535);
    for (const std::string& p : std::vector<std::string>{"", "0", "65536", "99999", "123456", "08443", "+1",
                                                         "-1", "1a", " 1", "0x50"}) {
        INFO(p);
        CHECK_FALSE(parse_port(p).ok());
    }
    CHECK(default_port("http") == 80);
    CHECK(default_port("HTTPS") == 443);
    CHECK(default_port("ftp") == 0);
}

TEST_CASE("authority: host and port", "[http][host]") {
    auto a = parse_authority("CUCM1.example.com:8443", "https");
    REQUIRE(a.ok());
    CHECK(a->host == "cucm1.example.com");
    CHECK(a->port == 8443);
    auto b = parse_authority("cucm1", "https");
    REQUIRE(b.ok());
    CHECK(b->port == 443);
    auto c = parse_authority("[::1]:80", "https");
    REQUIRE(c.ok());
    CHECK(c->host == "[::1]");
    CHECK(c->port == 80);
    for (const std::string& s :
         std::vector<std::string>{"u@h", "h:", "h:0", "[::1]x", "[::1]:", "h:1:2", "", ":80", "h:65536"}) {
        INFO(s);
        CHECK_FALSE(parse_authority(s, "http").ok());
    }
    CHECK_FALSE(parse_authority("h", "ftp").ok());
}
