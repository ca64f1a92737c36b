// ClusterSignin (edge-c/cluster_signin.h): two and three "peers" in one process, each with its own local
// memory, against a real redis-server child process on loopback; and the wire forms on their own.
#include <catch2/catch.hpp>

#include <map>
#include <vector>

#include "common/core/loop.h"
#include "common/crypto/digest.h"
#include "edge-c/cluster_signin.h"
#include "edge-c/edge_token.h"
#include "tests/unit/redis_fixture.h"

using namespace edgepair;
using edge_c::ClusterSignin;
using edge_c::SamlIdentity;
using edge_c::SamlRefusal;
using edgepair::test::RedisServer;
using edgepair::test::run_for;
using edgepair::test::run_until;
namespace wire = edge_c::signin_wire;

namespace {

// One edge-c peer: its own local memory, what it heard, what it counted.
struct Peer {
    std::shared_ptr<edge_c::SamlReplayCache> local = std::make_shared<edge_c::SamlReplayCache>();
    std::vector<wire::Stamp> heard;
    std::map<std::string, uint32_t> tallied; // kind '/' key -> count heard
    size_t tally_entries = 0;
    std::map<std::string, int> fallbacks;
    int ups = 0, downs = 0;
    std::unique_ptr<ClusterSignin> s;

    Peer(core::Loop& loop, uint16_t port, std::string origin, std::string key_id = "00112233aabbccdd",
         uint64_t check_timeout_ms = 500) {
        ClusterSignin::Options o;
        o.redis.port = port;
        o.redis.timeout_ms = 1000;
        o.prefix = "edgepair:test:";
        o.origin = std::move(origin);
        o.check_timeout_ms = check_timeout_ms;
        ClusterSignin::Hooks h;
        h.stamp = [this](const wire::Stamp& st) { heard.push_back(st); };
        h.tally = [this](const edgepair::cluster::TallyEntry& e) {
            tallied[e.kind + "/" + e.key] += e.count;
            ++tally_entries;
        };
        h.fallback = [this](const char* what) { ++fallbacks[what]; };
        h.state = [this](bool up, const std::string&) { ++(up ? ups : downs); };
        // Reconnect back-off is RedisConn's (200 ms to 5 s); the test waits for it.
        s = std::make_unique<ClusterSignin>(loop, local, std::move(o), std::move(h));
        s->set_keys(std::move(key_id), std::string(32, 'k'));
        s->start();
    }
};

struct Verdict {
    bool done = false;
    std::optional<SamlRefusal> why;
    std::string detail;
};

Verdict admit(core::Loop& loop, Peer& p, const std::string& assertion, const std::string& irt,
              const std::string& domain = "example.com") {
    SamlIdentity id;
    id.assertion_id = assertion;
    id.in_response_to = irt;
    const int64_t now = int64_t(edge_c::wall_clock_ms() / 1000);
    id.expires_s = now + 300;
    Verdict v;
    p.s->admit(id, domain, now, [&v](std::optional<SamlRefusal> why, std::string detail) {
        v.done = true;
        v.why = why;
        v.detail = std::move(detail);
    });
    run_until(
        loop, [&] { return v.done; }, 3000);
    return v;
}

void remember(Peer& p, const std::string& id, const std::string& domain = "example.com") {
    const int64_t now = int64_t(edge_c::wall_clock_ms() / 1000);
    p.s->remember_request(id, domain, now + 600, now);
}

edge_c::CredentialStamp stamp_of(unsigned char b) {
    edge_c::CredentialStamp s{};
    s.fill(b);
    return s;
}

} // namespace

