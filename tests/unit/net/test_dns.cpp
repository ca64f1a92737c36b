// net::Resolver against a real dnsmasq child process on loopback.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <fstream>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include "common/core/loop.h"
#include "common/net/dns.h"
#include "tests/unit/dnsmasq_fixture.h"

using namespace edgepair;
using edgepair::test::Dnsmasq;
using edgepair::test::queries_logged;

namespace {

// Runs the loop until `done` or the deadline; every test is bounded.
void run_until(core::Loop& loop, const bool& done, uint64_t limit_ms = 8000) {
    core::Timer guard(loop, [&] { loop.stop(); });
    guard.arm(limit_ms);
    core::Timer ticker(loop, [&] {
        if (done)
            loop.stop();
        else
            ticker.arm(5);
    });
    ticker.arm(1);
    loop.run();
}

std::vector<std::string> ips(const std::vector<net::SockAddr>& v) {
    std::vector<std::string> out;
    for (auto& a : v)
        out.push_back(a.ip());
    return out;
}

} // namespace

TEST_CASE("numeric hosts are answered without DNS, never synchronously", "[dns]") {
    core::Loop loop;
    net::ResolverOptions o;
    o.servers = {"127.0.0.1:9"}; // would fail if asked
    auto r = net::Resolver::create(loop, o);
    REQUIRE(r.ok());
    bool done = false, sync = true;
    std::vector<std::string> got;
    (*r)->resolve("127.0.0.5", [&](Result<std::vector<net::SockAddr>> res) {
        REQUIRE(res.ok());
        got = ips(*res);
        REQUIRE(res->at(0).port() == 0);
        done = true;
    });
    sync = done;
    bool done6 = false;
    (*r)->resolve("[::1]", [&](Result<std::vector<net::SockAddr>> res) {
        REQUIRE(res.ok());
        CHECK(res->at(0).family() == AF_INET6);
        done6 = true;
    });
    CHECK_FALSE(sync);
    run_until(loop, done6);
    CHECK(done);
    CHECK(got == std::vector<std::string>{"127.0.0.5"});
}

TEST_CASE("timeout against a server that never answers", "[dns]") {
    // Bound but silent: queries land in its receive queue and nobody replies.
    int silent = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    REQUIRE(::bind(silent, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    ::getsockname(silent, reinterpret_cast<sockaddr*>(&a), &len);
    std::string server = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));

    core::Loop loop;
    net::ResolverOptions o;
    o.servers = {server};
    o.timeout_ms = 200;
    o.tries = 1;
    o.use_hosts_file = false;
    auto r = net::Resolver::create(loop, o);
    REQUIRE(r.ok());
    bool done = false;
    std::string err;
    auto t0 = std::chrono::steady_clock::now();
    (*r)->resolve("cucm1.example.com", [&](Result<std::vector<net::SockAddr>> res) {
        REQUIRE_FALSE(res.ok());
        err = res.error().message;
        done = true;
    });
    CHECK((*r)->in_flight() == 1);
    run_until(loop, done, 5000);
    auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
    REQUIRE(done);
    CHECK(err.find("cucm1.example.com") != std::string::npos);
    CHECK(err.find("Timeout") != std::string::npos);
    CHECK(ms < 3000);
    CHECK((*r)->in_flight() == 0);

    // Destroying the resolver with queries in flight completes them with an error, synchronously.
    bool a_done = false, s_done = false;
    std::string a_err, s_err;
    (*r)->resolve("cucm2.example.com", [&](Result<std::vector<net::SockAddr>> res) {
        a_done = true;
        if (!res.ok()) a_err = res.error().message;
    });
    (*r)->resolve_srv("_collab-edge._tls.example.com", [&](Result<std::vector<net::SrvRecord>> res) {
        s_done = true;
        if (!res.ok()) s_err = res.error().message;
    });
    r->reset();
    CHECK(a_done);
    CHECK(s_done);
    CHECK(a_err.find("resolver destroyed") != std::string::npos);
    CHECK(s_err.find("resolver destroyed") != std::string::npos);
    ::close(silent);
}

