#include <catch2/catch.hpp>

#include "common/http/rate_limit.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>

using namespace edgepair::http;

TEST_CASE("token bucket: burst, then the rate", "[http][ratelimit]") {
    TokenBucket b(10, 5, 1000); // 10/s, burst 5
    for (int i = 0; i < 5; ++i)
        CHECK(b.take(1000));
    CHECK_FALSE(b.take(1000));
    CHECK(b.wait_ms(1000) == 100);
    CHECK_FALSE(b.take(1099)); // 0.99 of a token
    CHECK(b.take(1100));
    CHECK_FALSE(b.take(1100));
    // A long pause refills to the burst, never beyond it.
    CHECK(b.tokens(100000) == Approx(5.0));
    CHECK(b.full(100000));
    for (int i = 0; i < 5; ++i)
        CHECK(b.take(100000));
    CHECK_FALSE(b.take(100000));
}

TEST_CASE("token bucket: a clock that steps back refills nothing", "[http][ratelimit]") {
    TokenBucket b(1000, 1, 5000);
    CHECK(b.take(5000));
    CHECK_FALSE(b.take(4000));
    CHECK_FALSE(b.take(5000));
    CHECK(b.take(5001));
}

TEST_CASE("keyed limiter: keys are independent", "[http][ratelimit]") {
    KeyedRateLimiter l({.rate = 1, .burst = 2, .max_keys = 100});
    using V = KeyedRateLimiter::Verdict;
    CHECK(l.take("a", 0) == V::Allowed);
    CHECK(l.take("a", 0) == V::Allowed);
    CHECK(l.take("a", 0) == V::Limited);
    CHECK(l.take("b", 0) == V::Allowed);
    CHECK_FALSE(l.would_allow("a", 0));
    CHECK(l.would_allow("never-seen", 0));
    CHECK(l.retry_after_s("a", 0) == 1);
    CHECK(l.take("a", 1000) == V::Allowed);
    CHECK(l.size() == 2);
}

TEST_CASE("keyed limiter: bounded under a flood of fresh keys", "[http][ratelimit]") {
    using V = KeyedRateLimiter::Verdict;
    KeyedRateLimiter l({.rate = 1, .burst = 5, .max_keys = 160}); // 10 per shard
    size_t untracked = 0;
    for (int i = 0; i < 10000; ++i) {
        auto v = l.take("k" + std::to_string(i), 0);
        CHECK(v != V::Limited); // a fresh key always has its burst
        untracked += v == V::Untracked;
    }
    CHECK(l.size() <= 160);
    CHECK(untracked > 0);
    // Once the buckets have refilled (5 s at 1/s), they are forgotten and new keys are tracked again.
    CHECK(l.take("late", 6000) == V::Allowed);
    CHECK(l.size() <= 160);
}

TEST_CASE("keyed limiter: one budget across threads", "[http][ratelimit]") {
    KeyedRateLimiter l({.rate = 0.001, .burst = 1000, .max_keys = 1000});
    std::vector<std::thread> ts;
    std::atomic<int> allowed{0};
    for (int t = 0; t < 4; ++t)
        ts.emplace_back([&] {
            for (int i = 0; i < 500; ++i)
                if (l.take("shared", 0) == KeyedRateLimiter::Verdict::Allowed) ++allowed;
        });
    for (auto& t : ts)
        t.join();
    CHECK(allowed.load() == 1000);
}

TEST_CASE("client key: IPv4 as is, IPv6 by /64, mapped IPv4 as IPv4", "[http][ratelimit]") {
    auto v6 = [](const char* s) {
        edgepair::net::SockAddr a;
        auto* p = reinterpret_cast<sockaddr_in6*>(&a.ss);
        p->sin6_family = AF_INET6;
        inet_pton(AF_INET6, s, &p->sin6_addr);
        a.len = sizeof(sockaddr_in6);
        return a;
    };
    edgepair::net::SockAddr a4;
    auto* p4 = reinterpret_cast<sockaddr_in*>(&a4.ss);
    p4->sin_family = AF_INET;
    inet_pton(AF_INET, "192.0.2.7", &p4->sin_addr);
    a4.len = sizeof(sockaddr_in);
    CHECK(client_rate_key(a4) == "192.0.2.7");
    CHECK(client_rate_key(v6("2001:db8:1:2:aaaa::1")) == "2001:db8:1:2::/64");
    CHECK(client_rate_key(v6("2001:db8:1:2:bbbb::9")) == "2001:db8:1:2::/64");
    CHECK(client_rate_key(v6("2001:db8:1:3::1")) == "2001:db8:1:3::/64");
    CHECK(client_rate_key(v6("::ffff:192.0.2.7")) == "192.0.2.7");
}