TEST_CASE("sign-in wire: stamps encoded and decoded alike, signed, anything malformed refused",
          "[edge_c][cluster]") {
    auto key = crypto::HmacSha256::create(crypto::bytes(std::string(32, 'k')));
    auto other = crypto::HmacSha256::create(crypto::bytes(std::string(32, 'o')));
    REQUIRE(key);
    REQUIRE(other);
    const crypto::HmacSha256* k = key->get();
    wire::Stamp s{"dep:1 %x",        "alice smith", "0123456789abcdef", stamp_of(0xab),
                  1'700'000'000'123, "c1/ff",       "cucm1.example.com"};
    auto suffix = wire::stamp_key_suffix(s.deployment, s.user);
    CHECK(suffix == "stamp:dep%3a1%20%25x:alice smith"); // the first ':' after the deployment ends it
    auto rec = wire::encode_stamp_record(s, k);
    const std::string head =
        "2 0123456789abcdef abababababababababababababababab 1700000000123 c1/ff cucm1.example.com";
    REQUIRE(rec.starts_with(head + " "));
    CHECK(rec.size() == head.size() + 1 + 64);
    auto back = wire::decode_stamp_record(suffix, rec, k);
    REQUIRE(back);
    CHECK(back->node == "cucm1.example.com");
    CHECK(back->deployment == "dep:1 %x");
    CHECK(back->user == "alice smith");
    CHECK(back->stamp == s.stamp);
    CHECK(back->seen_ms == s.seen_ms);
    CHECK(back->origin == "c1/ff");
    CHECK(back->key_id == "0123456789abcdef");
    // Signed: another key, no key, another user's key suffix, or a time moved forward are all refused.
    CHECK_FALSE(wire::decode_stamp_record(suffix, rec, other->get()));
    CHECK_FALSE(wire::decode_stamp_record(suffix, rec, nullptr));
    CHECK_FALSE(wire::decode_stamp_record("stamp:dep%3a1%20%25x:bob", rec, k));
    std::string moved = rec;
    moved.replace(moved.find("1700000000123"), 13, "1800000000123");
    CHECK_FALSE(wire::decode_stamp_record(suffix, moved, k));

    auto msg = wire::decode_stamp_message(wire::encode_stamp_message(s, k), k);
    REQUIRE(msg);
    CHECK(msg->user == "alice smith");
    CHECK(msg->deployment == "dep:1 %x");
    CHECK(msg->stamp == s.stamp);
    CHECK(msg->node == "cucm1.example.com");
    CHECK_FALSE(wire::decode_stamp_message(wire::encode_stamp_message(s, k), other->get()));

    // Without a node (a check that did not say which node answered) or without a key: version 1, unsigned,
    // as older peers write; it still retires tokens, and vouches for nothing (no node).
    wire::Stamp v1 = s;
    v1.node.clear();
    CHECK(wire::encode_stamp_record(v1, k) ==
          "1 0123456789abcdef abababababababababababababababab 1700000000123 c1/ff");
    CHECK(wire::encode_stamp_record(s, nullptr) ==
          "1 0123456789abcdef abababababababababababababababab 1700000000123 c1/ff");
    auto old = wire::decode_stamp_message(wire::encode_stamp_message(v1, k), k);
    REQUIRE(old);
    CHECK(old->node.empty());
    CHECK(old->user == "alice smith");
    const std::string m(64, 'a');
    const std::vector<std::string> bad2s = {"2 0123456789abcdef abababababababababababababababab 1 o",
                                            "2 0123456789abcdef abababababababababababababababab 1 o n",
                                            "2 0123456789abcdef abababababababababababababababab 1 o n " + m +
                                                " extra",
                                            "3 0123456789abcdef abababababababababababababababab 1 o n " + m};
    for (const auto& bad2 : bad2s)
        CHECK_FALSE(wire::decode_stamp_record("stamp:default:bob", bad2, k));

    for (const char* bad :
         {"", "1", "3 0123456789abcdef abababababababababababababababab 1 o",
          "1 0123456789abcdeX abababababababababababababababab 1 o", "1 0123456789abcdef abab 1 o",
          "1 0123456789abcdef ABABABABABABABABABABABABABABABAB 1 o",
          "1 0123456789abcdef abababababababababababababababab -1 o",
          "1 0123456789abcdef abababababababababababababababab 1 o extra"})
        CHECK_FALSE(wire::decode_stamp_record("stamp:default:bob", bad, k));
    const std::string good = "1 0123456789abcdef abababababababababababababababab 1 o";
    CHECK(wire::decode_stamp_record("stamp:default:bob", good, k));
    for (const char* bad_key : {"stamp:default:", "stamp:default", "stmp:default:bob", "stamp::bob",
                                "stamp:de%zzfault:bob", "stamp:de%4:bob"})
        CHECK_FALSE(wire::decode_stamp_record(bad_key, good, k));
    CHECK_FALSE(wire::decode_stamp_record(std::string("stamp:default:b\0b", 17), good, k));
    CHECK_FALSE(wire::decode_stamp_message(good, k)); // no key
    CHECK_FALSE(wire::decode_stamp_message(good + " stamp:default", k));
    CHECK(wire::decode_stamp_message(good + " stamp:default:bob", k));

    // The key id says which token key, and differs between keys.
    edge_c::EdgeTokenSealer k1(std::string(32, 'a')), k2(std::string(32, 'b'));
    CHECK(wire::stamp_key_id(k1).size() == 16);
    CHECK(wire::stamp_key_id(k1) == wire::stamp_key_id(edge_c::EdgeTokenSealer(std::string(32, 'a'))));
    CHECK(wire::stamp_key_id(k1) != wire::stamp_key_id(k2));
}

