#include <catch2/catch.hpp>

#include <string>

#include "edge-c/cluster_rules.h"

namespace wire = edgepair::edge_c::rules_wire;

TEST_CASE("shared allow-list rules: encoded and decoded alike, anything malformed refused",
          "[edge_c][cluster]") {
    wire::Imported r{
        1'800'000'000'123, "c1/aa",
        "Url,Deployment,HttpMethods,MatchType,Description\r\nhttp://x/,,GET,prefix,\"a, b\"\r\n"};
    auto text = wire::encode(r);
    CHECK(text.starts_with("1 1800000000123 c1/aa\nUrl,"));
    auto back = wire::decode(text);
    REQUIRE(back);
    CHECK(back->version_ms == r.version_ms);
    CHECK(back->origin == "c1/aa");
    CHECK(back->csv == r.csv);
    // An import of nothing (every rule deleted) is a version too.
    auto empty = wire::decode("1 5 c2/bb\n");
    REQUIRE(empty);
    CHECK(empty->csv.empty());

    for (const char* bad : {"", "1", "1 5 o", "2 5 o\nx", "1 x o\nx", "1 -5 o\nx", "1 5\nx", "1 5 a b\nx",
                            "1  o\nx", "1 99999999999999999999999 o\nx"})
        CHECK_FALSE(wire::decode(bad));
    CHECK_FALSE(wire::decode(std::string("1 5 o\nnul\0", 10)));
    CHECK_FALSE(wire::decode("1 5 o\n" + std::string(wire::kMaxCsvBytes + 1, 'x')));
}

TEST_CASE("shared allow-list rules: the newest import wins, ties by origin, the same everywhere",
          "[edge_c][cluster]") {
    wire::Imported a{200, "c1/aa", ""};
    CHECK(wire::newer(a, 100, "c9/zz"));
    CHECK_FALSE(wire::newer(a, 300, "c0/00"));
    // Equal times: the greater origin, so that two peers comparing each other's agree on one.
    CHECK(wire::newer(a, 200, "c0/00"));
    CHECK_FALSE(wire::newer(a, 200, "c2/bb"));
    CHECK_FALSE(wire::newer(a, 200, "c1/aa")); // itself is not newer
    // A peer that never imported (version 0) loses to any import.
    CHECK(wire::newer(wire::Imported{1, "x", ""}, 0, ""));
}
