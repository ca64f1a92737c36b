#include <catch2/catch.hpp>

#include "common/link/backoff.h"
#include "common/link/control.h"
#include "common/obs/json.h"

using namespace edgepair::link;

TEST_CASE("backoff: delays stay within [min, max] and grow towards the cap", "[link][backoff]") {
    Backoff b(100, 5000, 42);
    uint64_t max_seen = 0;
    for (int i = 0; i < 1000; ++i) {
        auto d = b.next();
        REQUIRE(d >= 100);
        REQUIRE(d <= 5000);
        max_seen = std::max(max_seen, d);
    }
    CHECK(b.attempts() == 1000);
    CHECK(max_seen > 2500); // it does reach the upper range
    b.reset();
    CHECK(b.attempts() == 0);
    // Right after a reset the first delay is drawn near the floor: at most 3 x min.
    for (int i = 0; i < 100; ++i) {
        b.reset();
        auto d = b.next();
        CHECK(d >= 100);
        CHECK(d <= 300);
    }
}

TEST_CASE("backoff: jitter differs between seeds; degenerate bounds are safe", "[link][backoff]") {
    Backoff a(100, 60000, 1), b(100, 60000, 2);
    int same = 0;
    for (int i = 0; i < 20; ++i)
        same += a.next() == b.next();
    CHECK(same < 5);
    Backoff z(0, 0, 3); // a zero floor would busy-loop redials; it is raised to 1 ms
    CHECK(z.next() == 1);
    Backoff inv(500, 100, 4); // cap below floor: the floor wins
    CHECK(inv.next() == 500);
    Backoff huge(1, UINT64_MAX / 2, 5);
    for (int i = 0; i < 200; ++i)
        REQUIRE(huge.next() <= UINT64_MAX / 2);
}

TEST_CASE("control framing: split and coalesced messages; oversize rejected", "[link][control]") {
    std::string wire =
        frame_control(R"({"a":1})") + frame_control("") + frame_control(std::string(70000, 'x'));
    std::vector<std::string> got;
    ControlDecoder d(1 << 20);
    for (size_t i = 0; i < wire.size(); i += 7)
        REQUIRE(d.feed(wire.data() + i, std::min<size_t>(7, wire.size() - i),
                       [&](std::string_view m) { got.emplace_back(m); }));
    REQUIRE(got.size() == 3);
    CHECK(got[0] == R"({"a":1})");
    CHECK(got[1].empty());
    CHECK(got[2].size() == 70000);
    CHECK(d.buffered() == 0);
    ControlDecoder small(10);
    auto big = frame_control(std::string(11, 'y'));
    CHECK_FALSE(small.feed(big.data(), big.size(), [](std::string_view) {}));
    CHECK(small.error().find("exceeds") != std::string::npos);
    std::string esc;
    edgepair::obs::json_escape_into(esc, "a\"b\\c\n\x01");
    CHECK(esc == "a\\\"b\\\\c\\n\\u0001");
}