TEST_CASE("sign-in state shared by two peers through Redis", "[edge_c][cluster][redis]") {
    RedisServer redis;
    if (!redis.start()) {
        WARN("redis-server not available: skipped");
        return;
    }
    core::Loop loop;
    Peer a(loop, redis.port, "c1/aa"), b(loop, redis.port, "c2/bb");
    REQUIRE(run_until(loop, [&] { return a.s->up() && b.s->up(); }));

    SECTION("an assertion accepted by one peer is a replay on the other") {
        remember(a, "req-1");
        run_for(loop, 50);
        auto first = admit(loop, b, "as-1", "req-1"); // the request was A's, the answer reached B
        REQUIRE(first.done);
        CHECK_FALSE(first.why);
        auto replay = admit(loop, a, "as-1", "req-1");
        REQUIRE(replay.done);
        REQUIRE(replay.why);
        CHECK(*replay.why == SamlRefusal::Replay);
        CHECK_THAT(replay.detail, Catch::Contains("another edge-c peer"));
        // Another answer to the request B already took: gone from Redis, never in B's memory.
        auto again = admit(loop, b, "as-2", "req-1");
        REQUIRE(again.why);
        CHECK(*again.why == SamlRefusal::Unsolicited);
        // Unknown to both, and IdP-initiated.
        auto none = admit(loop, a, "as-3", "req-nobody-sent");
        REQUIRE(none.why);
        CHECK(*none.why == SamlRefusal::Unsolicited);
        auto idp = admit(loop, a, "as-4", "");
        REQUIRE(idp.why);
        CHECK(*idp.why == SamlRefusal::Unsolicited);
        // A request of another domain is not this domain's.
        remember(a, "req-2", "example.org");
        run_for(loop, 50);
        auto other = admit(loop, b, "as-5", "req-2", "example.com");
        REQUIRE(other.why);
        CHECK(*other.why == SamlRefusal::Unsolicited);
        CHECK(a.fallbacks.empty());
        CHECK(b.fallbacks.empty());
    }

    SECTION("a password stamp reaches the other peer, and a peer that connects later reads it back") {
        const uint64_t now = edge_c::wall_clock_ms();
        a.s->share_stamp("default", "alice", stamp_of(1), now, 60'000, "cucm1.example.com");
        REQUIRE(run_until(
            loop, [&] { return !b.heard.empty(); }, 3000));
        CHECK(b.heard[0].user == "alice");
        CHECK(b.heard[0].deployment == "default");
        CHECK(b.heard[0].stamp == stamp_of(1));
        CHECK(b.heard[0].seen_ms == now);
        CHECK(b.heard[0].node == "cucm1.example.com"); // what lets B's check rest on A's
        CHECK(a.heard.empty());                        // its own message is skipped

        Peer c(loop, redis.port, "c3/cc");
        REQUIRE(run_until(
            loop, [&] { return !c.heard.empty(); }, 3000));
        CHECK(c.heard[0].user == "alice");
        CHECK(c.heard[0].stamp == stamp_of(1));
        CHECK(c.heard[0].node == "cucm1.example.com");

        // A peer with another token key ignores the stamps: its tokens would all look stale.
        Peer d(loop, redis.port, "c4/dd", "ffffffffffffffff");
        REQUIRE(run_until(loop, [&] { return d.s->up(); }));
        run_for(loop, 200);
        b.s->share_stamp("default", "bob", stamp_of(2), now, 60'000, "cucm2.example.com");
        REQUIRE(run_until(
            loop, [&] { return c.heard.size() == 2; }, 3000));
        CHECK(c.heard[1].user == "bob");
        CHECK(d.heard.empty());
    }

    SECTION("limiter takes reach every other peer, batched, never the peer that took them") {
        for (int i = 0; i < 3; ++i)
            a.s->tally("auth_failures", "user:alice");
        a.s->tally("authorizations", "user:alice");
        b.s->tally("auth_failures", "user:bob smith");
        REQUIRE(run_until(loop, [&] {
            return b.tallied["auth_failures/user:alice"] == 3 &&
                   a.tallied["auth_failures/user:bob smith"] == 1;
        }));
        CHECK(b.tallied["authorizations/user:alice"] == 1);
        CHECK(b.tally_entries == 2); // one entry per (kind, key) of the batch, with its count
        CHECK(a.tallied.count("auth_failures/user:alice") == 0);
        CHECK(b.tallied.count("auth_failures/user:bob smith") == 0);
        CHECK(a.fallbacks.count("tally") == 0);
        // A key that cannot be shared stays local, counted.
        a.s->tally("auth_failures", "bad\nkey");
        a.s->tally("auth_failures", std::string("nul\0", 4));
        CHECK(a.fallbacks["tally"] == 2);
        // A hostile or broken message on the channel is ignored; a good one after it still arrives.
        edgepair::cluster::RedisSettings rs;
        rs.port = redis.port;
        edgepair::cluster::RedisConn writer(loop, "test writer", rs, {});
        writer.start();
        REQUIRE(run_until(loop, [&] { return writer.up(); }));
        CHECK(writer.command({"PUBLISH", "edgepair:test:tally", "t1 x\nk 0 key\n"}));
        CHECK(writer.command({"PUBLISH", "edgepair:test:tally", "t1 x\nauth_failures 2 user:carol\n"}));
        REQUIRE(run_until(loop, [&] { return b.tallied["auth_failures/user:carol"] == 2; }));
        CHECK(b.tally_entries == 3);
    }
}

TEST_CASE("sign-in state: Redis away, slow and back", "[edge_c][cluster][redis]") {
    RedisServer redis;
    if (!redis.start()) {
        WARN("redis-server not available: skipped");
        return;
    }
    core::Loop loop;
    Peer a(loop, redis.port, "c1/aa"), b(loop, redis.port, "c2/bb", "00112233aabbccdd", 200);
    REQUIRE(run_until(loop, [&] { return a.s->up() && b.s->up(); }));

    SECTION("down: every decision is local, nothing refused for it; pushed when Redis returns") {
        const uint16_t port = redis.port;
        redis.stop();
        REQUIRE(run_until(
            loop, [&] { return !a.s->up() && !b.s->up(); }, 5000));
        CHECK(a.downs == 1);

        remember(a, "req-down");
        auto ok = admit(loop, a, "as-down", "req-down");
        REQUIRE(ok.done);
        CHECK_FALSE(ok.why); // answered through the peer that sent the request: accepted without Redis
        auto replay_here = admit(loop, a, "as-down", "req-down");
        REQUIRE(replay_here.why);
        CHECK(*replay_here.why == SamlRefusal::Replay); // the local memory still works
        const uint64_t now = edge_c::wall_clock_ms();
        a.s->share_stamp("default", "carol", stamp_of(3), now, 60'000, "cucm1.example.com");
        CHECK(a.fallbacks["request"] == 1);
        CHECK(a.fallbacks["assertion"] == 2);
        CHECK(a.fallbacks["stamp"] == 1);
        CHECK(a.s->pending() == 2); // the accepted assertion and the stamp (the request was answered)

        // Back, empty: what A decided meanwhile reaches Redis and B.
        REQUIRE(redis.start(port));
        REQUIRE(run_until(
            loop, [&] { return a.s->up() && b.s->up(); }, 10000));
        REQUIRE(run_until(
            loop, [&] { return !b.heard.empty(); }, 3000));
        CHECK(b.heard[0].user == "carol");
        CHECK(a.ups == 2);
        CHECK(a.s->pending() == 0);
        run_for(loop, 100);
        auto replay_there = admit(loop, b, "as-down", "req-down");
        REQUIRE(replay_there.why);
        CHECK(*replay_there.why == SamlRefusal::Replay);
    }

    SECTION("slow: a check waits for its timeout, then the local memory decides") {
        remember(b, "req-slow");
        run_for(loop, 50);
        ::kill(redis.pid, SIGSTOP);
        const auto t0 = std::chrono::steady_clock::now();
        auto v = admit(loop, b, "as-slow", "req-slow");
        const auto waited =
            std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
                .count();
        ::kill(redis.pid, SIGCONT);
        REQUIRE(v.done);
        CHECK_FALSE(v.why); // B sent the request: its memory accepts the answer
        CHECK(waited >= 180);
        CHECK(waited < 900);
        CHECK(b.fallbacks["assertion"] == 1);
    }
}
