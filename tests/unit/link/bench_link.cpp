// Microbenchmarks for the link over loopback, hidden by default: unit_link "[.bench]".
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>

#include "tests/unit/link/link_test_util.h"

using namespace edgepair;
using namespace edgepair::link;
using namespace edgepair::link::test;

namespace {

using Clock = std::chrono::steady_clock;

double secs_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct Answer204 : StreamHandler {
    void on_data(LinkStream& s, const char*, size_t n) override { s.consumed(n); }
    void on_close(LinkStream&, const core::Failure&) override {}
};

// Keeps `window` GETs in flight; each close opens the next until `total` or the deadline.
struct Churn : StreamHandler {
    LinkConn* link = nullptr;
    size_t opened = 0, done = 0, failed = 0, total = 0;
    Clock::time_point deadline;
    void open_one() {
        if (opened >= total || Clock::now() > deadline) return;
        if (link->open_stream(StreamKind::Http, {{":method", "GET"}, {":path", "/b"}, {":authority", "a"}},
                              this, true))
            ++opened;
    }
    void on_data(LinkStream& s, const char*, size_t n) override { s.consumed(n); }
    void on_close(LinkStream&, const core::Failure& f) override {
        ++done;
        if (f) ++failed;
        open_one();
    }
};

// Writes `limit` bytes into one stream, refilling on on_writable.
struct Pump : StreamHandler {
    LinkStream* s = nullptr;
    std::string chunk = std::string(64 * 1024, 'x');
    uint64_t sent = 0, limit = 0;
    void fill() {
        while (sent < limit) {
            bool more = s->write(chunk);
            sent += chunk.size();
            if (!more) return;
        }
        s->end();
    }
    void on_data(LinkStream& st, const char*, size_t n) override { st.consumed(n); }
    void on_writable(LinkStream&) override { fill(); }
    void on_close(LinkStream&, const core::Failure&) override {}
};

struct Drain : StreamHandler {
    uint64_t received = 0;
    void on_data(LinkStream& s, const char*, size_t n) override {
        received += n;
        s.consumed(n);
    }
    void on_end(LinkStream& s) override { s.end(); }
    void on_close(LinkStream&, const core::Failure&) override {}
};

} // namespace

TEST_CASE("bench: stream open/close rate over one link", "[.bench]") {
    Answer204 answer;
    Churn churn;
    LinkPair p;
    p.on_stream = [&](LinkStream* s, const Headers&) {
        s->set_handler(&answer);
        s->send_headers({{":status", "204"}}, true);
    };
    p.start();
    REQUIRE(p.wait_up());
    for (size_t window : {1, 16, 256}) {
        churn = Churn{};
        churn.link = p.e.get();
        churn.total = 200000;
        churn.deadline = Clock::now() + std::chrono::seconds(3);
        auto t0 = Clock::now();
        for (size_t i = 0; i < window; ++i)
            churn.open_one();
        run_until(
            p.loop,
            [&] {
                return churn.done == churn.opened &&
                       (churn.opened >= churn.total || Clock::now() > churn.deadline);
            },
            6000);
        double s = secs_since(t0);
        std::printf("link bench: %zu in flight: %zu streams in %.2f s = %.0f streams/s (%zu failed)\n",
                    window, churn.done, s, double(churn.done) / s, churn.failed);
        CHECK(churn.failed == 0);
    }
}

TEST_CASE("bench: bytes per second over one link", "[.bench]") {
    for (int nstreams : {1, 8}) {
        std::vector<Drain> drains(static_cast<size_t>(nstreams));
        size_t next_drain = 0;
        LinkPair p;
        p.on_stream = [&](LinkStream* s, const Headers&) {
            s->set_handler(&drains[next_drain++]);
            s->send_headers({{":status", "200"}});
        };
        p.start();
        REQUIRE(p.wait_up());
        std::vector<Pump> pumps(static_cast<size_t>(nstreams));
        uint64_t per_stream = (2048ull << 20) / uint64_t(nstreams); // 2 GiB total, cut short by the deadline
        auto t0 = Clock::now();
        for (auto& pu : pumps) {
            pu.limit = per_stream;
            pu.s = p.e->open_stream(StreamKind::Sip, {}, &pu);
            REQUIRE(pu.s);
            pu.fill();
        }
        auto total = [&] {
            uint64_t t = 0;
            for (auto& d : drains)
                t += d.received;
            return t;
        };
        run_until(
            p.loop, [&] { return total() >= per_stream * uint64_t(nstreams); }, 4000);
        double s = secs_since(t0);
        std::printf("link bench: %d stream(s), plain TCP loopback: %.1f MiB in %.2f s = %.0f MiB/s\n",
                    nstreams, double(total()) / 1048576.0, s, double(total()) / 1048576.0 / s);
        CHECK(total() > 0);
        p.e->close("bench done");
        run_until(
            p.loop, [&] { return p.e_closed && p.c_closed; }, 2000);
    }
}
