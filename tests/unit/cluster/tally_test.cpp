#include <catch2/catch.hpp>

#include <string>

#include "common/cluster/tally.h"

using edgepair::cluster::decode_tally;
using edgepair::cluster::TallyBatch;

TEST_CASE("tally: counts per kind and key, drained as messages a peer decodes alike", "[cluster][tally]") {
    TallyBatch b;
    CHECK(b.add("auth_failures", "user:alice"));
    CHECK(b.add("auth_failures", "user:alice", 2));
    CHECK(b.add("authorizations", "user:alice"));
    CHECK(b.add("auth_failures", "user:bob smith")); // blanks in a key are fine: the key ends the line
    CHECK(b.size() == 3);
    auto msgs = b.drain("c1/aa");
    CHECK(b.empty());
    REQUIRE(msgs.size() == 1);
    CHECK(msgs[0].starts_with("t1 c1/aa\n"));
    auto m = decode_tally(msgs[0]);
    REQUIRE(m);
    CHECK(m->origin == "c1/aa");
    REQUIRE(m->entries.size() == 3);
    uint32_t alice_failures = 0, alice_auth = 0, bob = 0;
    for (const auto& e : m->entries) {
        if (e.kind == "auth_failures" && e.key == "user:alice") alice_failures = e.count;
        if (e.kind == "authorizations" && e.key == "user:alice") alice_auth = e.count;
        if (e.kind == "auth_failures" && e.key == "user:bob smith") bob = e.count;
    }
    CHECK(alice_failures == 3);
    CHECK(alice_auth == 1);
    CHECK(bob == 1);
    CHECK(b.drain("c1/aa").empty()); // nothing held: nothing published
}

TEST_CASE("tally: what cannot be shared is refused, and the batch is bounded", "[cluster][tally]") {
    TallyBatch b(2);
    CHECK_FALSE(b.add("Auth", "k")); // kinds are [a-z_-]
    CHECK_FALSE(b.add("a b", "k"));
    CHECK_FALSE(b.add("", "k"));
    CHECK_FALSE(b.add("k", ""));
    CHECK_FALSE(b.add("k", "line\nbreak"));
    CHECK_FALSE(b.add("k", std::string("nul\0x", 5)));
    CHECK_FALSE(b.add("k", std::string(1025, 'x')));
    CHECK_FALSE(b.add("k", "x", 0));
    CHECK(b.add("k", "one"));
    CHECK(b.add("k", "two"));
    CHECK_FALSE(b.add("k", "three")); // full
    CHECK(b.add("k", "one"));         // a held key still counts
    // Counts saturate instead of wrapping.
    CHECK(b.add("k", "two", TallyBatch::kMaxCount));
    auto m = decode_tally(b.drain("o").at(0));
    REQUIRE(m);
    for (const auto& e : m->entries)
        CHECK(e.count == (e.key == "one" ? 2u : TallyBatch::kMaxCount));
}

TEST_CASE("tally: a large batch is split into messages under the size bound", "[cluster][tally]") {
    TallyBatch b(100000);
    for (int i = 0; i < 5000; ++i)
        REQUIRE(b.add("auth_failures", "user:" + std::string(40, 'u') + std::to_string(i)));
    auto msgs = b.drain("c2/bb");
    REQUIRE(msgs.size() > 1);
    size_t total = 0;
    for (const auto& s : msgs) {
        CHECK(s.size() <= TallyBatch::kMaxMessageBytes);
        auto m = decode_tally(s);
        REQUIRE(m);
        total += m->entries.size();
    }
    CHECK(total == 5000);
}

TEST_CASE("tally: anything malformed voids the message", "[cluster][tally]") {
    CHECK(decode_tally("t1 o\nk 1 key\n"));
    for (const char* bad : {"", "t1", "t1 o", "t1 o\n", "t2 o\nk 1 key\n", "t1 \nk 1 key\n",
                            "t1 o p\nk 1 key\n", "t1 o\nk 1 key", "t1 o\nk 0 key\n", "t1 o\nk -1 key\n",
                            "t1 o\nk 1x key\n", "t1 o\nK 1 key\n", "t1 o\nk 1\n", "t1 o\nk  key\n",
                            "t1 o\nk 1000001 key\n", "t1 o\nk 1 key\n\n", "t1 o\nk 99999999999 key\n"})
        CHECK_FALSE(decode_tally(bad));
}
