#include "common/media/udp.h"

#include <cerrno>
#include <cstring>
#include <netinet/in.h>
#include <sys/socket.h>
#include <vector>

#include <catch2/catch.hpp>

using namespace edgepair;
using namespace edgepair::media;

namespace {

net::SockAddr loopback(uint16_t port = 0) {
    auto a = net::numeric_addr("127.0.0.1", port);
    REQUIRE(a);
    return *a;
}

// A run of n free ports starting at an even port, found by binding them: the allocator tests need ports
// that nothing else on the box holds. (Another process may still take one later; the window is small.)
uint16_t free_block(unsigned n) {
    for (uint32_t base = 42000; base + n < 60000; base += 64) {
        std::vector<UdpSocket> held;
        for (unsigned i = 0; i < n; ++i) {
            auto s = UdpSocket::bind(loopback(uint16_t(base + i)));
            if (!s) break;
            held.push_back(std::move(*s));
        }
        if (held.size() == n) return uint16_t(base);
    }
    FAIL("no free block of UDP ports");
    return 0;
}

} // namespace

TEST_CASE("UDP: bind, send, receive", "[media][udp]") {
    auto a = UdpSocket::bind(loopback());
    auto b = UdpSocket::bind(loopback());
    REQUIRE(a);
    REQUIRE(b);
    CHECK(a->valid());
    CHECK(a->local_port() != 0);
    CHECK(a->local_port() != b->local_port());

    uint8_t buf[64];
    net::SockAddr from;
    errno = 0;
    CHECK(b->recv_from(buf, sizeof buf, from) == -1);
    CHECK((errno == EAGAIN || errno == EWOULDBLOCK));

    const uint8_t msg[] = {0x80, 0x00, 0x12, 0x34, 'h', 'i'};
    REQUIRE(a->send_to(msg, sizeof msg, loopback(b->local_port())));
    ssize_t n = -1;
    for (int i = 0; i < 1000 && n < 0; ++i)
        n = b->recv_from(buf, sizeof buf, from);
    REQUIRE(n == ssize_t(sizeof msg));
    CHECK(std::memcmp(buf, msg, sizeof msg) == 0);
    CHECK(from.port() == a->local_port());
    CHECK(from.ip() == "127.0.0.1");

    // A datagram longer than the buffer: the full length comes back so the caller can drop it.
    std::vector<uint8_t> big(3000, 0xab);
    REQUIRE(a->send_to(big.data(), big.size(), loopback(b->local_port())));
    n = -1;
    for (int i = 0; i < 1000 && n < 0; ++i)
        n = b->recv_from(buf, sizeof buf, from);
    CHECK(n == 3000);
    CHECK(buf[63] == 0xab);
    // The rest of it is gone, not returned by the next call.
    errno = 0;
    CHECK(b->recv_from(buf, sizeof buf, from) == -1);
    CHECK(errno == EAGAIN);
}

TEST_CASE("UDP: datagrams the kernel drops for a full receive buffer are counted", "[media][udp]") {
    auto a = UdpSocket::bind(loopback());
    auto b = UdpSocket::bind(loopback());
    REQUIRE(a);
    REQUIRE(b);
    int small = 1; // the kernel raises it to its minimum (a few KB)
    REQUIRE(::setsockopt(b->fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small) == 0);
    CHECK(b->take_kernel_drops() == 0);

    // Nobody reads b while 200 datagrams of 1,000 bytes arrive: most of them cannot be queued.
    std::vector<uint8_t> pkt(1000, 0x80);
    for (int i = 0; i < 200; ++i)
        a->send_to(pkt.data(), pkt.size(), loopback(b->local_port()));
    uint8_t buf[2048];
    net::SockAddr from;
    int got = 0;
    while (b->recv_from(buf, sizeof buf, from) >= 0)
        ++got;
    REQUIRE(got > 0);
    REQUIRE(got < 200);
    // The kernel stamps its drop count on the next datagram it queues: one more arrives after the burst.
    a->send_to(pkt.data(), pkt.size(), loopback(b->local_port()));
    REQUIRE(b->recv_from(buf, sizeof buf, from) == 1000);
    // Every datagram sent was either received or counted as dropped (loopback loses nothing else).
    CHECK(b->take_kernel_drops() == uint32_t(200 - got));
    CHECK(b->take_kernel_drops() == 0); // taken once

    // A moved socket keeps its count.
    for (int i = 0; i < 200; ++i)
        a->send_to(pkt.data(), pkt.size(), loopback(b->local_port()));
    UdpSocket moved = std::move(*b);
    got = 0;
    while (moved.recv_from(buf, sizeof buf, from) >= 0)
        ++got;
    a->send_to(pkt.data(), pkt.size(), loopback(moved.local_port()));
    REQUIRE(moved.recv_from(buf, sizeof buf, from) == 1000);
    CHECK(moved.take_kernel_drops() == uint32_t(200 - got));
}

