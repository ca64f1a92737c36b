#include "common/obs/alarms.h"

#include <algorithm>
#include <chrono>

#include <fmt/format.h>

#include "common/obs/json.h"
#include "common/obs/log.h"
#include "common/obs/metrics.h"

namespace edgepair::obs {

namespace {
int64_t system_unix() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}
int rank(Severity s) {
    return s == Severity::Critical ? 2 : s == Severity::Major ? 1 : 0;
}
} // namespace

const char* to_string(Severity s) {
    switch (s) {
    case Severity::Warning:
        return "warning";
    case Severity::Major:
        return "major";
    case Severity::Critical:
        return "critical";
    }
    return "warning";
}

AlarmTable::AlarmTable(Registry* metrics, std::function<int64_t()> clock)
    : metrics_(metrics), clock_(clock ? std::move(clock) : std::function<int64_t()>(system_unix)) {}

void AlarmTable::set_gauge(const Alarm& a, int64_t v) {
    if (!metrics_) return;
    metrics_
        ->gauge("edgepair_alarms_active", "Alarms by id and severity: 1 while active",
                {{"id", a.id}, {"severity", to_string(a.severity)}})
        .set(v);
}

bool AlarmTable::raise(std::string_view id, Severity severity, std::string_view detail) {
    const int64_t now = clock_();
    std::lock_guard<std::mutex> lk(mu_);
    auto it = alarms_.find(id);
    if (it == alarms_.end()) it = alarms_.emplace(std::string(id), Alarm{}).first;
    Alarm& a = it->second;
    a.id = it->first;
    const bool fresh = !a.active;
    if (!fresh && a.severity != severity) set_gauge(a, 0); // the old label set must not stay at 1
    if (fresh) {
        a.active = true;
        a.first_seen_unix = now;
        a.cleared_unix = 0;
        ++a.count;
    }
    const bool changed = fresh || a.detail != detail || a.severity != severity;
    a.severity = severity;
    a.detail = std::string(detail);
    a.last_seen_unix = now;
    set_gauge(a, 1);
    if (changed)
        EP_WARN("alarm", "{} {} [{}]: {}", fresh ? "raised" : "updated", a.id, to_string(severity), a.detail);
    return fresh;
}

bool AlarmTable::clear_locked(Alarm& a, int64_t now) {
    if (!a.active) return false;
    a.active = false;
    a.cleared_unix = now;
    set_gauge(a, 0);
    EP_INFO("alarm", "cleared {}", a.id);
    return true;
}

void AlarmTable::trim_locked() {
    size_t cleared = 0;
    for (auto& [id, a] : alarms_)
        if (!a.active) ++cleared;
    while (cleared > kMaxCleared) {
        auto oldest = alarms_.end();
        for (auto it = alarms_.begin(); it != alarms_.end(); ++it)
            if (!it->second.active &&
                (oldest == alarms_.end() || it->second.cleared_unix < oldest->second.cleared_unix))
                oldest = it;
        alarms_.erase(oldest);
        --cleared;
    }
}

bool AlarmTable::clear(std::string_view id) {
    const int64_t now = clock_();
    std::lock_guard<std::mutex> lk(mu_);
    auto it = alarms_.find(id);
    if (it == alarms_.end()) return false;
    bool was = clear_locked(it->second, now);
    trim_locked();
    return was;
}

void AlarmTable::clear_family(std::string_view prefix, const std::vector<std::string>& keep) {
    const int64_t now = clock_();
    std::lock_guard<std::mutex> lk(mu_);
    for (auto& [id, a] : alarms_)
        if (id.starts_with(prefix) && std::find(keep.begin(), keep.end(), id) == keep.end())
            clear_locked(a, now);
    trim_locked();
}

bool AlarmTable::active(std::string_view id) const {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = alarms_.find(id);
    return it != alarms_.end() && it->second.active;
}

size_t AlarmTable::active_count() const {
    std::lock_guard<std::mutex> lk(mu_);
    return size_t(std::count_if(alarms_.begin(), alarms_.end(), [](auto& kv) { return kv.second.active; }));
}

std::vector<Alarm> AlarmTable::list() const {
    std::vector<Alarm> out;
    {
        std::lock_guard<std::mutex> lk(mu_);
        for (auto& [id, a] : alarms_)
            out.push_back(a);
    }
    std::stable_sort(out.begin(), out.end(), [](const Alarm& x, const Alarm& y) {
        if (x.active != y.active) return x.active;
        if (x.active) {
            if (rank(x.severity) != rank(y.severity)) return rank(x.severity) > rank(y.severity);
            return x.first_seen_unix > y.first_seen_unix;
        }
        return x.cleared_unix > y.cleared_unix;
    });
    return out;
}

std::string AlarmTable::json() const {
    std::string out = "[";
    for (auto& a : list()) {
        if (out.size() > 1) out += ',';
        out += fmt::format("{{\"id\":{},\"severity\":\"{}\",\"state\":\"{}\",\"detail\":{},\"first_seen\":{},"
                           "\"last_seen\":{},\"cleared\":{},\"count\":{}}}",
                           json_str(a.id), to_string(a.severity), a.active ? "raised" : "cleared",
                           json_str(a.detail), a.first_seen_unix, a.last_seen_unix,
                           a.cleared_unix ? std::to_string(a.cleared_unix) : std::string("null"), a.count);
    }
    return out + "]";
}

} // namespace edgepair::obs
