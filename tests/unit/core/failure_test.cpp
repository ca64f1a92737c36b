#include <catch2/catch.hpp>

#include <set>
#include <string>

#include "common/core/failure.h"

using namespace edgepair::core;

TEST_CASE("failure: labels are distinct, stable and never 'unknown'", "[core][failure]") {
    std::set<std::string_view> sides;
    for (size_t i = 0; i < kSideCount; ++i)
        sides.insert(label(Side(i)));
    CHECK(sides == std::set<std::string_view>{"client", "edge", "link", "upstream"});

    std::set<std::string_view> kinds;
    for (size_t i = 0; i < kFailureKindCount; ++i)
        kinds.insert(label(FailureKind(i)));
    CHECK(kinds.size() == kFailureKindCount);
    CHECK_FALSE(kinds.contains("unknown"));
    // Metric label values: lower-case ASCII letters only, so they need no escaping anywhere.
    for (auto k : kinds)
        for (char c : k)
            CHECK((c >= 'a' && c <= 'z'));
    CHECK(label(FailureKind::Refused) == "refused");
    CHECK(label(FailureKind::Lost) == "lost");
    CHECK(label(Side::Upstream) == "upstream");
    // Out-of-range values (a corrupted byte) still give a label rather than undefined behaviour.
    CHECK(label(FailureKind(200)) == "unknown");
    CHECK(label(Side(200)) == "unknown");
}

TEST_CASE("failure: no kind means no failure", "[core][failure]") {
    Failure ok;
    CHECK_FALSE(ok);
    CHECK(ok.str() == "ok");
    Failure f(FailureKind::Timeout, Side::Upstream, "no answer in 35000 ms");
    CHECK(bool(f));
    // A detail does not make a clean end a failure.
    CHECK_FALSE(Failure(FailureKind::None, Side::Link, "drained"));
}

TEST_CASE("failure: formatting is side, kind, then the detail", "[core][failure]") {
    CHECK(Failure(FailureKind::Lost, Side::Link, "keep-alive timeout").str() ==
          "link lost: keep-alive timeout");
    CHECK(Failure(FailureKind::Refused, Side::Edge, "stream reset: REFUSED_STREAM").str() ==
          "edge refused: stream reset: REFUSED_STREAM");
    CHECK(Failure(FailureKind::Cancelled, Side::Client).str() == "client cancelled");
}
