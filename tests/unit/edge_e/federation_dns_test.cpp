// FederationDns (the SRV side of edge-e's XMPP and SIP federation) against a real dnsmasq, and against a DNS
// server that never answers.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <string>
#include <vector>

#include "common/core/loop.h"
#include "edge-e/federation_dns.h"
#include "tests/unit/dnsmasq_fixture.h"

using namespace edgepair;
using edge_e::FederationDns;
using edge_e::FederationTarget;

namespace {

struct Lookup {
    std::vector<FederationTarget> targets;
    std::map<std::string, int> failures; // stage -> count
};

// One targets() call run to its answer (bounded: the test fails rather than hangs).
Lookup look_up(core::Loop& loop, FederationDns& dns, const std::string& domain) {
    Lookup out;
    bool done = false;
    dns.targets(
        domain, {{"_xmpp-server._tcp." + domain, "srv"}},
        [&](std::string_view stage) { ++out.failures[std::string(stage)]; },
        [&](std::vector<FederationTarget> t) {
            out.targets = std::move(t);
            done = true;
        });
    core::Timer guard(loop, [&] { loop.stop(); });
    guard.arm(8000);
    core::Timer ticker(loop, [&] {
        if (done)
            loop.stop();
        else
            ticker.arm(2);
    });
    ticker.arm(0);
    loop.run();
    CHECK(done);
    return out;
}

// The packets a silent DNS server has received so far (it reads them and never answers).
size_t drain(int fd) {
    size_t n = 0;
    char buf[512];
    while (::recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0)
        ++n;
    return n;
}

} // namespace

TEST_CASE("federation SRV look-ups: order, the fallback, a lone '.', and what the cache keeps",
          "[federation][dns]") {
    test::Dnsmasq dns;
    dns.extra = {"--log-queries", "--local=/partner.test/",
                 "--srv-host=_xmpp-server._tcp.partner.test,xmpp2.partner.test,5270,10,0",
                 "--srv-host=_xmpp-server._tcp.partner.test,xmpp1.partner.test,5269,0,0",
                 // No target: dnsmasq answers with the "." target, RFC 2782's "not offered here".
                 "--srv-host=_xmpp-server._tcp.closed.partner.test", "--local=/nosrv.test/"};
    if (!dns.start()) {
        WARN("dnsmasq not available or did not start; skipping");
        return;
    }
    core::Loop loop;
    FederationDns fed(loop, 5269);
    REQUIRE(fed.configure({"127.0.0.1:" + std::to_string(dns.port)}, config::Duration(500),
                          config::Duration(60000))
                .ok());

    auto a = look_up(loop, fed, "partner.test");
    REQUIRE(a.targets.size() == 2);
    CHECK(a.targets[0].host == "xmpp1.partner.test"); // priority 0 before 10
    CHECK(a.targets[0].port == 5269);
    CHECK(a.targets[1].host == "xmpp2.partner.test");
    CHECK(a.failures.empty());

    // No SRV record: the domain itself on the default port, the miss counted.
    auto b = look_up(loop, fed, "nosrv.test");
    REQUIRE(b.targets.size() == 1);
    CHECK(b.targets[0].host == "nosrv.test");
    CHECK(b.targets[0].port == 5269);
    CHECK(b.failures == std::map<std::string, int>{{"srv", 1}});

    // "." target: nothing to dial (not the domain's address), counted as "domain".
    auto c = look_up(loop, fed, "closed.partner.test");
    CHECK(c.targets.empty());
    CHECK(c.failures == std::map<std::string, int>{{"domain", 1}});

    // Inside the TTL every answer comes from the cache: no second query, and a cached miss is not counted
    // again.
    auto a2 = look_up(loop, fed, "partner.test");
    auto b2 = look_up(loop, fed, "nosrv.test");
    auto c2 = look_up(loop, fed, "closed.partner.test");
    CHECK(a2.targets.size() == 2);
    CHECK(b2.targets.size() == 1);
    CHECK(c2.targets.empty());
    CHECK(b2.failures.empty());
    CHECK(test::queries_logged(dns, "_xmpp-server._tcp.partner.test", "SRV") == 1);
    CHECK(test::queries_logged(dns, "_xmpp-server._tcp.nosrv.test", "SRV") == 1);
    CHECK(test::queries_logged(dns, "_xmpp-server._tcp.closed.partner.test", "SRV") == 1);
}

TEST_CASE("federation SRV look-ups: no answer falls back but is kept only briefly", "[federation][dns]") {
    int silent = ::socket(AF_INET, SOCK_DGRAM, 0);
    REQUIRE(silent >= 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    REQUIRE(::bind(silent, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
    REQUIRE(::getsockname(silent, reinterpret_cast<sockaddr*>(&sa), &len) == 0);

    core::Loop loop;
    FederationDns fed(loop, 5269);
    REQUIRE(fed.configure({"127.0.0.1:" + std::to_string(ntohs(sa.sin_port))}, config::Duration(200),
                          config::Duration(60000))
                .ok());
    auto a = look_up(loop, fed, "partner.test");
    REQUIRE(a.targets.size() == 1); // RFC 6120 3.2.1: no answer, so the domain's own address
    CHECK(a.targets[0].host == "partner.test");
    CHECK(a.failures == std::map<std::string, int>{{"srv", 1}});
    CHECK(drain(silent) >= 1);

    // Right after: from the cache (no query)...
    auto b = look_up(loop, fed, "partner.test");
    CHECK(b.targets.size() == 1);
    CHECK(drain(silent) == 0);
    // ...but not for the 60 s TTL a real "no such record" gets: a few seconds on, DNS is asked again.
    ::usleep(5200 * 1000);
    auto c = look_up(loop, fed, "partner.test");
    CHECK(c.targets.size() == 1);
    CHECK(drain(silent) >= 1);
    ::close(silent);
}
