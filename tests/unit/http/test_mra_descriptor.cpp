// The single-segment descriptor form of proxied MRA paths (issue #16):
// "/<b64url(domain/scheme/host/port)>/path" must read exactly as "/<b64 domain>/<scheme>/<host>/<port>/path"
// does, and refuse what the other form refuses.
#include <catch2/catch.hpp>

#include "common/http/b64_domain.h"

using namespace edgepair::http;

namespace {

std::string desc(std::string_view d) {
    return "/" + base64_encode(d, false, true);
}

} // namespace

TEST_CASE("mra descriptor: same MraPath as the segmented form", "[http][b64][mra]") {
    auto seg =
        parse_mra_path("/ZXhhbXBsZS5jb20/https/cucm1.example.com/8443/cucm-uds/user/jdoe/devices?max=1");
    auto one = parse_mra_path(desc("Example.COM/https/CUCM1.example.com/8443") +
                              "/cucm-uds/user/jdoe/devices?max=1");
    REQUIRE(seg.ok());
    REQUIRE(one.ok());
    CHECK(one->descriptor_form);
    CHECK_FALSE(seg->descriptor_form);
    CHECK(one->kind == MraKind::Proxy);
    CHECK(one->domain == seg->domain);
    CHECK(one->scheme == seg->scheme);
    CHECK(one->host == seg->host);
    CHECK(one->port == seg->port);
    CHECK(one->path == seg->path);
    CHECK(one->match_path == seg->match_path);
    CHECK(one->query == seg->query);

    // Padded, standard alphabet (when it happens to contain no '/'), IPv6 literal, TFTP over http.
    auto p = parse_mra_path("/" + base64_encode("example.com/http/cucm1.example.com/6970", true, true) +
                            "/SEP001122334455.cnf.xml");
    REQUIRE(p.ok());
    CHECK(p->scheme == "http");
    CHECK(p->port == 6970);
    CHECK(p->path == "/SEP001122334455.cnf.xml");
    auto v6 = parse_mra_path(desc("example.com/https/[2001:DB8::1]/8443") + "/x");
    REQUIRE(v6.ok());
    CHECK(v6->host == "[2001:db8::1]");
    auto bare = parse_mra_path(desc("example.com/https/10.0.0.5/443"));
    REQUIRE(bare.ok());
    CHECK(bare->path == "/");
    // ;params and dot segments are normalised after the descriptor, never into it.
    auto e = parse_mra_path(desc("example.com/https/h/443") + "/a;jsessionid=9/b/./c/../d");
    REQUIRE(e.ok());
    CHECK(e->match_path == "/a/b/d");
}

TEST_CASE("mra descriptor: refusals", "[http][b64][mra]") {
    for (const char* bad : {
             "example.com/https/h",               // three parts
             "example.com/https/h/443/extra",     // five parts
             "example.com/ftp/h/21",              // scheme
             "example.com/HTTPS/h/443",           // scheme tokens are lowercase, as in the segmented form
             "example.com/https/h/0",             // port
             "example.com/https/h/08443",         // leading zero
             "example.com/https/2001:db8::1/443", // unbracketed IPv6
             "example.com/https/h%2eevil/443",    // no second decoding
             "example.com/https/127.1/443",       // non-canonical IPv4
             "exa mple.com/https/h/443",          // domain
             "/https/h/443",                      // empty domain
             "example.com/https//443",            // empty host
         }) {
        INFO(bad);
        CHECK_FALSE(parse_mra_path(desc(bad) + "/x").ok());
    }
    // Dot segments in the path still cannot climb, and the descriptor cannot be reached by climbing.
    CHECK_FALSE(parse_mra_path(desc("example.com/https/h/443") + "/../../x").ok());
    // Non-canonical base64 (non-zero trailing bits) is neither a descriptor nor a domain.
    auto s = base64_encode("example.com/https/h/443", false, true);
    s.back() = s.back() == 'A' ? 'B' : char(s.back() + 1);
    CHECK_FALSE(parse_mra_path("/" + s + "/x").ok());
}
