#include "common/link/backoff.h"

#include <algorithm>

namespace edgepair::link {

Backoff::Backoff(uint64_t min_ms, uint64_t max_ms, uint64_t seed)
    : min_(std::max<uint64_t>(min_ms, 1)), max_(std::max(max_ms, std::max<uint64_t>(min_ms, 1))), prev_(min_),
      rng_(seed ? seed : std::random_device{}()) {}

uint64_t Backoff::next() {
    ++attempts_;
    // prev_ <= max_, so prev_ * 3 cannot overflow for any sane cap; clamp anyway so a huge cap stays safe.
    uint64_t hi = prev_ > max_ / 3 ? max_ : std::max(prev_ * 3, min_);
    std::uniform_int_distribution<uint64_t> d(min_, std::max(hi, min_));
    prev_ = std::min(max_, d(rng_));
    return prev_;
}

void Backoff::reset() {
    attempts_ = 0;
    prev_ = min_;
}

} // namespace edgepair::link
