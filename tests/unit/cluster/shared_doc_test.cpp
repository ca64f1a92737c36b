#include <catch2/catch.hpp>

#include <string>

#include "common/cluster/shared_doc.h"

namespace wire = edgepair::cluster::doc_wire;

TEST_CASE("shared document: encoded and decoded alike, anything malformed refused", "[cluster]") {
    wire::Doc r{1'800'000'000'123, "c1/aa",
                "Url,Deployment,HttpMethods,MatchType,Description\r\nhttp://x/,,GET,prefix,\"a, b\"\r\n"};
    auto text = wire::encode(r);
    CHECK(text.starts_with("1 1800000000123 c1/aa\nUrl,"));
    auto back = wire::decode(text);
    REQUIRE(back);
    CHECK(back->version_ms == r.version_ms);
    CHECK(back->origin == "c1/aa");
    CHECK(back->text == r.text);
    // An import of nothing (every rule deleted) is a version too.
    auto empty = wire::decode("1 5 c2/bb\n");
    REQUIRE(empty);
    CHECK(empty->text.empty());

    for (const char* bad : {"", "1", "1 5 o", "2 5 o\nx", "1 x o\nx", "1 -5 o\nx", "1 5\nx", "1 5 a b\nx",
                            "1  o\nx", "1 99999999999999999999999 o\nx"})
        CHECK_FALSE(wire::decode(bad));
    CHECK_FALSE(wire::decode(std::string("1 5 o\nnul\0", 10)));
    CHECK_FALSE(wire::decode("1 5 o\n" + std::string(wire::kMaxTextBytes + 1, 'x')));
}

TEST_CASE("shared document: the newest import wins, ties by origin, the same everywhere", "[cluster]") {
    wire::Doc a{200, "c1/aa", ""};
    CHECK(wire::newer(a, 100, "c9/zz"));
    CHECK_FALSE(wire::newer(a, 300, "c0/00"));
    // Equal times: the greater origin, so that two peers comparing each other's agree on one.
    CHECK(wire::newer(a, 200, "c0/00"));
    CHECK_FALSE(wire::newer(a, 200, "c2/bb"));
    CHECK_FALSE(wire::newer(a, 200, "c1/aa")); // itself is not newer
    // A peer that never imported (version 0) loses to any import.
    CHECK(wire::newer(wire::Doc{1, "x", ""}, 0, ""));
}
