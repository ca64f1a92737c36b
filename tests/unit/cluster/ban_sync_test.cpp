#include <catch2/catch.hpp>

#include "common/cluster/ban_sync.h"

using namespace edgepair;
using cluster::BanLedger;
using cluster::BanMessage;
using protection::Ban;
using protection::Category;

namespace {
Ban ban(std::string a, uint64_t since, uint64_t until, Category c = Category::HttpAuth) {
    Ban b;
    b.address = std::move(a);
    b.category = c;
    b.count = 5;
    b.window_ms = 60'000;
    b.since_ms = since;
    b.until_ms = until;
    return b;
}
} // namespace

TEST_CASE("ban messages: encoded and decoded alike", "[cluster]") {
    auto b = ban("2001:db8:1:2::/64", 1'700'000'000'000, 1'700'000'600'000, Category::XmppIntrusion);
    auto text = cluster::encode_ban_message(b, "expe1.example.com/0123abcd");
    CHECK(text == "ban 2001:db8:1:2::/64 1700000000000 1700000600000 xmpp-intrusion 5 60000 "
                  "expe1.example.com/0123abcd");
    auto m = cluster::decode_ban_message(text);
    REQUIRE(m);
    CHECK(m->kind == BanMessage::Kind::Ban);
    CHECK(m->ban.address == b.address);
    CHECK(m->ban.category == Category::XmppIntrusion);
    CHECK(m->ban.count == 5);
    CHECK(m->ban.window_ms == 60'000);
    CHECK(m->ban.since_ms == b.since_ms);
    CHECK(m->ban.until_ms == b.until_ms);
    CHECK(m->origin == "expe1.example.com/0123abcd");

    auto l = cluster::decode_ban_message(cluster::encode_lift_message("192.0.2.7", 42, "o"));
    REQUIRE(l);
    CHECK(l->kind == BanMessage::Kind::Lift);
    CHECK(l->ban.address == "192.0.2.7");
    CHECK(l->lifted_at_ms == 42);
    CHECK(l->origin == "o");
}

TEST_CASE("ban messages: anything malformed is refused whole", "[cluster]") {
    for (const char* bad : {
             "",
             "ban",
             "ban 192.0.2.1 1 2 http-ce-auth 5 60000",         // no origin
             "ban 192.0.2.1 1 2 http-ce-auth 5 60000 o extra", // one field too many
             "ban 192.0.2.1 2 1 http-ce-auth 5 60000 o",       // ends before it starts
             "ban 192.0.2.1 1 2 no-such-category 5 60000 o",
             "ban 192.0.2.1 1 x http-ce-auth 5 60000 o",
             "ban 192.0.2.1 -1 2 http-ce-auth 5 60000 o",
             "ban evil\x1b[31m 1 2 http-ce-auth 5 60000 o", // not an address key
             "ban 192.0.2.1  1 2 http-ce-auth 5 60000 o",   // empty field
             "lift 192.0.2.1 12",
             "lift 192.0.2.1 12x o",
             "unban 192.0.2.1 12 o",
         })
        CHECK_FALSE(cluster::decode_ban_message(bad));
}

TEST_CASE("ban records and tombstones in Redis", "[cluster]") {
    auto b = ban("198.51.100.9", 1000, 61'000, Category::SipAuth);
    auto v = cluster::encode_ban_record(b, "p1/ff");
    auto back = cluster::decode_ban_record("198.51.100.9", v);
    REQUIRE(back);
    CHECK(back->address == "198.51.100.9");
    CHECK(back->category == Category::SipAuth);
    CHECK(back->until_ms == 61'000);
    CHECK_FALSE(cluster::decode_ban_record("198.51.100.9 x", v)); // the key's address is checked too
    CHECK_FALSE(cluster::decode_ban_record("198.51.100.9", "2" + v.substr(1))); // an unknown version

    auto t = cluster::decode_lift_record(cluster::encode_lift_record(5000, "p2/aa"));
    REQUIRE(t);
    CHECK(*t == 5000);
    CHECK_FALSE(cluster::decode_lift_record("1 5000"));

    CHECK(cluster::tombstone_ttl_ms(10'000, 5'000) == 60'000);       // at least a minute
    CHECK(cluster::tombstone_ttl_ms(3'605'000, 5'000) == 3'600'000); // as long as the lifted ban
}

TEST_CASE("ledger: a peer's ban is applied unless a later lift voids it", "[cluster]") {
    BanLedger l;
    auto b = ban("192.0.2.1", 1000, 100'000);
    CHECK(l.accept(b, 2000));
    CHECK_FALSE(l.accept(b, 100'000)); // over

    l.lifted("192.0.2.1", 1500, 200'000);
    CHECK_FALSE(l.accept(b, 2000)); // made before the lift: void (a peer that missed the lift pushes it back)
    auto newer = ban("192.0.2.1", 1600, 50'000);
    CHECK(l.accept(newer, 2000)); // a new attack after the lift stands
    CHECK(l.accept(ban("192.0.2.2", 1000, 100'000), 2000));

    l.expire(200'000); // the tombstone is forgotten with its time
    CHECK(l.accept(b, 2000));
}

TEST_CASE("ledger: what a peer pushes after a reconnect", "[cluster]") {
    BanLedger l;
    l.own(ban("192.0.2.1", 1000, 100'000)); // made while Redis was away
    l.own(ban("192.0.2.2", 1000, 100'000)); // Redis has it already
    l.own(ban("192.0.2.3", 1000, 100'000)); // Redis has an older ban (shorter): ours lasts longer
    l.own(ban("192.0.2.4", 1000, 3000));    // over by now
    l.own(ban("192.0.2.5", 1000, 100'000)); // lifted on a peer while we were away
    l.lifted("192.0.2.5", 2000, 200'000);
    CHECK(l.own_count() == 4);

    std::unordered_map<std::string, uint64_t> held{{"192.0.2.2", 100'000}, {"192.0.2.3", 50'000}};
    auto push = l.to_push(held, 5000);
    std::vector<std::string> got;
    for (auto& b : push)
        got.push_back(b.address);
    std::sort(got.begin(), got.end());
    CHECK(got == std::vector<std::string>{"192.0.2.1", "192.0.2.3"});

    // A Redis restarted empty gets every own ban again.
    CHECK(l.to_push({}, 5000).size() == 3);
    l.expire(100'000);
    CHECK(l.own_count() == 0);
}

TEST_CASE("ledger: lifts made while Redis was away wait, once each", "[cluster]") {
    BanLedger l;
    l.own(ban("192.0.2.1", 1000, 100'000));
    l.lift_pending("192.0.2.1", 2000, 200'000);
    CHECK(l.own_count() == 0); // no longer pushed
    CHECK_FALSE(l.accept(ban("192.0.2.1", 1000, 100'000), 3000));
    CHECK(l.pending_lift_count() == 1);
    auto p = l.take_pending_lifts();
    REQUIRE(p.size() == 1);
    CHECK(p[0].address == "192.0.2.1");
    CHECK(p[0].lifted_at_ms == 2000);
    CHECK(l.take_pending_lifts().empty());
}

TEST_CASE("ban keys: only what client_rate_key makes", "[cluster]") {
    CHECK(cluster::valid_ban_address("192.0.2.1"));
    CHECK(cluster::valid_ban_address("2001:db8::/64"));
    CHECK_FALSE(cluster::valid_ban_address(""));
    CHECK_FALSE(cluster::valid_ban_address("a b"));
    CHECK_FALSE(cluster::valid_ban_address("host.example.com"));
    CHECK_FALSE(cluster::valid_ban_address(std::string(65, '1')));
}
