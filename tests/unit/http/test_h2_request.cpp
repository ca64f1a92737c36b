#include <catch2/catch.hpp>

#include "common/http/h2_request.h"

#include <string>
#include <utility>
#include <vector>

using namespace edgepair::http;

namespace {
using Fields = std::vector<std::pair<std::string, std::string>>;

H2RequestBuilder build(const Fields& f, H2RequestLimits lim = {}) {
    H2RequestBuilder b(lim);
    for (auto& [k, v] : f)
        b.add(k, v);
    b.finish();
    return b;
}

Fields base() {
    return {
        {":method", "GET"}, {":scheme", "https"}, {":authority", "expe1.example.com:8443"}, {":path", "/x"}};
}
} // namespace

TEST_CASE("h2 request: a plain GET becomes the same head an HTTP/1.1 request gives", "[http][h2]") {
    auto f = base();
    f.emplace_back("authorization", "Basic YTpi");
    f.emplace_back("cookie", "a=1");
    f.emplace_back("cookie", "b=2");
    f.emplace_back("te", "trailers");
    auto b = build(f);
    REQUIRE_FALSE(b.failed());
    CHECK(b.head().method == "GET");
    CHECK(b.head().target == "/x");
    CHECK(b.head().version_minor == 2);
    REQUIRE(b.head().headers.find("host"));
    CHECK(*b.head().headers.find("host") == "expe1.example.com:8443");
    CHECK(*b.head().headers.find("cookie") == "a=1; b=2");
    CHECK(b.head().headers.find("te") == nullptr);
    CHECK(*b.head().headers.find("authorization") == "Basic YTpi");
}

TEST_CASE("h2 request: empty cookie crumbs are dropped, not joined", "[http][h2]") {
    // Found by fuzz_http_h2req: an empty crumb after a real one left the joined value ending in "; ".
    auto f = base();
    f.emplace_back("cookie", "");
    f.emplace_back("cookie", "b=2");
    f.emplace_back("cookie", "");
    auto b = build(f);
    REQUIRE_FALSE(b.failed());
    REQUIRE(b.head().headers.find("cookie"));
    CHECK(*b.head().headers.find("cookie") == "b=2");

    auto only_empty = base();
    only_empty.emplace_back("cookie", "");
    auto e = build(only_empty);
    REQUIRE_FALSE(e.failed());
    CHECK(e.head().headers.find("cookie") == nullptr);
}

TEST_CASE("h2 request: connection-specific fields are malformed", "[http][h2]") {
    for (const char* n : {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"}) {
        auto f = base();
        f.emplace_back(n, "chunked");
        auto b = build(f);
        CHECK(b.failed());
        CHECK(b.error().malformed);
        CHECK(b.error().label == "h2_connection_header");
    }
    auto f = base();
    f.emplace_back("te", "gzip");
    CHECK(build(f).error().label == "h2_connection_header");
}

TEST_CASE("h2 request: pseudo-header rules (RFC 9113 8.3)", "[http][h2]") {
    SECTION("pseudo after regular") {
        Fields f = {{":method", "GET"}, {"accept", "*/*"}, {":path", "/x"}};
        CHECK(build(f).error().label == "h2_pseudo_after_regular");
    }
    SECTION("repeated") {
        auto f = base();
        f.insert(f.begin(), {":path", "/y"});
        CHECK(build(f).error().label == "h2_duplicate_pseudo");
    }
    SECTION("unknown / response / extended CONNECT") {
        for (const char* p : {":status", ":protocol", ":foo"}) {
            auto f = base();
            f.insert(f.begin(), {p, "x"});
            CHECK(build(f).error().label == "h2_bad_pseudo");
        }
    }
    SECTION("missing :path or :scheme") {
        CHECK(build({{":method", "GET"}, {":scheme", "https"}, {":authority", "a.example"}}).error().label ==
              "h2_bad_pseudo");
        CHECK(build({{":method", "GET"}, {":path", "/"}, {":authority", "a.example"}}).error().label ==
              "h2_bad_pseudo");
    }
    SECTION("CONNECT is not served") {
        auto b = build({{":method", "CONNECT"}, {":authority", "cucm1.example.com:8443"}});
        CHECK(b.error().status == 501);
        CHECK_FALSE(b.error().malformed);
    }
    SECTION("http scheme on TLS") {
        auto f = base();
        f[1].second = "http";
        CHECK(build(f).error().label == "h2_bad_scheme");
    }
}

TEST_CASE("h2 request: names and values", "[http][h2]") {
    for (auto [n, v] : std::vector<std::pair<std::string, std::string>>{{"X-Upper", "1"},
                                                                        {"bad name", "1"},
                                                                        {"", "1"},
                                                                        {"x", "a\r\nb"},
                                                                        {"x", std::string("a\0b", 3)},
                                                                        {"x", " lead"},
                                                                        {"x", "trail\t"},
                                                                        {"x", "del\x7f"}}) {
        auto f = base();
        f.emplace_back(n, v);
        auto b = build(f);
        CHECK(b.failed());
        CHECK(b.error().malformed);
    }
}

TEST_CASE("h2 request: content-length strict, host agrees with :authority", "[http][h2]") {
    auto f = base();
    f.emplace_back("content-length", "12");
    auto ok = build(f);
    REQUIRE_FALSE(ok.failed());
    CHECK(ok.has_content_length());
    CHECK(ok.content_length() == 12);
    for (const char* v : {"", "+1", "0x10", "1 2", "99999999999999999999"}) {
        auto g = base();
        g.emplace_back("content-length", v);
        CHECK(build(g).error().label == "bad_content_length");
    }
    auto d = base();
    d.emplace_back("content-length", "1");
    d.emplace_back("content-length", "1");
    CHECK(build(d).error().label == "duplicate_content_length");

    auto h = base();
    h.emplace_back("host", "evil.example.com");
    CHECK(build(h).error().label == "bad_host");
    auto same = base();
    same.emplace_back("host", "EXPE1.example.com:8443");
    CHECK_FALSE(build(same).failed());
    // No :authority: host is used; neither: refused.
    CHECK_FALSE(
        build({{":method", "GET"}, {":scheme", "https"}, {":path", "/"}, {"host", "a.example"}}).failed());
    CHECK(build({{":method", "GET"}, {":scheme", "https"}, {":path", "/"}}).error().label == "bad_host");
    CHECK(build({{":method", "GET"}, {":scheme", "https"}, {":path", "/"}, {":authority", "u@a.example"}})
              .error()
              .label == "bad_host");
}

TEST_CASE("h2 request: size limits answer 431 and stop storing", "[http][h2]") {
    H2RequestLimits lim;
    lim.max_header_bytes = 1024;
    lim.max_headers = 10;
    auto f = base();
    f.emplace_back("x-big", std::string(2000, 'a'));
    auto b = build(f, lim);
    CHECK(b.error().status == 431);
    CHECK(b.error().label == "header_too_large");
    CHECK_FALSE(b.error().malformed);

    auto g = base();
    for (int i = 0; i < 11; ++i)
        g.emplace_back("x-" + std::to_string(i), "v");
    auto c = build(g, lim);
    CHECK(c.error().label == "too_many_headers");
    CHECK(c.head().headers.size() <= 10);
}
