#pragma once
// Labelled counters seen from one worker: the registry lookup (and its lock) happens once per label set,
// every later increment is a local hash lookup and an atomic add. For families whose label values are
// open-ended (an upstream status code); a family with a fixed label set binds its counters up front.
#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>
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
        make_key(name, labels);
        auto it = seen_.find(key_);
        if (it == seen_.end()) it = seen_.emplace(key_, &reg_.counter(name, help, labels)).first;
        return *it->second;
    }

    // The same for a call site that names its family and labels in place (a request path's per-request
    // count): nothing is copied into strings or a label set unless this worker has not seen the set yet.
    using LabelViews = std::initializer_list<std::pair<std::string_view, std::string_view>>;
    Counter& get_views(std::string_view name, std::string_view help, LabelViews labels) {
        make_key(name, labels);
        auto it = seen_.find(key_);
        if (it == seen_.end()) {
            Labels owned;
            owned.reserve(labels.size());
            for (auto& [k, v] : labels)
                owned.emplace_back(std::string(k), std::string(v));
            it = seen_.emplace(key_, &reg_.counter(std::string(name), std::string(help), owned)).first;
        }
        return *it->second;
    }

  private:
    // The family and its label set as one string (unit separator between fields), into the reused key_.
    template <typename Pairs> void make_key(std::string_view name, const Pairs& labels) {
        key_.assign(name);
        for (auto& [k, v] : labels) {
            key_ += '\x1f';
            key_ += k;
            key_ += '=';
            key_ += v;
        }
    }

    Registry& reg_;
    std::string key_; // reused: no allocation per event once it has grown
    std::unordered_map<std::string, Counter*> seen_;
};

// One family whose labels are fixed but for one open-ended value (a refusal reason drawn from several
// modules' label functions): bound to the family once, then an event costs a hash lookup on the value
// itself, without building a label set or a key. Not thread-safe: one per worker, on that worker's thread.
class OpenLabelCounters {
  public:
    OpenLabelCounters(Registry& reg, std::string name, std::string help, Labels fixed, std::string open_label)
        : reg_(reg), name_(std::move(name)), help_(std::move(help)), fixed_(std::move(fixed)),
          open_label_(std::move(open_label)) {}
    OpenLabelCounters(const OpenLabelCounters&) = delete;
    OpenLabelCounters& operator=(const OpenLabelCounters&) = delete;

    Counter& get(std::string_view value) {
        auto it = seen_.find(value);
        if (it != seen_.end()) return *it->second;
        Labels labels = fixed_;
        labels.emplace_back(open_label_, std::string(value));
        return *seen_.emplace(std::string(value), &reg_.counter(name_, help_, labels)).first->second;
    }

  private:
    struct Hash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };
    Registry& reg_;
    std::string name_, help_;
    Labels fixed_;
    std::string open_label_;
    std::unordered_map<std::string, Counter*, Hash, std::equal_to<>> seen_;
};

} // namespace edgepair::obs
