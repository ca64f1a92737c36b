#include "common/http/rate_limit.h"

#include <algorithm>
#include <cmath>
#include <functional>

#include <arpa/inet.h>
#include <netinet/in.h>

namespace edgepair::http {

namespace {
constexpr size_t kShards = 16;
} // namespace

void TokenBucket::refill(uint64_t now_ms) {
    if (now_ms <= last_ms_) return; // a clock that stepped back refills nothing
    tokens_ = std::min(burst_, tokens_ + double(now_ms - last_ms_) * rate_ / 1000.0);
    last_ms_ = now_ms;
}

bool TokenBucket::take(uint64_t now_ms) {
    refill(now_ms);
    if (tokens_ < 1.0) return false;
    tokens_ -= 1.0;
    return true;
}

double TokenBucket::tokens(uint64_t now_ms) const {
    if (now_ms <= last_ms_) return tokens_;
    return std::min(burst_, tokens_ + double(now_ms - last_ms_) * rate_ / 1000.0);
}

uint64_t TokenBucket::wait_ms(uint64_t now_ms) const {
    double t = tokens(now_ms);
    if (t >= 1.0 || rate_ <= 0) return 0;
    return uint64_t(std::ceil((1.0 - t) * 1000.0 / rate_));
}

KeyedRateLimiter::KeyedRateLimiter(RateLimitOptions opts)
    : opts_(opts), per_shard_(std::max<size_t>(1, (opts.max_keys + kShards - 1) / kShards)) {
    for (size_t i = 0; i < kShards; ++i)
        shards_.push_back(std::make_unique<Shard>());
}

KeyedRateLimiter::Shard& KeyedRateLimiter::shard_for(std::string_view key) {
    return *shards_[std::hash<std::string_view>{}(key) % shards_.size()];
}

bool KeyedRateLimiter::make_room(Shard& s, uint64_t now_ms) {
    if (s.buckets.size() < per_shard_) return true;
    // A sweep walks the whole shard: when it frees nothing (every key is busy), the next one waits, so a
    // flood of fresh keys cannot turn every insert into a full scan.
    if (now_ms < s.next_sweep_ms) return false;
    std::erase_if(s.buckets, [now_ms](const auto& kv) { return kv.second.full(now_ms); });
    if (s.buckets.size() < per_shard_) return true;
    double refill_ms = opts_.rate > 0 ? 1000.0 * opts_.burst / opts_.rate : 1000.0;
    s.next_sweep_ms = now_ms + uint64_t(std::clamp(refill_ms / 4, 100.0, 10000.0));
    return false;
}

KeyedRateLimiter::Verdict KeyedRateLimiter::take(std::string_view key, uint64_t now_ms) {
    auto& s = shard_for(key);
    std::lock_guard<std::mutex> lk(s.mu);
    auto it = s.buckets.find(std::string(key));
    if (it == s.buckets.end()) {
        if (!make_room(s, now_ms)) return Verdict::Untracked;
        it = s.buckets.emplace(std::string(key), TokenBucket(opts_.rate, opts_.burst, now_ms)).first;
    }
    return it->second.take(now_ms) ? Verdict::Allowed : Verdict::Limited;
}

bool KeyedRateLimiter::would_allow(std::string_view key, uint64_t now_ms) {
    auto& s = shard_for(key);
    std::lock_guard<std::mutex> lk(s.mu);
    auto it = s.buckets.find(std::string(key));
    return it == s.buckets.end() || it->second.tokens(now_ms) >= 1.0;
}

uint64_t KeyedRateLimiter::retry_after_s(std::string_view key, uint64_t now_ms) {
    auto& s = shard_for(key);
    std::lock_guard<std::mutex> lk(s.mu);
    auto it = s.buckets.find(std::string(key));
    uint64_t ms = it == s.buckets.end() ? 0 : it->second.wait_ms(now_ms);
    return std::max<uint64_t>(1, (ms + 999) / 1000);
}

size_t KeyedRateLimiter::size() const {
    size_t n = 0;
    for (auto& s : shards_) {
        std::lock_guard<std::mutex> lk(s->mu);
        n += s->buckets.size();
    }
    return n;
}

std::string client_rate_key(const net::SockAddr& addr) {
    if (addr.family() == AF_INET6) {
        auto* a6 = reinterpret_cast<const sockaddr_in6*>(&addr.ss);
        const uint8_t* b = a6->sin6_addr.s6_addr;
        // An IPv4-mapped address is one IPv4 client, not a /64.
        static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (std::equal(b, b + 12, kMapped)) {
            return net::ipv4_text(b + 12);
        }
        in6_addr prefix{};
        std::copy(b, b + 8, prefix.s6_addr);
        char buf[INET6_ADDRSTRLEN] = {};
        inet_ntop(AF_INET6, &prefix, buf, sizeof buf);
        return std::string(buf) + "/64";
    }
    return addr.ip();
}

} // namespace edgepair::http
