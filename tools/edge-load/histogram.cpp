#include "tools/edge-load/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace edgepair::load {

size_t Histogram::index_of(uint64_t v) {
    if (v < kLinear) return size_t(v);
    if (v > kMaxValue) v = kMaxValue;
    int msb = 63 - std::countl_zero(v); // >= 8 here
    int shift = msb - kSubBits;         // bucket width is 2^shift
    uint64_t sub = v >> shift;          // in [128, 256)
    return size_t(kLinear + uint64_t(shift - 1) * kHalf + (sub - kHalf));
}

uint64_t Histogram::lowest_of(size_t index) {
    if (index < kLinear) return index;
    uint64_t k = index - kLinear;
    int shift = int(k / kHalf) + 1;
    uint64_t sub = k % kHalf + kHalf;
    return sub << shift;
}

uint64_t Histogram::highest_of(size_t index) {
    if (index < kLinear) return index;
    int shift = int((index - kLinear) / kHalf) + 1;
    return lowest_of(index) + (uint64_t(1) << shift) - 1;
}

void Histogram::record(uint64_t v) {
    ++counts_[index_of(v)];
    ++count_;
    sum_ += v;
    min_ = std::min(min_, v);
    max_ = std::max(max_, v);
}

void Histogram::merge(const Histogram& o) {
    if (!o.count_) return;
    for (size_t i = 0; i < kBuckets; ++i)
        counts_[i] += o.counts_[i];
    count_ += o.count_;
    sum_ += o.sum_;
    min_ = std::min(min_, o.min_);
    max_ = std::max(max_, o.max_);
}

void Histogram::reset() {
    *this = Histogram{};
}

uint64_t Histogram::quantile(double q) const {
    if (!count_) return 0;
    q = std::clamp(q, 0.0, 1.0);
    // The rank of the sample at q, 1-based; q = 0 is the smallest sample.
    uint64_t rank = std::max<uint64_t>(1, uint64_t(std::ceil(q * double(count_))));
    uint64_t seen = 0;
    for (size_t i = 0; i < kBuckets; ++i) {
        seen += counts_[i];
        if (seen >= rank) return std::min(highest_of(i), max_);
    }
    return max_;
}

} // namespace edgepair::load