TEST_CASE("resolver against dnsmasq: A, SRV ordering, NXDOMAIN", "[dns]") {
    Dnsmasq dns;
    if (!dns.start()) {
        WARN("dnsmasq not available or did not start; skipping");
        return;
    }
    // UDP first (the normal path), then TCP (ARES_FLAG_USEVC), both against the same server.
    for (bool tcp : {false, true}) {
        SECTION(tcp ? "tcp" : "udp") {
            core::Loop loop;
            net::ResolverOptions o;
            o.servers = {"127.0.0.1:" + std::to_string(dns.port)};
            o.use_hosts_file = false;
            o.use_tcp = tcp;
            o.timeout_ms = 500;
            o.tries = 3;
            auto r = net::Resolver::create(loop, o);
            REQUIRE(r.ok());

            bool a_done = false;
            Result<std::vector<net::SockAddr>> a_res = make_error("unset");
            (*r)->resolve("cucm1.example.com", [&](Result<std::vector<net::SockAddr>> res) {
                a_res = std::move(res);
                a_done = true;
            });
            bool d_done = false;
            Result<std::vector<net::SockAddr>> d_res = make_error("unset");
            (*r)->resolve("dual.example.com", [&](Result<std::vector<net::SockAddr>> res) {
                d_res = std::move(res);
                d_done = true;
            });
            bool nx_done = false;
            std::string nx_err;
            (*r)->resolve("nosuchhost.example.com", [&](Result<std::vector<net::SockAddr>> res) {
                REQUIRE_FALSE(res.ok());
                nx_err = res.error().message;
                nx_done = true;
            });
            bool srv_done = false;
            Result<std::vector<net::SrvRecord>> srv_res = make_error("unset");
            (*r)->resolve_srv("_collab-edge._tls.example.com", [&](Result<std::vector<net::SrvRecord>> res) {
                srv_res = std::move(res);
                srv_done = true;
            });
            bool nosrv_done = false;
            std::string nosrv_err;
            (*r)->resolve_srv("_collab-edge._tls.nowhere.example.com",
                              [&](Result<std::vector<net::SrvRecord>> res) {
                                  REQUIRE_FALSE(res.ok());
                                  nosrv_err = res.error().message;
                                  nosrv_done = true;
                              });
            bool all = false;
            core::Timer watcher(loop, [&] {
                all = a_done && d_done && nx_done && srv_done && nosrv_done;
                if (all)
                    loop.stop();
                else
                    watcher.arm(5);
            });
            watcher.arm(1);
            core::Timer guard(loop, [&] { loop.stop(); });
            guard.arm(8000);
            loop.run();
            REQUIRE(all);

            REQUIRE(a_res.ok());
            CHECK(ips(*a_res) == std::vector<std::string>{"127.0.1.1"});
            REQUIRE(d_res.ok());
            CHECK(ips(*d_res) == std::vector<std::string>{"127.0.1.9", "::1"}); // IPv4 first

            CHECK(nx_err.find("nosuchhost.example.com") != std::string::npos);
            CHECK(nx_err.find("Domain name not found") != std::string::npos);
            CHECK(nosrv_err.find("Domain name not found") != std::string::npos);

            REQUIRE(srv_res.ok());
            REQUIRE(srv_res->size() == 3);
            // Priority ascending, then weight descending.
            CHECK((*srv_res)[0].target == "expe2.example.com");
            CHECK((*srv_res)[0].priority == 5);
            CHECK((*srv_res)[1].target == "expe3.example.com");
            CHECK((*srv_res)[1].weight == 50);
            CHECK((*srv_res)[2].target == "expe1.example.com");
            CHECK((*srv_res)[2].port == 8443);
            CHECK((*r)->in_flight() == 0);
        }
    }
}

TEST_CASE("a callback may destroy the resolver", "[dns]") {
    Dnsmasq dns;
    if (!dns.start()) {
        WARN("dnsmasq not available or did not start; skipping");
        return;
    }
    core::Loop loop;
    net::ResolverOptions o;
    o.servers = {"127.0.0.1:" + std::to_string(dns.port)};
    o.use_hosts_file = false;
    o.use_tcp = true;
    auto r = net::Resolver::create(loop, o);
    REQUIRE(r.ok());
    std::unique_ptr<net::Resolver> res = std::move(*r);
    int calls = 0;
    std::string second_err;
    bool done = false;
    res->resolve("cucm1.example.com", [&](Result<std::vector<net::SockAddr>> v) {
        ++calls;
        CHECK(v.ok());
        res.reset(); // the other query is still in flight
        done = true;
    });
    res->resolve("_never.example.com", [&](Result<std::vector<net::SockAddr>> v) {
        ++calls;
        if (!v.ok()) second_err = v.error().message;
    });
    run_until(loop, done);
    REQUIRE(done);
    CHECK(calls == 2);
    CHECK_FALSE(second_err.empty());
}

