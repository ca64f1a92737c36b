#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "common/net/network.h"
#include "common/protection/ban_store.h"
#include "common/protection/classify.h"
#include "common/protection/detector.h"

using namespace edgepair;
using namespace edgepair::protection;

namespace {

Settings tight() {
    Settings s;
    s.rules[size_t(Category::HttpAuth)] = Rule{true, 3, 10'000, 60'000};
    s.rules[size_t(Category::HttpIntrusion)] = Rule{true, 2, 5'000, 30'000};
    return s;
}

net::SockAddr addr(const char* ip) {
    auto a = net::numeric_addr(ip, 1234);
    REQUIRE(a);
    return *a;
}

} // namespace

TEST_CASE("protection: defaults follow the seed (access off, the others on)", "[protection]") {
    auto r = default_rules();
    CHECK(r[size_t(Category::HttpAuth)].enabled);
    CHECK(r[size_t(Category::HttpIntrusion)].enabled);
    CHECK(r[size_t(Category::XmppIntrusion)].enabled);
    CHECK(r[size_t(Category::SipAuth)].enabled);
    CHECK_FALSE(r[size_t(Category::HttpAccess)].enabled);
    CHECK(category_name(Category::HttpAccess) == "http-ce-access");
    CHECK(category_from_name("sip-auth") == Category::SipAuth);
    CHECK_FALSE(category_from_name("sshpfwd-auth"));
}

