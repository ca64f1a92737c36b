// SharedDoc (common/cluster/shared_doc.h) against a real redis-server: peers in one process, each with its
// own document, converging on the newest version.
#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include "common/cluster/redis_conn.h"
#include "common/cluster/shared_doc.h"
#include "tests/unit/redis_fixture.h"

using namespace edgepair;
using cluster::SharedDoc;
using cluster::doc_wire::Doc;
using test::RedisServer;
using test::run_for;
using test::run_until;

namespace {

// One peer: the document it holds, and what it was handed.
struct Peer {
    Doc mine;
    std::vector<Doc> adopted;
    std::unique_ptr<SharedDoc> s;

    Peer(core::Loop& loop, uint16_t port, std::string origin, Doc start = {},
         std::string key = std::string(32, 'k'))
        : mine(std::move(start)) {
        mine.origin = origin;
        SharedDoc::Options o;
        o.redis.port = port;
        o.redis.timeout_ms = 1000;
        o.prefix = "edgepair:test:";
        o.origin = std::move(origin);
        o.key = "doc:state";
        o.channel = "doc";
        o.what = "test document";
        o.mac_key = std::move(key);
        SharedDoc::Hooks h;
        h.local = [this] { return mine; };
        // The owner applies what it is handed (here: takes it as its own).
        h.adopt = [this](const Doc& d) {
            adopted.push_back(d);
            mine = d;
        };
        s = std::make_unique<SharedDoc>(loop, std::move(o), std::move(h));
        s->start();
    }
};

} // namespace

TEST_CASE("shared document: a change on one peer reaches the others; the newest wins after a reconnect",
          "[cluster][redis]") {
    RedisServer redis;
    if (!redis.start()) {
        WARN("redis-server not available: skipped");
        return;
    }
    core::Loop loop;
    Peer a(loop, redis.port, "c1/aa"), b(loop, redis.port, "c2/bb");
    REQUIRE(run_until(loop, [&] { return a.s->up() && b.s->up(); }));
    run_for(loop, 100);
    CHECK(a.adopted.empty()); // nothing to share yet: version 0 is never pushed
    CHECK(b.adopted.empty());

    a.mine.version_ms = 1000;
    a.mine.text = "rules v1";
    a.s->share();
    REQUIRE(run_until(loop, [&] { return !b.adopted.empty(); }));
    CHECK(b.adopted.back().text == "rules v1");
    CHECK(b.adopted.back().origin == "c1/aa");
    CHECK(a.adopted.empty()); // its own message is not handed back

    // An older version announced later is ignored.
    b.mine = Doc{2000, "c2/bb", "rules v2", {}};
    b.s->share();
    REQUIRE(run_until(loop, [&] { return a.adopted.size() == 1; }));
    Doc stale{1500, "c3/cc", "older", {}};
    SharedDoc::Options o;
    o.redis.port = redis.port;
    o.prefix = "edgepair:test:";
    o.origin = "c3/cc";
    o.key = "doc:state";
    o.channel = "doc";
    o.what = "test document";
    o.mac_key = std::string(32, 'k');
    SharedDoc::Hooks h;
    h.local = [&] { return stale; };
    SharedDoc c(loop, o, h);
    c.start();
    REQUIRE(run_until(loop, [&] { return c.up(); }));
    c.share();
    run_for(loop, 200);
    CHECK(a.adopted.size() == 1);
    CHECK(a.mine.text == "rules v2");

    SECTION("a peer that changed while Redis was away pushes it when Redis returns (empty)") {
        const uint16_t port = redis.port;
        redis.stop();
        REQUIRE(run_until(
            loop, [&] { return !a.s->up() && !b.s->up(); }, 5000));
        a.mine = Doc{3000, "c1/aa", "rules v3, made during the outage", {}};
        a.s->share(); // kept: Redis is away
        REQUIRE(redis.start(port));
        REQUIRE(run_until(
            loop, [&] { return b.mine.text == "rules v3, made during the outage"; }, 10'000));
    }

    SECTION("a peer with another key, or a writer with none, is ignored; Redis gets the signed one back") {
        Peer x(loop, redis.port, "c9/xx", Doc{9000, "c9/xx", "planted by another key", {}},
               std::string(32, 'x'));
        REQUIRE(run_until(loop, [&] { return x.s->up(); }));
        x.s->share();
        run_for(loop, 300);
        CHECK(a.mine.text == "rules v2");
        CHECK(b.mine.text == "rules v2");
        // Written straight into Redis without any key: the next peer to connect does not take it, and puts
        // its own signed version back.
        cluster::RedisSettings rs;
        rs.port = redis.port;
        cluster::RedisConn writer(loop, "test writer", rs, {});
        writer.start();
        REQUIRE(run_until(loop, [&] { return writer.up(); }));
        CHECK(writer.command(
            {"SET", "edgepair:test:doc:state", "1 99999 c7/zz " + std::string(64, '0') + "\nplanted"}));
        Peer d(loop, redis.port, "c4/dd", Doc{2500, "c4/dd", "signed, newest honest one", {}});
        REQUIRE(run_until(loop, [&] { return a.mine.text == "signed, newest honest one"; }));
        CHECK(d.adopted.empty());
    }

    SECTION("a peer that connects later takes what Redis holds") {
        Peer d(loop, redis.port, "c4/dd");
        REQUIRE(run_until(loop, [&] { return !d.adopted.empty(); }));
        CHECK(d.mine.text == "rules v2");
        CHECK(d.mine.version_ms == 2000);
    }
}
