#include <catch2/catch.hpp>

#include "common/link/link_dialer.h"
#include "tests/unit/link/link_test_util.h"

using namespace edgepair;
using namespace edgepair::link;
using namespace edgepair::link::test;

TEST_CASE("dialer: redials after link loss and after a refused login, backing off", "[link][dialer]") {
    core::Loop loop;
    obs::Registry reg_e, reg_c;
    std::vector<std::unique_ptr<LinkConn>> served;
    bool accept_password = false;
    LinkOptions eo;
    eo.role = Role::Opener;
    eo.node_name = "expe1";
    eo.check_credentials = [&](std::string_view, std::string_view p) { return accept_password && p == "pw"; };
    auto lis = net::Listener::open(
        loop, *net::numeric_addr("127.0.0.1", 0), false, [&](int fd, const net::SockAddr&) {
            auto l = std::make_unique<LinkConn>(
                loop, std::make_unique<net::Connection>(loop, fd, nullptr, true), eo, reg_e);
            l->start();
            served.push_back(std::move(l));
        });
    REQUIRE(lis);
    LinkDialer::Config cfg;
    cfg.address = (*lis)->address();
    cfg.peer_name = "expe1.example.com";
    cfg.link.node_name = "expc1";
    cfg.link.username = "zone";
    cfg.link.password = "pw";
    cfg.backoff_min_ms = 20;
    cfg.backoff_max_ms = 100;
    int ups = 0, closes = 0;
    LinkCallbacks app;
    app.on_up = [&] { ++ups; };
    app.on_close = [&](std::string_view) { ++closes; };
    LinkDialer d(loop, cfg, reg_c, app);
    d.start();
    // Refused twice or more while the password is rejected.
    REQUIRE(run_until(loop, [&] { return closes >= 2; }));
    CHECK(ups == 0);
    CHECK(d.attempts() >= 2);
    CHECK(d.last_error().find("auth failed: bad credentials") != std::string::npos);
    accept_password = true;
    REQUIRE(run_until(loop, [&] { return d.up(); }));
    CHECK(d.attempts() == 0); // reset once up
    // Lose the link: it comes back by itself.
    int closes_before = closes;
    d.link()->connection().abort("cable pulled");
    REQUIRE(run_until(loop, [&] { return closes > closes_before; }));
    REQUIRE(run_until(loop, [&] { return d.up(); }));
    CHECK(ups == 2);
    CHECK(reg_c.counter_value("edgepair_link_dials_total") >= 4);
    d.stop();
    REQUIRE(run_until(loop, [&] { return d.link() == nullptr; }));
}

TEST_CASE("dialer: a peer named by host is looked up again before every dial", "[link][dialer]") {
    core::Loop loop;
    obs::Registry reg_e, reg_c;
    std::vector<std::unique_ptr<LinkConn>> served;
    LinkOptions eo;
    eo.role = Role::Opener;
    eo.node_name = "expe1";
    eo.check_credentials = [](std::string_view, std::string_view p) { return p == "pw"; };
    auto lis = net::Listener::open(
        loop, *net::numeric_addr("127.0.0.1", 0), false, [&](int fd, const net::SockAddr&) {
            auto l = std::make_unique<LinkConn>(
                loop, std::make_unique<net::Connection>(loop, fd, nullptr, true), eo, reg_e);
            l->start();
            served.push_back(std::move(l));
        });
    REQUIRE(lis);
    // No DNS server answers (a closed port): only the hosts file resolves, and it knows "localhost".
    net::ResolverOptions ro;
    ro.servers = {"127.0.0.1:1"};
    ro.timeout_ms = 200;
    ro.tries = 1;
    auto resolver = net::Resolver::create(loop, ro);
    REQUIRE(resolver);
    LinkDialer::Config cfg;
    cfg.host = "nonexistent.invalid";
    cfg.port = (*lis)->address().port();
    cfg.resolver = resolver->get();
    cfg.peer_name = "expe1.example.com";
    cfg.link.node_name = "expc1";
    cfg.link.username = "zone";
    cfg.link.password = "pw";
    cfg.backoff_min_ms = 20;
    cfg.backoff_max_ms = 50;
    LinkDialer bad(loop, cfg, reg_c, {});
    bad.start();
    REQUIRE(run_until(loop, [&] { return bad.attempts() >= 2; }));
    CHECK(bad.last_error().find("cannot resolve nonexistent.invalid") != std::string::npos);
    CHECK_FALSE(bad.up());
    bad.stop();

    cfg.host = "localhost";
    LinkDialer d(loop, cfg, reg_c, {});
    d.start();
    REQUIRE(run_until(loop, [&] { return d.up(); }));
    CHECK(d.address().ip() == "127.0.0.1");
    // A redial after a loss takes the look-up path again and comes back up (that the answer is used anew is
    // test_cluster_peers.py's: the name moves to another address there).
    auto dials = reg_c.counter_value("edgepair_link_dials_total");
    d.link()->connection().abort("cable pulled");
    REQUIRE(
        run_until(loop, [&] { return d.up() && reg_c.counter_value("edgepair_link_dials_total") > dials; }));
    d.stop();
    REQUIRE(run_until(loop, [&] { return d.link() == nullptr; }));
}
