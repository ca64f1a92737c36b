#pragma once
// Request rate limits for the HTTP edge: a token bucket, and a table of buckets keyed by client (IP address,
// user name) that stays bounded whatever the keys an attacker invents. Time is passed in (milliseconds on a
// monotonic clock) so the logic is deterministic under test.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/net/address.h"

namespace edgepair::http {

// `rate` tokens a second refill up to `burst`; a new bucket starts full, so the first `burst` requests pass
// at any speed and the rest at `rate`.
class TokenBucket {
  public:
    TokenBucket(double rate, double burst, uint64_t now_ms)
        : rate_(rate), burst_(burst), tokens_(burst), last_ms_(now_ms) {}
    // Takes one token if there is one.
    bool take(uint64_t now_ms);
    // Tokens available at now_ms (after refill); does not take.
    double tokens(uint64_t now_ms) const;
    // True when the bucket has refilled completely: forgetting it changes nothing.
    bool full(uint64_t now_ms) const { return tokens(now_ms) >= burst_; }
    // Milliseconds until one token is available (0 when one is).
    uint64_t wait_ms(uint64_t now_ms) const;

  private:
    void refill(uint64_t now_ms);
    double rate_, burst_, tokens_;
    uint64_t last_ms_;
};

struct RateLimitOptions {
    double rate = 50;        // tokens per second per key
    double burst = 200;      // bucket size
    size_t max_keys = 65536; // tracked keys in all; beyond that, new keys pass untracked
};

// Thread-safe (every worker of a process shares one table, so a client cannot multiply its budget by
// opening connections that land on different workers). The table is split into shards, each with its own
// mutex held only for one lookup, so workers rarely meet.
class KeyedRateLimiter {
  public:
    enum class Verdict { Allowed, Limited, Untracked };
    explicit KeyedRateLimiter(RateLimitOptions opts);
    KeyedRateLimiter(const KeyedRateLimiter&) = delete;
    KeyedRateLimiter& operator=(const KeyedRateLimiter&) = delete;

    // Takes one token from `key`'s bucket. Untracked: the table is full of keys that are all still active,
    // and the request is let through rather than refused (failing closed would let an address-spraying
    // client lock everyone out).
    Verdict take(std::string_view key, uint64_t now_ms);
    // Whether `key` has a token, without taking one (for checks that only count failures).
    bool would_allow(std::string_view key, uint64_t now_ms);
    // Seconds a limited key should wait before retrying (for Retry-After), at least 1.
    uint64_t retry_after_s(std::string_view key, uint64_t now_ms);
    size_t size() const;
    const RateLimitOptions& options() const { return opts_; }

  private:
    struct Shard {
        mutable std::mutex mu;
        std::unordered_map<std::string, TokenBucket> buckets;
        uint64_t next_sweep_ms = 0;
    };
    Shard& shard_for(std::string_view key);
    // Drops buckets that are full again. Returns true when there is room afterwards.
    bool make_room(Shard& s, uint64_t now_ms);

    RateLimitOptions opts_;
    size_t per_shard_;
    std::vector<std::unique_ptr<Shard>> shards_;
};

// The key a client address is limited under: the IPv4 address, or the /64 of an IPv6 address (one
// subscriber usually gets a whole /64, so keying by full address would let it rotate through 2^64 keys).
std::string client_rate_key(const net::SockAddr& addr);

} // namespace edgepair::http
