#include "common/obs/metrics.h"

#include <fmt/format.h>

namespace edgepair::obs {

std::string Registry::label_key(const Labels& labels) {
    if (labels.empty()) return {};
    std::string out = "{";
    bool first = true;
    for (auto& [k, v] : labels) {
        if (!first) out += ',';
        first = false;
        out += k;
        out += "=\"";
        for (char c : v) {
            if (c == '\\' || c == '"') out += '\\';
            if (c == '\n') {
                out += "\\n";
                continue;
            }
            out += c;
        }
        out += '"';
    }
    out += '}';
    return out;
}

Counter& Registry::counter(const std::string& name, const std::string& help, const Labels& labels) {
    std::lock_guard<std::mutex> lk(mu_);
    auto& fam = families_[name];
    fam.help = help;
    fam.is_counter = true;
    auto key = label_key(labels);
    auto it = fam.counters.find(key);
    if (it != fam.counters.end()) return *it->second;
    Counter& c = counter_store_.emplace_back();
    fam.counters.emplace(key, &c);
    fam.counter_labels.emplace(key, labels);
    return c;
}

Gauge& Registry::gauge(const std::string& name, const std::string& help, const Labels& labels) {
    std::lock_guard<std::mutex> lk(mu_);
    auto& fam = families_[name];
    fam.help = help;
    fam.is_counter = false;
    auto key = label_key(labels);
    auto it = fam.gauges.find(key);
    if (it != fam.gauges.end()) return *it->second;
    Gauge& g = gauge_store_.emplace_back();
    fam.gauges.emplace(key, &g);
    fam.gauge_labels.emplace(key, labels);
    return g;
}

void Registry::gauge_fn(const std::string& name, const std::string& help, std::function<double()> fn) {
    std::lock_guard<std::mutex> lk(mu_);
    auto& fam = families_[name];
    fam.help = help;
    fam.is_counter = false;
    fam.fn = std::move(fn);
}

uint64_t Registry::counter_value(const std::string& name, const Labels& labels) const {
    std::lock_guard<std::mutex> lk(mu_);
    auto f = families_.find(name);
    if (f == families_.end()) return 0;
    auto c = f->second.counters.find(label_key(labels));
    return c == f->second.counters.end() ? 0 : c->second->value();
}

std::vector<std::pair<Labels, int64_t>> Registry::gauge_values(const std::string& name) const {
    std::lock_guard<std::mutex> lk(mu_);
    std::vector<std::pair<Labels, int64_t>> out;
    auto f = families_.find(name);
    if (f == families_.end()) return out;
    for (auto& [k, g] : f->second.gauges)
        out.emplace_back(f->second.gauge_labels.at(k), g->value());
    return out;
}

std::vector<std::pair<Labels, uint64_t>> Registry::counter_values(const std::string& name) const {
    std::lock_guard<std::mutex> lk(mu_);
    std::vector<std::pair<Labels, uint64_t>> out;
    auto f = families_.find(name);
    if (f == families_.end()) return out;
    for (auto& [k, c] : f->second.counters)
        out.emplace_back(f->second.counter_labels.at(k), c->value());
    return out;
}

std::string Registry::render() const {
    std::lock_guard<std::mutex> lk(mu_);
    std::string out;
    for (auto& [name, fam] : families_) {
        out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, fam.help, name,
                           fam.is_counter ? "counter" : "gauge");
        for (auto& [k, c] : fam.counters)
            out += fmt::format("{}{} {}\n", name, k, c->value());
        for (auto& [k, g] : fam.gauges)
            out += fmt::format("{}{} {}\n", name, k, g->value());
        if (fam.fn) out += fmt::format("{} {}\n", name, fam.fn());
    }
    return out;
}

} // namespace edgepair::obs