TEST_CASE("UDP: IPv6 loopback", "[media][udp]") {
    auto v6 = net::numeric_addr("::1", 0);
    REQUIRE(v6);
    auto a = UdpSocket::bind(*v6);
    if (!a) {
        WARN("no IPv6 loopback here: " << a.error().message);
        return;
    }
    auto b = UdpSocket::bind(*v6);
    REQUIRE(b);
    auto to = net::numeric_addr("::1", b->local_port());
    REQUIRE(to);
    const uint8_t msg[] = {1, 2, 3};
    REQUIRE(a->send_to(msg, sizeof msg, *to));
    uint8_t buf[16];
    net::SockAddr from;
    ssize_t n = -1;
    for (int i = 0; i < 1000 && n < 0; ++i)
        n = b->recv_from(buf, sizeof buf, from);
    CHECK(n == 3);
    CHECK(from.family() == AF_INET6);
    CHECK(from.str() == "[::1]:" + std::to_string(a->local_port()));
}

TEST_CASE("UDP: a port in use is an error, moves leave one owner", "[media][udp]") {
    auto a = UdpSocket::bind(loopback());
    REQUIRE(a);
    auto again = UdpSocket::bind(loopback(a->local_port()));
    REQUIRE_FALSE(again);
    CHECK_THAT(again.error().message, Catch::Matchers::Contains(std::to_string(a->local_port())));

    UdpSocket moved = std::move(*a);
    CHECK_FALSE(a->valid());
    CHECK(moved.valid());
    UdpSocket other;
    other = std::move(moved);
    CHECK_FALSE(moved.valid());
    CHECK(other.valid());
    uint16_t port = other.local_port();
    other = UdpSocket();
    // Closed on assignment: the port is free again.
    CHECK(UdpSocket::bind(loopback(port)));
}

TEST_CASE("Port pairs: even RTP port, RTCP above it, round robin", "[media][udp]") {
    uint16_t lo = free_block(8);
    PortPairAllocator alloc(loopback(), lo, uint16_t(lo + 7)); // four pairs
    CHECK(alloc.lo() == lo);
    CHECK(alloc.hi() == lo + 7);

    std::vector<PortPairAllocator::Pair> pairs;
    for (int i = 0; i < 4; ++i) {
        auto p = alloc.allocate();
        REQUIRE(p);
        CHECK(p->port == lo + 2 * i);
        CHECK(p->port % 2 == 0);
        CHECK(p->rtp.local_port() == p->port);
        CHECK(p->rtcp.local_port() == p->port + 1);
        pairs.push_back(std::move(*p));
    }
    SECTION("exhausted") {
        auto none = alloc.allocate();
        REQUIRE_FALSE(none);
        CHECK_THAT(none.error().message, Catch::Matchers::Contains("no free"));
    }
    SECTION("wraps around to a released pair") {
        pairs.erase(pairs.begin() + 1); // lo+2 is free again
        auto p = alloc.allocate();
        REQUIRE(p);
        CHECK(p->port == lo + 2);
    }
}

