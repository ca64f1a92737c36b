#include <catch2/catch.hpp>

#include <string>

#include "common/http/b64_domain.h"
#include "edge-c/credentials.h"

using namespace edgepair;
using edge_c::parse_basic_auth;

namespace {

std::string basic(std::string_view user_pass) {
    return "Basic " + http::base64_encode(user_pass);
}

} // namespace

TEST_CASE("parse_basic_auth accepts RFC 7617 credentials", "[edge_c][auth]") {
    struct Case {
        std::string header;
        std::string user, password;
    };
    const Case cases[] = {
        {basic("alice:secret"), "alice", "secret"},
        // The scheme is case-insensitive (RFC 9110 11.1).
        {"basic " + http::base64_encode("alice:secret"), "alice", "secret"},
        {"BASIC " + http::base64_encode("alice:secret"), "alice", "secret"},
        {"bAsIc " + http::base64_encode("alice:secret"), "alice", "secret"},
        // Extra spaces around the token are tolerated.
        {"Basic    " + http::base64_encode("alice:secret") + "   ", "alice", "secret"},
        // Only the first colon splits: a password may hold colons.
        {basic("alice:pa:ss:"), "alice", "pa:ss:"},
        // An empty password is the Unified CM's to refuse, not the parser's.
        {basic("alice:"), "alice", ""},
        {basic("j\xc3\xbcrgen:p\xc3\xa4ss"), "j\xc3\xbcrgen", "p\xc3\xa4ss"},
        // Unpadded and URL-safe base64 are accepted (one alphabet per token).
        {"Basic " + http::base64_encode("b?b:~~~>", false), "b?b", "~~~>"},
        {"Basic " + http::base64_encode("b?b:~~~>", true, true), "b?b", "~~~>"},
    };
    for (auto& c : cases) {
        CAPTURE(c.header);
        auto r = parse_basic_auth(c.header);
        REQUIRE(r);
        CHECK(r->user == c.user);
        CHECK(r->password == c.password);
    }
}

TEST_CASE("parse_basic_auth refuses what is not one well-formed Basic credential", "[edge_c][auth]") {
    const std::string cases[] = {
        "",
        "Basic",
        "Basic ",
        "Basic      ",
        "Bearer " + http::base64_encode("alice:secret"),
        "Digest username=\"alice\"",
        // The scheme must be followed by a space, not glued to the token or separated by a tab.
        "Basic" + http::base64_encode("alice:secret"),
        "Basic\t" + http::base64_encode("alice:secret"),
        "Basicx " + http::base64_encode("alice:secret"),
        " Basic " + http::base64_encode("alice:secret"),
        // Bad base64: junk, inner whitespace, misplaced padding, 4n+1 length, mixed alphabets.
        "Basic !!!!",
        "Basic YWxp Y2U6c2VjcmV0",
        "Basic YWxpY2U6c2VjcmV0=",
        "Basic =YWxpY2U6c2VjcmV0",
        "Basic YWxpY",
        "Basic YW+_",
        // No colon, or an empty user.
        basic("alice"),
        basic(":secret"),
        basic(":"),
        // Control characters would end up in a UDS URL and in logs.
        basic("al\nice:secret"),
        basic("alice:sec\rret"),
        basic(std::string("al\0ice:secret", 13)),
        basic(std::string("alice:secret\0", 13)),
        basic("alice:secret\x7f"),
        basic("\x1b[31malice:secret"),
    };
    for (auto& h : cases) {
        CAPTURE(h);
        CHECK_FALSE(parse_basic_auth(h));
    }
}

TEST_CASE("parse_basic_auth bounds the token and the user", "[edge_c][auth]") {
    // 2048 base64 characters decode to 1536 bytes: the largest token accepted.
    std::string user(256, 'u');
    std::string pass(1536 - 257, 'p');
    auto at_limit = basic(user + ":" + pass);
    REQUIRE(at_limit.size() == 6 + 2048);
    auto r = parse_basic_auth(at_limit);
    REQUIRE(r);
    CHECK(r->user == user);
    CHECK(r->password == pass);

    CHECK_FALSE(parse_basic_auth(basic(user + ":" + pass + "ppp"))); // 2052 characters
    CHECK_FALSE(parse_basic_auth(basic(std::string(257, 'u') + ":x")));
    CHECK_FALSE(parse_basic_auth(basic("alice:" + std::string(1 << 20, 'p'))));
    CHECK_FALSE(parse_basic_auth("Basic " + std::string(1 << 20, 'A')));
}

TEST_CASE("bytes that are not UTF-8 pass the parser but never reach a UDS path raw", "[edge_c][auth]") {
    // RFC 7617 leaves the charset open unless the server advertises one; the parser keeps the bytes, and the
    // UDS request path percent-encodes each of them.
    auto r = parse_basic_auth(basic("\xff\xfe\xc3:pw\x80"));
    REQUIRE(r);
    CHECK(r->user == "\xff\xfe\xc3");
    CHECK(r->password == "pw\x80");
    CHECK(edge_c::encode_path_segment(r->user) == "%FF%FE%C3");
}

TEST_CASE("encode_path_segment keeps a user id inside one path segment", "[edge_c][auth]") {
    struct Case {
        std::string in, out;
    };
    const Case cases[] = {
        {"alice", "alice"},
        {"Alice.Smith-2_x~", "Alice.Smith-2_x~"},
        {"a/b", "a%2Fb"},
        {"..%2F", "..%252F"},
        {"a b?c#d", "a%20b%3Fc%23d"},
        {"alice@example.com", "alice%40example.com"},
        {";jsessionid=1", "%3Bjsessionid%3D1"},
        // Dot segments would be resolved by the server into another resource.
        {".", "%2E"},
        {"..", "%2E%2E"},
        {"...", "..."},
        {"", ""},
        {std::string("a\0b", 3), "a%00b"},
    };
    for (auto& c : cases) {
        CAPTURE(c.in);
        CHECK(edge_c::encode_path_segment(c.in) == c.out);
    }
}

TEST_CASE("auth_error_status maps the error label to the client's status", "[edge_c][auth]") {
    CHECK(edge_c::auth_error_status(make_error("unavailable: no Unified CM node")) == 503);
    CHECK(edge_c::auth_error_status(make_error("timeout: Unified CM cucm1 did not answer")) == 504);
    CHECK(edge_c::auth_error_status(make_error("upstream: Unified CM cucm1 answered 500")) == 502);
    // Anything unlabelled is an upstream failure, and a label is only a prefix.
    CHECK(edge_c::auth_error_status(make_error("connection refused")) == 502);
    CHECK(edge_c::auth_error_status(make_error("upstream: timeout: x")) == 502);
    CHECK(edge_c::auth_error_status(make_error("Timeout: x")) == 502);
}
