#include <catch2/catch.hpp>

#include "common/obs/alarms.h"
#include "common/obs/metrics.h"

using namespace edgepair::obs;

TEST_CASE("alarm raise, refresh and clear keep first/last seen and count") {
    int64_t now = 1000;
    Registry reg;
    AlarmTable t(&reg, [&now] { return now; });
    CHECK(t.raise("link.down", Severity::Critical, "worker 0 has no link"));
    now = 1005;
    CHECK_FALSE(t.raise("link.down", Severity::Critical, "worker 0 has no link"));
    auto l = t.list();
    REQUIRE(l.size() == 1);
    CHECK(l[0].first_seen_unix == 1000);
    CHECK(l[0].last_seen_unix == 1005);
    CHECK(l[0].count == 1);
    CHECK(l[0].active);
    CHECK(reg.render().find("edgepair_alarms_active{id=\"link.down\",severity=\"critical\"} 1") !=
          std::string::npos);
    now = 1010;
    CHECK(t.clear("link.down"));
    CHECK_FALSE(t.clear("link.down"));
    l = t.list();
    REQUIRE(l.size() == 1);
    CHECK_FALSE(l[0].active);
    CHECK(l[0].cleared_unix == 1010);
    CHECK(reg.render().find("edgepair_alarms_active{id=\"link.down\",severity=\"critical\"} 0") !=
          std::string::npos);
    now = 1020;
    CHECK(t.raise("link.down", Severity::Critical, "again"));
    l = t.list();
    CHECK(l[0].count == 2);
    CHECK(l[0].first_seen_unix == 1020);
    CHECK(l[0].cleared_unix == 0);
}

TEST_CASE("a severity change moves the gauge to the new label set") {
    Registry reg;
    AlarmTable t(&reg);
    t.raise("cert.expiring:a", Severity::Warning, "expires in 20 days");
    t.raise("cert.expiring:a", Severity::Critical, "expired");
    auto text = reg.render();
    CHECK(text.find("id=\"cert.expiring:a\",severity=\"warning\"} 0") != std::string::npos);
    CHECK(text.find("id=\"cert.expiring:a\",severity=\"critical\"} 1") != std::string::npos);
}

TEST_CASE("clear_family clears only the subjects not kept") {
    AlarmTable t;
    t.raise("node.unreachable:a", Severity::Major, "a");
    t.raise("node.unreachable:b", Severity::Major, "b");
    t.raise("link.down", Severity::Critical, "x");
    t.clear_family("node.unreachable:", {"node.unreachable:b"});
    CHECK_FALSE(t.active("node.unreachable:a"));
    CHECK(t.active("node.unreachable:b"));
    CHECK(t.active("link.down"));
    CHECK(t.active_count() == 2);
}

TEST_CASE("alarm JSON escapes and orders active first") {
    int64_t now = 1;
    AlarmTable t(nullptr, [&now] { return now; });
    t.raise("a", Severity::Warning, "quote \" and <tag>");
    t.clear("a");
    now = 2;
    t.raise("b", Severity::Major, "b");
    auto j = t.json();
    CHECK(j.find("\"id\":\"b\"") < j.find("\"id\":\"a\""));
    CHECK(j.find("quote \\\" and <tag>") != std::string::npos);
    CHECK(j.find("\"state\":\"cleared\"") != std::string::npos);
}

TEST_CASE("cleared history is bounded") {
    int64_t now = 0;
    AlarmTable t(nullptr, [&now] { return now; });
    for (int i = 0; i < 200; ++i) {
        ++now;
        t.raise("x:" + std::to_string(i), Severity::Warning, "");
        t.clear("x:" + std::to_string(i));
    }
    CHECK(t.list().size() == AlarmTable::kMaxCleared);
    CHECK(t.list().front().id == "x:199");
}
