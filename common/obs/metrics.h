#pragma once
// Metrics registry rendered as Prometheus text. Counters are created at start-up (or first use on the
// control path) and then incremented lock-free from any worker; the registry owns them for the process
// lifetime so references stay valid.
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace edgepair::obs {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Counter {
  public:
    void inc(uint64_t n = 1) { v_.fetch_add(n, std::memory_order_relaxed); }
    uint64_t value() const { return v_.load(std::memory_order_relaxed); }

  private:
    std::atomic<uint64_t> v_{0};
};

class Gauge {
  public:
    void add(int64_t n) { v_.fetch_add(n, std::memory_order_relaxed); }
    void set(int64_t n) { v_.store(n, std::memory_order_relaxed); }
    int64_t value() const { return v_.load(std::memory_order_relaxed); }

  private:
    std::atomic<int64_t> v_{0};
};

// One unit of a gauge held for as long as something lives (an open federation stream): +1 when taken, -1
// when the holder goes, whichever way it ends. Move-only.
class GaugeHold {
  public:
    GaugeHold() = default;
    explicit GaugeHold(Gauge& g) : g_(&g) { g_->add(1); }
    GaugeHold(GaugeHold&& o) noexcept : g_(std::exchange(o.g_, nullptr)) {}
    GaugeHold& operator=(GaugeHold&& o) noexcept {
        if (this != &o) {
            release();
            g_ = std::exchange(o.g_, nullptr);
        }
        return *this;
    }
    GaugeHold(const GaugeHold&) = delete;
    GaugeHold& operator=(const GaugeHold&) = delete;
    ~GaugeHold() { release(); }
    bool held() const { return g_ != nullptr; }

  private:
    void release() {
        if (g_) g_->add(-1);
        g_ = nullptr;
    }
    Gauge* g_ = nullptr;
};

class Registry {
  public:
    // Same name+labels returns the same object. Names follow Prometheus rules (edgepair_*).
    Counter& counter(const std::string& name, const std::string& help, const Labels& labels = {});
    Gauge& gauge(const std::string& name, const std::string& help, const Labels& labels = {});
    // A value computed at scrape time (e.g. open connections summed over workers).
    void gauge_fn(const std::string& name, const std::string& help, std::function<double()> fn);
    std::string render() const;
    // Value of a counter by name and labels (tests, /status). 0 when absent.
    uint64_t counter_value(const std::string& name, const Labels& labels = {}) const;
    // Every labelled gauge of a family with its labels and value, in label order (/status).
    std::vector<std::pair<Labels, int64_t>> gauge_values(const std::string& name) const;
    // Every labelled counter of a family with its labels and value, in label order (/status).
    std::vector<std::pair<Labels, uint64_t>> counter_values(const std::string& name) const;

  private:
    struct Family {
        std::string help;
        bool is_counter = true;
        std::map<std::string, Counter*> counters;     // key: rendered label set
        std::map<std::string, Labels> counter_labels; // same keys as counters
        std::map<std::string, Gauge*> gauges;
        std::map<std::string, Labels> gauge_labels; // same keys as gauges
        std::function<double()> fn;
    };
    static std::string label_key(const Labels& labels);
    mutable std::mutex mu_;
    std::map<std::string, Family> families_;
    std::deque<Counter> counter_store_;
    std::deque<Gauge> gauge_store_;
};

} // namespace edgepair::obs
