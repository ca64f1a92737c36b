#include <catch2/catch.hpp>

#include <string>

#include "common/cluster/shared_doc.h"
#include "common/crypto/digest.h"

namespace wire = edgepair::cluster::doc_wire;

TEST_CASE("shared document: encoded and decoded alike, signed, anything malformed refused", "[cluster]") {
    auto key = edgepair::crypto::HmacSha256::create(edgepair::crypto::bytes(std::string(32, 'k')));
    REQUIRE(key);
    wire::Doc r{1'800'000'000'123,
                "c1/aa",
                "Url,Deployment,HttpMethods,MatchType,Description\r\nhttp://x/,,GET,prefix,\"a, b\"\r\n",
                {}};
    r.mac = wire::mac(**key, "allowlist:imported", r);
    REQUIRE(r.mac.size() == 64);
    auto text = wire::encode(r);
    CHECK(text.starts_with("1 1800000000123 c1/aa " + r.mac + "\nUrl,"));
    auto back = wire::decode(text);
    REQUIRE(back);
    CHECK(back->version_ms == r.version_ms);
    CHECK(back->origin == "c1/aa");
    CHECK(back->text == r.text);
    CHECK(back->mac == r.mac);
    // The MAC covers the document's name, version, origin and text: any of them changed, another MAC.
    auto other = *back;
    other.text += "x";
    CHECK(wire::mac(**key, "allowlist:imported", other) != r.mac);
    other = *back;
    other.version_ms += 1;
    CHECK(wire::mac(**key, "allowlist:imported", other) != r.mac);
    other = *back;
    other.origin = "c2/bb";
    CHECK(wire::mac(**key, "allowlist:imported", other) != r.mac);
    CHECK(wire::mac(**key, "discovery:state", *back) != r.mac); // not replayable as another document
    auto key2 = edgepair::crypto::HmacSha256::create(edgepair::crypto::bytes(std::string(32, 'j')));
    REQUIRE(key2);
    CHECK(wire::mac(**key2, "allowlist:imported", *back) != r.mac);
    // An import of nothing (every rule deleted) is a version too.
    const std::string m(64, 'a');
    auto empty = wire::decode("1 5 c2/bb " + m + "\n");
    REQUIRE(empty);
    CHECK(empty->text.empty());

    for (std::string bad :
         {"", "1", "1 5 o", "1 5 o\nx", "2 5 o M\nx", "1 x o M\nx", "1 -5 o M\nx", "1 5 M\nx", "1 5 a b M\nx",
          "1  o M\nx", "1 99999999999999999999999 o M\nx", "1 5 o short\nx",
          "1 5 o AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\nx"}) {
        auto pos = bad.find(" M");
        if (pos != std::string::npos) bad.replace(pos + 1, 1, m);
        CHECK_FALSE(wire::decode(bad));
    }
    CHECK_FALSE(wire::decode(std::string("1 5 o ") + m + std::string("\nnul\0", 5)));
    CHECK_FALSE(wire::decode("1 5 o " + m + "\n" + std::string(wire::kMaxTextBytes + 1, 'x')));
}

TEST_CASE("shared document: the newest import wins, ties by origin, the same everywhere", "[cluster]") {
    wire::Doc a{200, "c1/aa", "", {}};
    CHECK(wire::newer(a, 100, "c9/zz"));
    CHECK_FALSE(wire::newer(a, 300, "c0/00"));
    // Equal times: the greater origin, so that two peers comparing each other's agree on one.
    CHECK(wire::newer(a, 200, "c0/00"));
    CHECK_FALSE(wire::newer(a, 200, "c2/bb"));
    CHECK_FALSE(wire::newer(a, 200, "c1/aa")); // itself is not newer
    // A peer that never imported (version 0) loses to any import.
    CHECK(wire::newer(wire::Doc{1, "x", "", {}}, 0, ""));
}
