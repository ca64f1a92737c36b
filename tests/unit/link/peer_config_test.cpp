#include <catch2/catch.hpp>

#include "common/link/peer_config.h"
#include "tests/unit/link/link_test_util.h"

using namespace edgepair;
using namespace edgepair::link;
using namespace edgepair::link::test;

TEST_CASE("peer config: headers round trip, sorted and without case in domains", "[link][peers]") {
    auto c = make_peer_config("emea", {"Example.COM", "b.example.org", "example.com"}, {"default", "asia"});
    CHECK(c.domains == std::vector<std::string>{"b.example.org", "example.com"});
    CHECK(c.deployments == std::vector<std::string>{"asia", "default"});
    auto back = from_headers(to_headers(c));
    CHECK(back == c);
    // An older edge-c sends none of the headers: nothing to compare, never a mismatch.
    auto none = from_headers({{"x-link-node", "expc1"}});
    CHECK_FALSE(none.announced);
    CHECK(peer_differences(none, "emea", &c, "expc1").empty());
}

TEST_CASE("peer config: differences name the field, the peer and the reference", "[link][peers]") {
    auto ref = make_peer_config("emea", {"example.com"}, {"default"});
    auto same = make_peer_config("emea", {"EXAMPLE.com"}, {"default"});
    CHECK(peer_differences(same, "emea", &ref, "expc1").empty());
    // The reference itself is only held to edge-e's cluster name.
    CHECK(peer_differences(ref, "emea", nullptr, "").empty());
    auto other = make_peer_config("apac", {"example.com", "example.org"}, {"default", "lab"});
    auto d = peer_differences(other, "emea", &ref, "expc1");
    REQUIRE(d.size() == 3);
    CHECK(d[0] == R"(cluster name "apac", this edge-e's cluster.name is "emea")");
    CHECK(d[1] == "domains [example.com, example.org], peer expc1 has [example.com]");
    CHECK(d[2] == "deployments [default, lab], peer expc1 has [default]");
    // Unnamed on both sides agrees; named on one side only does not.
    auto unnamed = make_peer_config("", {"example.com"}, {"default"});
    // Cluster names are held to edge-e's own, not to the reference peer's.
    CHECK(peer_differences(unnamed, "", &ref, "expc1").empty());
    CHECK(peer_differences(unnamed, "emea", nullptr, "").size() == 1);
}

TEST_CASE("link: edge-c's announcement reaches edge-e, its password does not", "[link][peers]") {
    LinkPair p;
    p.co.announce = to_headers(make_peer_config("emea", {"example.com"}, {"default"}));
    p.start();
    REQUIRE(p.wait_up());
    auto got = from_headers(p.e->peer_headers());
    CHECK(got.announced);
    CHECK(got.cluster == "emea");
    CHECK(got.domains == std::vector<std::string>{"example.com"});
    for (const auto& h : p.e->peer_headers())
        CHECK(h.first != "x-link-password");
    CHECK(header_value(p.e->peer_headers(), "x-link-user") == "zone");
}