TEST_CASE("protection: threshold failures within the window ban the address", "[protection]") {
    Detector d(tight());
    uint64_t t = 1'000'000;
    CHECK(d.record(Category::HttpAuth, "192.0.2.7", t).kind == Outcome::Kind::Counted);
    CHECK(d.record(Category::HttpAuth, "192.0.2.7", t + 1000).kind == Outcome::Kind::Counted);
    auto o = d.record(Category::HttpAuth, "192.0.2.7", t + 2000);
    REQUIRE(o.kind == Outcome::Kind::Banned);
    REQUIRE(o.ban);
    CHECK(o.ban->address == "192.0.2.7");
    CHECK(o.ban->category == Category::HttpAuth);
    CHECK(o.ban->count == 3);
    CHECK(o.ban->until_ms == t + 2000 + 60'000);
    CHECK(d.ban_of("192.0.2.7", t + 3000));
    // Another address is untouched.
    CHECK_FALSE(d.ban_of("192.0.2.8", t + 3000));
    // Failures while banned do not extend or duplicate the ban.
    CHECK(d.record(Category::HttpAuth, "192.0.2.7", t + 4000).kind == Outcome::Kind::AlreadyBanned);
    CHECK(d.bans(t + 4000).size() == 1);
    // The ban ends at its time, and the address starts clean.
    CHECK(d.ban_of("192.0.2.7", t + 2000 + 59'999));
    CHECK_FALSE(d.ban_of("192.0.2.7", t + 2000 + 60'000));
    CHECK(d.record(Category::HttpAuth, "192.0.2.7", t + 70'000).kind == Outcome::Kind::Counted);
}

TEST_CASE("protection: failures older than the window do not count", "[protection]") {
    Detector d(tight());
    uint64_t t = 5'000;
    d.record(Category::HttpAuth, "192.0.2.7", t);
    d.record(Category::HttpAuth, "192.0.2.7", t + 1);
    // 10 s window: the first two fell out by now, so this is the first of a new run.
    CHECK(d.record(Category::HttpAuth, "192.0.2.7", t + 10'001).kind == Outcome::Kind::Counted);
    CHECK(d.record(Category::HttpAuth, "192.0.2.7", t + 10'002).kind == Outcome::Kind::Counted);
    CHECK(d.record(Category::HttpAuth, "192.0.2.7", t + 10'003).kind == Outcome::Kind::Banned);
}

TEST_CASE("protection: categories count apart, each with its own rule", "[protection]") {
    Detector d(tight());
    uint64_t t = 100;
    d.record(Category::HttpAuth, "198.51.100.1", t);
    d.record(Category::HttpAuth, "198.51.100.1", t);
    // Intrusion has its own count (threshold 2, ban 30 s), not added to the two auth failures.
    CHECK(d.record(Category::HttpIntrusion, "198.51.100.1", t).kind == Outcome::Kind::Counted);
    auto o = d.record(Category::HttpIntrusion, "198.51.100.1", t + 1);
    REQUIRE(o.kind == Outcome::Kind::Banned);
    CHECK(o.ban->category == Category::HttpIntrusion);
    CHECK(o.ban->until_ms == t + 1 + 30'000);
    // The ban cleared the other category's count too.
    CHECK_FALSE(d.ban_of("198.51.100.1", t + 30'001));
    CHECK(d.record(Category::HttpAuth, "198.51.100.1", t + 30'002).kind == Outcome::Kind::Counted);
}

TEST_CASE("protection: a disabled category records nothing", "[protection]") {
    Detector d; // defaults: http-ce-access off
    for (int i = 0; i < 100; ++i)
        CHECK(d.record(Category::HttpAccess, "192.0.2.9", 1000 + i).kind == Outcome::Kind::Disabled);
    CHECK(d.bans(2000).empty());
    CHECK(d.tracked() == 0);
    Settings on;
    on.rules[size_t(Category::HttpAccess)].enabled = true;
    d.apply(on);
    for (int i = 0; i < 9; ++i)
        CHECK(d.record(Category::HttpAccess, "192.0.2.9", 3000 + i).kind == Outcome::Kind::Counted);
    CHECK(d.record(Category::HttpAccess, "192.0.2.9", 3010).kind == Outcome::Kind::Banned);
}

TEST_CASE("protection: lift ends a ban and forgets the counts", "[protection]") {
    Detector d(tight());
    for (int i = 0; i < 3; ++i)
        d.record(Category::HttpAuth, "192.0.2.7", 10 + i);
    REQUIRE(d.ban_of("192.0.2.7", 20));
    CHECK(d.lift("192.0.2.7", 20));
    CHECK_FALSE(d.ban_of("192.0.2.7", 20));
    CHECK_FALSE(d.lift("192.0.2.7", 20));
    CHECK(d.record(Category::HttpAuth, "192.0.2.7", 21).kind == Outcome::Kind::Counted);
    CHECK(d.bans(21).empty());
}

TEST_CASE("protection: the table stays bounded and fails open", "[protection]") {
    Settings s = tight();
    s.max_tracked = 4;
    Detector d(s);
    for (int i = 0; i < 4; ++i)
        CHECK(d.record(Category::HttpAuth, "10.0.0." + std::to_string(i), 1000).kind ==
              Outcome::Kind::Counted);
    CHECK(d.record(Category::HttpAuth, "10.0.0.99", 1000).kind == Outcome::Kind::Untracked);
    // Known addresses keep counting, and once their windows pass the room comes back.
    CHECK(d.record(Category::HttpAuth, "10.0.0.1", 1001).kind == Outcome::Kind::Counted);
    CHECK(d.record(Category::HttpAuth, "10.0.0.99", 20'000).kind == Outcome::Kind::Counted);
    CHECK(d.tracked() == 1);
}

TEST_CASE("protection: the local store tells its listener once per ban and per lift", "[protection]") {
    LocalBanStore store(tight());
    std::vector<Ban> banned;
    std::vector<std::string> lifted;
    store.set_listener({[&](const Ban& b) { banned.push_back(b); },
                        [&](const std::string& a) { lifted.push_back(a); },
                        {},
                        {}});
    for (int i = 0; i < 6; ++i)
        store.record_failure(Category::HttpAuth, "203.0.113.5", 500 + i);
    REQUIRE(banned.size() == 1);
    CHECK(banned[0].address == "203.0.113.5");
    CHECK(store.bans(510).size() == 1);
    CHECK(store.lift("203.0.113.5", 511));
    CHECK_FALSE(store.lift("203.0.113.5", 512));
    CHECK(lifted == std::vector<std::string>{"203.0.113.5"});
    CHECK(store.bans(512).empty());
}

TEST_CASE("protection: a worker's view expires bans by itself and forgets lifted ones", "[protection]") {
    BanView v;
    CHECK_FALSE(v.banned("192.0.2.1", 0));
    v.add("192.0.2.1", 1000);
    v.add("192.0.2.2", 5000);
    CHECK(v.banned("192.0.2.1", 999));
    CHECK_FALSE(v.banned("192.0.2.1", 1000));
    CHECK(v.size() == 1);
    v.remove("192.0.2.2");
    CHECK_FALSE(v.banned("192.0.2.2", 10));
    CHECK(v.empty());
}

TEST_CASE("protection: exempt networks, IPv4 and IPv6", "[protection][network]") {
    auto v4 = net::Network::parse("192.0.2.0/24");
    REQUIRE(v4);
    CHECK(v4->contains(addr("192.0.2.200")));
    CHECK_FALSE(v4->contains(addr("192.0.3.1")));
    CHECK_FALSE(v4->contains(addr("2001:db8::1")));
    // A dual-stack socket sees IPv4 clients as ::ffff:a.b.c.d.
    CHECK(v4->contains(addr("::ffff:192.0.2.4")));
    CHECK(v4->str() == "192.0.2.0/24");

    auto v6 = net::Network::parse("2001:db8:1::/48");
    REQUIRE(v6);
    CHECK(v6->contains(addr("2001:db8:1:ffff::9")));
    CHECK_FALSE(v6->contains(addr("2001:db8:2::1")));
    CHECK_FALSE(v6->contains(addr("192.0.2.1")));

    auto host = net::Network::parse("127.0.0.5");
    REQUIRE(host);
    CHECK(host->prefix() == 32);
    CHECK(host->contains(addr("127.0.0.5")));
    CHECK_FALSE(host->contains(addr("127.0.0.6")));

    auto odd = net::Network::parse("10.1.2.0/25");
    REQUIRE(odd);
    CHECK(odd->contains(addr("10.1.2.100")));
    CHECK_FALSE(odd->contains(addr("10.1.2.200")));
    auto seven = net::Network::parse("10.0.0.0/7"); // not byte-aligned, host bits clear
    REQUIRE(seven);
    CHECK(seven->contains(addr("11.255.0.1")));
    CHECK_FALSE(seven->contains(addr("12.0.0.1")));

    CHECK_FALSE(net::Network::parse("192.0.2.1/24")); // host bits set
    CHECK_FALSE(net::Network::parse("192.0.2.0/33"));
    CHECK_FALSE(net::Network::parse("192.0.2.0/"));
    CHECK_FALSE(net::Network::parse("example.com/24"));
    CHECK_FALSE(net::Network::parse("2001:db8::/129"));
}

TEST_CASE("protection: what counts where", "[protection][classify]") {
    CHECK(refusal_category(400, "smuggling_cl_te") == Category::HttpIntrusion);
    CHECK(refusal_category(400, "above_root") == Category::HttpIntrusion);
    CHECK(refusal_category(431, "header_too_large") == Category::HttpIntrusion);
    CHECK(refusal_category(404, "unknown_domain") == Category::HttpAccess);
    CHECK(refusal_category(403, "blocked") == Category::HttpAccess);
    CHECK(refusal_category(401, "no_credentials") == Category::HttpAuth);
    CHECK_FALSE(refusal_category(429, "rate_limited"));
    CHECK_FALSE(refusal_category(408, "head_timeout"));
    CHECK_FALSE(refusal_category(503, "no_config"));
    CHECK(answer_category(401) == Category::HttpAuth);
    CHECK(answer_category(403) == Category::HttpAuth);
    CHECK(answer_category(404) == Category::HttpAccess);
    CHECK_FALSE(answer_category(200));
    CHECK_FALSE(answer_category(502));

    CHECK_FALSE(sip_auth_failure(401, "REGISTER", false)); // the challenge
    CHECK(sip_auth_failure(401, "REGISTER", true));
    CHECK(sip_auth_failure(407, "INVITE", true));
    CHECK(sip_auth_failure(403, "REGISTER", false));
    CHECK_FALSE(sip_auth_failure(403, "SUBSCRIBE", true));
    CHECK_FALSE(sip_auth_failure(200, "REGISTER", true));
}

TEST_CASE("protection: a peer's ban is adopted (told apart from one made here), and lifted by a peer",
          "[protection][cluster]") {
    LocalBanStore store(tight());
    std::vector<Ban> banned, adopted;
    std::vector<std::string> lifted, by_peer;
    LocalBanStore::Listener l;
    l.banned = [&](const Ban& b) { banned.push_back(b); };
    l.lifted = [&](const std::string& a) { lifted.push_back(a); };
    l.adopted = [&](const Ban& b) { adopted.push_back(b); };
    l.lifted_by_peer = [&](const std::string& a) { by_peer.push_back(a); };
    store.set_listener(l);

    Ban b{"198.51.100.4", Category::SipAuth, 5, 60'000, 1000, 61'000};
    CHECK(store.adopt(b, 2000));
    CHECK_FALSE(store.adopt(b, 2000)); // nothing new
    auto shorter = b;
    shorter.until_ms = 30'000;
    CHECK_FALSE(store.adopt(shorter, 2000)); // a ban that ends sooner changes nothing
    auto expired = b;
    expired.address = "198.51.100.5";
    CHECK_FALSE(store.adopt(expired, 70'000));
    REQUIRE(adopted.size() == 1);
    CHECK(banned.empty());
    REQUIRE(store.ban_of("198.51.100.4", 2000));
    CHECK(store.ban_of("198.51.100.4", 2000)->until_ms == 61'000);
    // An adopted ban refuses failures like one made here.
    CHECK(store.record_failure(Category::HttpAuth, "198.51.100.4", 3000).kind ==
          Outcome::Kind::AlreadyBanned);

    CHECK(store.lift_by_peer("198.51.100.4", 4000));
    CHECK_FALSE(store.lift_by_peer("198.51.100.4", 4000));
    CHECK(by_peer == std::vector<std::string>{"198.51.100.4"});
    CHECK(lifted.empty());
    CHECK_FALSE(store.ban_of("198.51.100.4", 4000));
}

TEST_CASE(
    "protection: a peer's failures count here, but the ban is made where a failure reaches the threshold",
    "[protection][cluster]") {
    Detector d(tight()); // http-ce-auth: 3 in 10 s
    const std::string a = "192.0.2.7";
    d.count_remote(Category::HttpAuth, a, 1, 1000);
    // One here reaches 2 of 3: counted, no ban yet.
    CHECK(d.record(Category::HttpAuth, a, 1100).kind == Outcome::Kind::Counted);
    d.count_remote(Category::HttpAuth, a, 1, 1200);
    auto o = d.record(Category::HttpAuth, a, 1300);
    REQUIRE(o.kind == Outcome::Kind::Banned);
    CHECK(o.ban->count == 3);

    // Remote counts alone never ban, however many: they stop one short of the threshold.
    const std::string b = "192.0.2.8";
    d.count_remote(Category::HttpAuth, b, 50, 2000);
    CHECK_FALSE(d.ban_of(b, 2000));
    CHECK(d.record(Category::HttpAuth, b, 2001).kind == Outcome::Kind::Banned);

    // They age out with the window like local ones.
    const std::string c = "192.0.2.9";
    d.count_remote(Category::HttpAuth, c, 2, 3000);
    CHECK(d.record(Category::HttpAuth, c, 3000 + 10'001).kind == Outcome::Kind::Counted);

    // Nothing for a disabled category, or an address banned already.
    d.count_remote(Category::HttpAccess, c, 5, 4000);
    CHECK(d.tracked() == 1); // c's http-ce-auth window only
    d.count_remote(Category::HttpAuth, a, 5, 4000);
    CHECK(d.ban_of(a, 4000));
}