TEST_CASE("RFC 2782 weighted order keeps priorities and every record", "[dns]") {
    std::vector<net::SrvRecord> in = {
        {"a", 1, 10, 0}, {"b", 1, 10, 100}, {"c", 1, 5, 1}, {"d", 1, 20, 0}, {"e", 1, 10, 0}};
    std::mt19937 rng(42);
    int b_first = 0;
    for (int i = 0; i < 200; ++i) {
        auto out = net::srv_weighted_order(in, rng);
        REQUIRE(out.size() == 5);
        CHECK(out[0].target == "c");
        CHECK(out[4].target == "d");
        if (out[1].target == "b") ++b_first;
    }
    CHECK(b_first > 180); // weight 100 against two weight-0 records
}

TEST_CASE("a timeout callback may destroy the resolver", "[dns]") {
    int silent = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    REQUIRE(::bind(silent, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    ::getsockname(silent, reinterpret_cast<sockaddr*>(&a), &len);
    core::Loop loop;
    net::ResolverOptions o;
    o.servers = {"127.0.0.1:" + std::to_string(ntohs(a.sin_port))};
    o.timeout_ms = 100;
    o.tries = 1;
    o.use_hosts_file = false;
    auto r = net::Resolver::create(loop, o);
    REQUIRE(r.ok());
    std::unique_ptr<net::Resolver> res = std::move(*r);
    int calls = 0;
    bool done = false;
    for (auto name : {"a.example.com", "b.example.com"}) {
        res->resolve(name, [&](Result<std::vector<net::SockAddr>> v) {
            ++calls;
            CHECK_FALSE(v.ok());
            res.reset();
            done = true;
        });
    }
    run_until(loop, done, 5000);
    CHECK(done);
    CHECK(calls == 2);
    ::close(silent);
}

namespace {
Result<std::vector<net::SockAddr>> resolve_once(core::Loop& loop, net::Resolver& r, const std::string& host) {
    bool done = false;
    Result<std::vector<net::SockAddr>> out = make_error("unset");
    r.resolve(host, [&](Result<std::vector<net::SockAddr>> res) {
        out = std::move(res);
        done = true;
    });
    run_until(loop, done);
    return out;
}
} // namespace

TEST_CASE("addresses are kept for their TTL, at most max_cache_ttl_s, and never inline", "[dns]") {
    Dnsmasq dns;
    dns.extra = {"--local-ttl=2", "--log-queries"};
    if (!dns.start()) {
        WARN("dnsmasq not available or did not start; skipping");
        return;
    }
    core::Loop loop;
    net::ResolverOptions o;
    o.servers = {"127.0.0.1:" + std::to_string(dns.port)};
    o.use_hosts_file = false;
    o.timeout_ms = 500;
    auto r = net::Resolver::create(loop, o);
    REQUIRE(r.ok());
    auto first = resolve_once(loop, **r, "cucm1.example.com");
    REQUIRE(first.ok());
    CHECK(ips(*first) == std::vector<std::string>{"127.0.1.1"});
    CHECK((*r)->cached() == 1);
    // Within the TTL: answered from the cache (dnsmasq saw one query), and still not synchronously.
    bool inline_answer = false;
    bool called = false;
    (*r)->resolve("CUCM1.example.com", [&](Result<std::vector<net::SockAddr>> res) {
        called = true;
        REQUIRE(res.ok());
        CHECK(ips(*res) == std::vector<std::string>{"127.0.1.1"});
    });
    inline_answer = called;
    CHECK_FALSE(inline_answer);
    run_until(loop, called);
    CHECK(called);
    CHECK(queries_logged(dns, "cucm1.example.com") == 1);
    // Past the record's TTL (2 s): asked again.
    std::this_thread::sleep_for(std::chrono::milliseconds(2200));
    bool tick = false;
    core::Timer t(loop, [&] { tick = true; }); // lets the loop's cached clock move on
    t.arm(1);
    run_until(loop, tick);
    REQUIRE(resolve_once(loop, **r, "cucm1.example.com").ok());
    CHECK(queries_logged(dns, "cucm1.example.com") == 2);
    // Failures are not kept.
    CHECK_FALSE(resolve_once(loop, **r, "missing.example.com").ok());
    CHECK((*r)->cached() == 1);

    // max_cache_ttl_s 0: nothing is kept.
    o.max_cache_ttl_s = 0;
    auto nocache = net::Resolver::create(loop, o);
    REQUIRE(nocache.ok());
    REQUIRE(resolve_once(loop, **nocache, "expe1.example.com").ok());
    REQUIRE(resolve_once(loop, **nocache, "expe1.example.com").ok());
    CHECK((*nocache)->cached() == 0);
    CHECK(queries_logged(dns, "expe1.example.com") == 2);
}
