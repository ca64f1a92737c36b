#pragma once
// Labelled counters seen from one worker: the registry lookup (and its lock) happens once per label set,
// every later increment is a local hash lookup and an atomic add. For families whose label values are
// open-ended (an upstream status code); a family with a fixed label set binds its counters up front.
#include <string>
#include <unordered_map>

#include "common/obs/metrics.h"

namespace edgepair::obs {

// Not thread-safe: one per worker, used only on that worker's thread.
class CounterMemo {
  public:
    explicit CounterMemo(Registry& reg) : reg_(reg) {}
    CounterMemo(const CounterMemo&) = delete;
    CounterMemo& operator=(const CounterMemo&) = delete;

    Counter& get(const std::string& name, const std::string& help, const Labels& labels) {
        key_ = name;
        for (auto& [k, v] : labels) {
            key_ += '\x1f';
            key_ += k;
            key_ += '=';
            key_ += v;
        }
        auto it = seen_.find(key_);
        if (it == seen_.end()) it = seen_.emplace(key_, &reg_.counter(name, help, labels)).first;
        return *it->second;
    }

  private:
    Registry& reg_;
    std::string key_; // reused: no allocation per event once it has grown
    std::unordered_map<std::string, Counter*> seen_;
};

} // namespace edgepair::obs
