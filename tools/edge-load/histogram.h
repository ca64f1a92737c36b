#pragma once
// Latency histogram in the spirit of HdrHistogram: log-linear buckets (each power of two split into 128
// linear sub-buckets), so any recorded value is reported within 1/128 (0.8%) of itself, from 1 µs up to
// 2^40 µs, in a fixed 35 KB array. Recording is an index computation and an increment: cheap enough to
// record every request of a 100k req/s run, and two histograms merge by adding counts (one per worker,
// merged at the end), which a running mean/percentile estimator could not do.
#include <array>
#include <cstddef>
#include <cstdint>

namespace edgepair::load {

class Histogram {
  public:
    static constexpr int kSubBits = 7;                         // 128 sub-buckets per power of two
    static constexpr uint64_t kHalf = uint64_t(1) << kSubBits; // 128
    static constexpr uint64_t kLinear = kHalf * 2;             // values below 256 are exact
    static constexpr int kMaxBits = 40;                        // 2^40 µs is 12.7 days: nothing is larger
    static constexpr uint64_t kMaxValue = (uint64_t(1) << kMaxBits) - 1;
    static constexpr size_t kBuckets = kLinear + size_t(kMaxBits - kSubBits - 1) * kHalf;

    void record(uint64_t value);
    void merge(const Histogram& other);
    void reset();

    uint64_t count() const { return count_; }
    uint64_t min() const { return count_ ? min_ : 0; }
    uint64_t max() const { return max_; }
    double mean() const { return count_ ? double(sum_) / double(count_) : 0.0; }
    // The highest value equivalent (same bucket) to the value at quantile q in [0, 1], as HdrHistogram
    // reports it, capped at the largest value actually recorded. 0 when empty.
    uint64_t quantile(double q) const;

    static size_t index_of(uint64_t value);
    static uint64_t lowest_of(size_t index);
    static uint64_t highest_of(size_t index);

  private:
    std::array<uint64_t, kBuckets> counts_{};
    uint64_t count_ = 0;
    uint64_t sum_ = 0;
    uint64_t min_ = UINT64_MAX;
    uint64_t max_ = 0;
};

} // namespace edgepair::load
