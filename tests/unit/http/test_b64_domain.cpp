#include <catch2/catch.hpp>

#include "common/http/b64_domain.h"

#include <random>
#include <string>
#include <vector>

using namespace edgepair::http;
using namespace std::string_literals;

TEST_CASE("b64: RFC 4648 test vectors", "[http][b64]") {
    CHECK(base64_encode("") == "");
    CHECK(base64_encode("f") == "Zg==");
    CHECK(base64_encode("fo") == "Zm8=");
    CHECK(base64_encode("foo") == "Zm9v");
    CHECK(base64_encode("foob") == "Zm9vYg==");
    CHECK(base64_encode("fooba") == "Zm9vYmE=");
    CHECK(base64_encode("foobar") == "Zm9vYmFy");
    CHECK(base64_encode("foob", false) == "Zm9vYg");
    CHECK(base64_encode("\xfb\xff", true, false) == "+/8=");
    CHECK(base64_encode("\xfb\xff", false, true) == "-_8");
    CHECK(*base64_decode_strict("Zm9vYmFy") == "foobar");
    CHECK(*base64_decode_strict("Zm9vYg==") == "foob");
    CHECK(*base64_decode_strict("Zm9vYg") == "foob");
    CHECK(*base64_decode_strict("+/8=") == "\xfb\xff");
    CHECK(*base64_decode_strict("-_8") == "\xfb\xff");
}

TEST_CASE("b64: round trip for all lengths and variants", "[http][b64]") {
    std::mt19937 rng(42);
    for (size_t len = 0; len < 80; ++len) {
        std::string bytes(len, '\0');
        for (auto& c : bytes)
            c = static_cast<char>(rng() & 0xff);
        for (bool pad : {true, false}) {
            for (bool url : {true, false}) {
                auto enc = base64_encode(bytes, pad, url);
                auto dec = base64_decode_strict(enc);
                INFO(len << " pad=" << pad << " url=" << url << " " << enc);
                REQUIRE(dec.has_value());
                CHECK(*dec == bytes);
            }
        }
    }
}

TEST_CASE("b64: strictness", "[http][b64]") {
    for (const std::string& bad :
         std::vector<std::string>{"Zg=", "Zg===", "Z", "Zm9vY", "Zm9v=", "Zm=9v", "Zm 9v", "Zm9v\n",
                                  "Zh==", "Zm9=", "+_88", "-/88", "Zm9v*", "====", "Zg=A", "Zm9vYg=\0"s}) {
        INFO(bad);
        CHECK_FALSE(base64_decode_strict(bad).has_value());
    }
}

TEST_CASE("domain: Jabber's encoding of example.com", "[http][b64]") {
    CHECK(encode_domain("example.com") == "ZXhhbXBsZS5jb20");
    CHECK(encode_domain("Example.COM") == "ZXhhbXBsZS5jb20");
    CHECK(*decode_domain("ZXhhbXBsZS5jb20") == "example.com");
    CHECK(*decode_domain("ZXhhbXBsZS5jb20=") == "example.com");
    CHECK(*decode_domain(base64_encode("EXAMPLE.com", false)) == "example.com");
    CHECK(*decode_domain(base64_encode("example.com.", true, true)) == "example.com");
}

TEST_CASE("domain: decoded names must be DNS names", "[http][b64]") {
    CHECK_FALSE(decode_domain("ZXhhbXBsZS5jb21").ok()); // non-zero trailing bits
    CHECK_FALSE(decode_domain("ZXhhbXBsZS5jb20==").ok());
    CHECK_FALSE(decode_domain("").ok());
    CHECK_FALSE(decode_domain(std::string(400, 'A')).ok());
    for (const std::string& d : std::vector<std::string>{
             "exa mple.com", "example.com\0"s, "-a.com", "a-.com", "a..com", ".com", "1.2.3.4", "a_b.com",
             "caf\xc3\xa9.com", "example.com/x", "example.com..", "a@b.com", std::string(64, 'a') + ".com"}) {
        INFO(d);
        auto r = decode_domain(base64_encode(d, false));
        REQUIRE_FALSE(r.ok());
        CHECK(error_label(r.error()) == "bad_domain");
    }
    CHECK(*canonical_domain("Sub-1.Example.org") == "sub-1.example.org");
    CHECK(*canonical_domain("localdomain") == "localdomain");
}