TEST_CASE("Port pairs: a just-released pair is not reused at once", "[media][udp]") {
    uint16_t lo = free_block(8);
    PortPairAllocator alloc(loopback(), lo, uint16_t(lo + 7));
    uint16_t first;
    {
        auto p = alloc.allocate();
        REQUIRE(p);
        first = p->port;
    } // released
    auto q = alloc.allocate();
    REQUIRE(q);
    CHECK(q->port != first);
    CHECK(q->port == first + 2);
}

TEST_CASE("Port pairs: ports held by someone else are skipped", "[media][udp]") {
    uint16_t lo = free_block(8);
    auto held_rtp = UdpSocket::bind(loopback(uint16_t(lo + 2)));  // pair 2's RTP port
    auto held_rtcp = UdpSocket::bind(loopback(uint16_t(lo + 5))); // pair 3's RTCP port
    REQUIRE(held_rtp);
    REQUIRE(held_rtcp);
    PortPairAllocator alloc(loopback(), lo, uint16_t(lo + 7));
    auto a = alloc.allocate();
    auto b = alloc.allocate();
    REQUIRE(a);
    REQUIRE(b);
    CHECK(a->port == lo);
    CHECK(b->port == lo + 6);
    auto c = alloc.allocate();
    CHECK_FALSE(c);
    // The RTP socket of the half-free pair was not kept open.
    CHECK(UdpSocket::bind(loopback(uint16_t(lo + 4))));
}

TEST_CASE("Port pairs: odd bounds and ranges too small for a pair", "[media][udp]") {
    uint16_t lo = free_block(8);
    PortPairAllocator odd(loopback(), uint16_t(lo + 1), uint16_t(lo + 6)); // pairs lo+2, lo+4 only
    auto a = odd.allocate();
    auto b = odd.allocate();
    REQUIRE(a);
    REQUIRE(b);
    CHECK(a->port == lo + 2);
    CHECK(b->port == lo + 4);
    CHECK_FALSE(odd.allocate());

    PortPairAllocator one(loopback(), lo, lo);
    CHECK_FALSE(one.allocate());
    PortPairAllocator none(loopback(), uint16_t(lo + 1), uint16_t(lo + 2));
    CHECK_FALSE(none.allocate());
    PortPairAllocator reversed(loopback(), uint16_t(lo + 4), lo);
    CHECK_FALSE(reversed.allocate());
}

TEST_CASE("Port pairs: the top of the port space", "[media][udp]") {
    // 65534/65535 may be taken on a busy box; the point is that nothing overflows.
    PortPairAllocator top(loopback(), 65533, 65535);
    for (int i = 0; i < 3; ++i) {
        auto p = top.allocate();
        if (p) {
            CHECK(p->port == 65534);
            CHECK(p->rtcp.local_port() == 65535);
        }
    }
}

TEST_CASE("parse_port_range", "[media][udp]") {
    auto r = parse_port_range("36002-59999");
    REQUIRE(r);
    CHECK(r->first == 36002);
    CHECK(r->second == 59999);
    auto t = parse_port_range("36000-36011");
    REQUIRE(t);
    CHECK(t->second == 36011);
    auto same = parse_port_range("5000-5000");
    REQUIRE(same);
    CHECK(same->first == 5000);
    CHECK(parse_port_range("1-65535"));

    for (const char* bad : {"", "-", "36002", "36002-", "-59999", "59999-36002", "0-100", "100-0", "1-65536",
                            "a-b", "1-2-3", " 1-2", "1 -2", "1-2 ", "+1-2", "99999999999-1", "1-0x10"}) {
        CAPTURE(bad);
        CHECK_FALSE(parse_port_range(bad));
    }
}

