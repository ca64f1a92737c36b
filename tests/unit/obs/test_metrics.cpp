#include <catch2/catch.hpp>

#include "common/obs/metrics.h"

using namespace edgepair::obs;

TEST_CASE("a gauge hold counts one while it lives, moved or not") {
    Registry reg;
    Gauge& g = reg.gauge("edgepair_test_open", "open things", {{"domain", "partner.test"}});
    {
        GaugeHold a(g);
        CHECK(g.value() == 1);
        GaugeHold b(std::move(a));
        CHECK(g.value() == 1);
        CHECK_FALSE(a.held());
        GaugeHold c;
        c = std::move(b);
        CHECK(g.value() == 1);
        GaugeHold d(g);
        CHECK(g.value() == 2);
        d = GaugeHold(); // released by assignment
        CHECK(g.value() == 1);
    }
    CHECK(g.value() == 0);
}

TEST_CASE("gauge_values lists a family's gauges with their labels") {
    Registry reg;
    reg.gauge("edgepair_test_open", "open things", {{"direction", "in"}, {"domain", "b.test"}}).set(2);
    reg.gauge("edgepair_test_open", "open things", {{"direction", "out"}, {"domain", "a.test"}}).set(5);
    reg.counter("edgepair_other_total", "other").inc();
    auto v = reg.gauge_values("edgepair_test_open");
    REQUIRE(v.size() == 2);
    CHECK(v[0].first == Labels{{"direction", "in"}, {"domain", "b.test"}});
    CHECK(v[0].second == 2);
    CHECK(v[1].first == Labels{{"direction", "out"}, {"domain", "a.test"}});
    CHECK(v[1].second == 5);
    CHECK(reg.gauge_values("edgepair_absent").empty());
}

TEST_CASE("counter_values lists a family's counters with their labels") {
    Registry reg;
    reg.counter("edgepair_test_refusals_total", "refusals", {{"reason", "denied"}}).inc(3);
    reg.counter("edgepair_test_refusals_total", "refusals", {{"reason", "bad_certificate"}});
    reg.gauge("edgepair_test_open", "open things", {{"reason", "denied"}}).set(7);
    auto v = reg.counter_values("edgepair_test_refusals_total");
    REQUIRE(v.size() == 2);
    CHECK(v[0].first == Labels{{"reason", "bad_certificate"}});
    CHECK(v[0].second == 0);
    CHECK(v[1].first == Labels{{"reason", "denied"}});
    CHECK(v[1].second == 3);
    CHECK(reg.counter_values("edgepair_test_open").empty());
    CHECK(reg.counter_values("edgepair_absent").empty());
}