TEST_CASE("mra path: get_edge_config and get_edge_sso", "[http][b64][mra]") {
    auto a =
        parse_mra_path("/ZXhhbXBsZS5jb20/get_edge_config/?service_name=_cisco-uds&service_name=_cuplogin");
    REQUIRE(a.ok());
    CHECK(a->domain == "example.com");
    CHECK(a->kind == MraKind::EdgeConfig);
    CHECK(a->path == "/");
    CHECK(a->has_query);
    CHECK(a->query == "service_name=_cisco-uds&service_name=_cuplogin");
    auto b = parse_mra_path("/ZXhhbXBsZS5jb20/get_edge_sso/?username=jdoe%40example.com");
    REQUIRE(b.ok());
    CHECK(b->kind == MraKind::EdgeSso);
    CHECK(b->query == "username=jdoe%40example.com");
    auto c = parse_mra_path("/ZXhhbXBsZS5jb20=/get_edge_config");
    REQUIRE(c.ok());
    CHECK(c->kind == MraKind::EdgeConfig);
    CHECK(c->path == "/");
    CHECK_FALSE(c->has_query);
    CHECK(mra_kind_name(MraKind::EdgeConfig) == "edge_config");
    CHECK(mra_kind_name(MraKind::Proxy) == "proxy");
}

TEST_CASE("mra path: proxied requests", "[http][b64][mra]") {
    auto a = parse_mra_path("/ZXhhbXBsZS5jb20/http/CUCM1.example.com/6970/SEP001122334455.cnf.xml");
    REQUIRE(a.ok());
    CHECK(a->kind == MraKind::Proxy);
    CHECK(a->scheme == "http");
    CHECK(a->host == "cucm1.example.com");
    CHECK(a->port == 6970);
    CHECK(a->path == "/SEP001122334455.cnf.xml");

    auto b = parse_mra_path("/ZXhhbXBsZS5jb20/https/cucm1.example.com/8443/cucm-uds/user/jdoe/devices?max=1");
    REQUIRE(b.ok());
    CHECK(b->scheme == "https");
    CHECK(b->port == 8443);
    CHECK(b->path == "/cucm-uds/user/jdoe/devices");
    CHECK(b->query == "max=1");

    auto c = parse_mra_path("/ZXhhbXBsZS5jb20/https/%5B2001%3ADB8%3A%3A1%5D/8443/x");
    REQUIRE(c.ok());
    CHECK(c->host == "[2001:db8::1]");

    auto d = parse_mra_path("/ZXhhbXBsZS5jb20/https/10.0.0.5/443");
    REQUIRE(d.ok());
    CHECK(d->host == "10.0.0.5");
    CHECK(d->path == "/");

    auto e = parse_mra_path("/ZXhhbXBsZS5jb20/https/h/443/a;jsessionid=9/b/./c/../d");
    REQUIRE(e.ok());
    CHECK(e->path == "/a;jsessionid=9/b/d");
    CHECK(e->match_path == "/a/b/d");
}

TEST_CASE("mra path: other service segments", "[http][b64][mra]") {
    auto a = parse_mra_path("/ZXhhbXBsZS5jb20/something/else");
    REQUIRE(a.ok());
    CHECK(a->kind == MraKind::Other);
    CHECK(a->path == "/something/else");
    auto b = parse_mra_path("/ZXhhbXBsZS5jb20/HTTP/h/80/");
    REQUIRE(b.ok());
    CHECK(b->kind == MraKind::Other);
    CHECK(b->path == "/HTTP/h/80/");
    auto c = parse_mra_path("/ZXhhbXBsZS5jb20");
    REQUIRE(c.ok());
    CHECK(c->kind == MraKind::Other);
    CHECK(c->path == "/");
}