TEST_CASE("UDP: a batch read returns what is waiting, with sources, lengths and truncation", "[media][udp]") {
    auto a = UdpSocket::bind(loopback());
    auto c = UdpSocket::bind(loopback());
    auto b = UdpSocket::bind(loopback());
    REQUIRE(a);
    REQUIRE(b);
    REQUIRE(c);
    RecvBatch batch(8, 64, 4);
    errno = 0;
    CHECK(b->recv_batch(batch) == -1);
    CHECK(errno == EAGAIN);
    CHECK(batch.count() == 0);

    // 20 datagrams from two senders, the 5th too long for the slot: more than one batch holds.
    const size_t total = RecvBatch::kSlots + 4;
    for (size_t i = 0; i < total; ++i) {
        std::vector<uint8_t> d(i == 4 ? 100 : 10 + i, uint8_t(i));
        UdpSocket& from = i % 2 ? *c : *a;
        REQUIRE(from.send_to(d.data(), d.size(), loopback(b->local_port())));
    }
    std::vector<std::pair<size_t, uint16_t>> seen; // (length, source port) in arrival order
    for (int tries = 0; tries < 1000 && seen.size() < total; ++tries) {
        ssize_t n = b->recv_batch(batch);
        if (n < 0) continue;
        REQUIRE(size_t(n) == batch.count());
        REQUIRE(batch.count() <= RecvBatch::kSlots);
        for (size_t i = 0; i < batch.count(); ++i) {
            size_t k = seen.size();
            // The payload lands after the headroom, and the slot after it is the next datagram's.
            CHECK(batch.data(i) == batch.slot(i) + 8);
            CHECK(batch.data(i)[0] == uint8_t(k));
            if (k + 1 < total && i + 1 < batch.count()) CHECK(batch.slot(i + 1) >= batch.data(i) + 64 + 4);
            seen.emplace_back(batch.len(i), batch.from(i).port());
            CHECK(batch.from(i).ip() == "127.0.0.1");
        }
    }
    REQUIRE(seen.size() == total);
    for (size_t k = 0; k < total; ++k) {
        CHECK(seen[k].first == (k == 4 ? 100 : 10 + k)); // the full length, > cap: the caller drops it
        CHECK(seen[k].second == (k % 2 ? c->local_port() : a->local_port()));
    }
    errno = 0;
    CHECK(b->recv_batch(batch) == -1);
    CHECK(errno == EAGAIN);
}

TEST_CASE("UDP: a batch read reports the kernel's drops like a single read", "[media][udp]") {
    auto a = UdpSocket::bind(loopback());
    auto b = UdpSocket::bind(loopback());
    REQUIRE(a);
    REQUIRE(b);
    int small = 1;
    REQUIRE(::setsockopt(b->fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small) == 0);
    std::vector<uint8_t> pkt(1000, 0x80);
    for (int i = 0; i < 200; ++i)
        a->send_to(pkt.data(), pkt.size(), loopback(b->local_port()));
    RecvBatch batch(0, 2048, 0);
    size_t got = 0;
    while (b->recv_batch(batch) > 0)
        got += batch.count();
    REQUIRE(got > 0);
    REQUIRE(got < 200);
    a->send_to(pkt.data(), pkt.size(), loopback(b->local_port()));
    REQUIRE(b->recv_batch(batch) == 1);
    CHECK(batch.len(0) == 1000);
    CHECK(b->take_kernel_drops() == uint32_t(200 - got));
}

TEST_CASE("net: same_host compares the address, not the port", "[media][udp]") {
    auto x = net::numeric_addr("127.0.0.1", 1000), y = net::numeric_addr("127.0.0.1", 2000),
         z = net::numeric_addr("127.0.0.2", 1000), v6 = net::numeric_addr("::1", 1000),
         v6b = net::numeric_addr("::1", 3000), mapped = net::numeric_addr("::ffff:127.0.0.1", 1000);
    REQUIRE((x && y && z && v6 && v6b && mapped));
    CHECK(net::same_host(*x, *y));
    CHECK_FALSE(net::same_host(*x, *z));
    CHECK(net::same_host(*v6, *v6b));
    CHECK_FALSE(net::same_host(*x, *v6));
    CHECK_FALSE(
        net::same_host(*x, *mapped)); // as the relays' sockets are v6-only, a mapped source is another host
    CHECK_FALSE(net::same_host(net::SockAddr{}, net::SockAddr{}));
}