TEST_CASE("mra path: hostile variants are rejected", "[http][b64][mra]") {
    struct Bad {
        std::string in;
        std::string label;
    };
    const std::string d = "/ZXhhbXBsZS5jb20";
    std::vector<Bad> cases = {
        {d + "/https/cucm1/8443/../../http/evil/80/x", "above_root"},
        {d + "/https/cucm1/8443/..", "above_root"},
        {d + "/https/cucm1/8443/a/%2e%2e/x", "encoded_dot_segment"},
        {d + "/https/cucm1/8443/a%2fb", "encoded_slash"},
        {d + "/https/cucm1/8443/..;/x", "dot_segment_params"},
        {d + "/https/cucm1/8443//x", "empty_segment"},
        {d + "/https/cucm1/8443/a\\b", "backslash"},
        {d + "/https/cucm1/8443/a?x=%0d%0a", "control_char"},
        {d + "/get_edge_config/../../x", "above_root"},
        {d + "/https/127.1/8443/x", "bad_proxy_path"},
        {d + "/https/0x7f000001/8443/x", "bad_proxy_path"},
        {d + "/https/cucm1/0/x", "bad_proxy_path"},
        {d + "/https/cucm1/65536/x", "bad_proxy_path"},
        {d + "/https/cucm1/08443/x", "bad_proxy_path"},
        {d + "/https/cucm1/443;x/y", "bad_proxy_path"},
        {d + "/https/cucm1", "bad_proxy_path"},
        {d + "/https/cucm1/", "bad_proxy_path"},
        {d + "/https//8443/x", "bad_proxy_path"},
        {d + "/https/../8443/x", "bad_proxy_path"},
        {d + "/https/%2e%2e/8443/x", "bad_proxy_path"},
        {d + "/https/a%2fb/8443/x", "bad_proxy_path"},
        {d + "/https/user@cucm1/8443/x", "bad_proxy_path"},
        {d + "/https/::1/8443/x", "bad_proxy_path"},
        {d + "/https/cucm1:8443/8443/x", "bad_proxy_path"},
        {"/!!!/get_edge_config/", "bad_domain"},
        {"/ZXhhbXBsZS5jb21/get_edge_config/", "bad_domain"},
        {"/ZXhh%62XBsZS5jb20/get_edge_config/", "bad_domain"},
        {"//get_edge_config/", "bad_domain"},
        {"/", "bad_domain"},
        {"http://x/ZXhhbXBsZS5jb20/get_edge_config/", "bad_proxy_path"},
        {"", "bad_proxy_path"},
    };
    for (const auto& c : cases) {
        INFO(c.in);
        auto r = parse_mra_path(c.in);
        REQUIRE_FALSE(r.ok());
        CHECK(error_label(r.error()) == c.label);
    }
}

TEST_CASE("mra path: the single sign-on paths", "[http][b64][mra][sso]") {
    auto a = parse_mra_path("/ZXhhbXBsZS5jb20/authorize?response_type=token&email=a%40example.com");
    REQUIRE(a.ok());
    CHECK(a->kind == MraKind::SsoAuthorize);
    CHECK(a->domain == "example.com");
    CHECK(a->query == "response_type=token&email=a%40example.com");
    auto f = parse_mra_path("/ZXhhbXBsZS5jb20/fedlet");
    REQUIRE(f.ok());
    CHECK(f->kind == MraKind::SsoFedlet);
    CHECK(mra_kind_name(MraKind::SsoFedlet) == "sso_fedlet");
    auto o = parse_mra_path("/ZXhhbXBsZS5jb20/Fedlet");
    REQUIRE(o.ok());
    CHECK(o->kind == MraKind::Other);
}
