#pragma once
// The alarm table of one process: conditions an operator must act on (a link down, a publisher that does
// not answer, a certificate about to expire, a reload that was refused). Each alarm has a stable id (the
// condition, plus its subject after a ':' when there can be several: "node.unreachable:cucm1.example.com"),
// a severity, first and last seen times, how often it was raised, and a detail text for a person.
//
// Owned by the App (never global). Any thread may raise or clear; the admin thread reads. Alarms are rare
// events on cold paths, so one mutex guards everything and readers get copies.
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace edgepair::obs {

class Registry;
class Gauge;

enum class Severity { Warning, Major, Critical };
const char* to_string(Severity s);

struct Alarm {
    std::string id;
    Severity severity = Severity::Warning;
    std::string detail;
    int64_t first_seen_unix = 0; // when it was last raised after being clear (or for the first time)
    int64_t last_seen_unix = 0;  // the last report of the condition
    int64_t cleared_unix = 0;    // 0 while active
    bool active = false;
    uint64_t count = 0; // times raised from clear
};

class AlarmTable {
  public:
    // A history of this many cleared alarms is kept; older cleared ones are forgotten first.
    static constexpr size_t kMaxCleared = 64;

    // With a registry, `edgepair_alarms_active{id,severity}` shows 1 while an alarm is active and 0 after.
    // `clock` (wall-clock seconds) is for tests; the default reads the system clock.
    explicit AlarmTable(Registry* metrics = nullptr, std::function<int64_t()> clock = {});
    AlarmTable(const AlarmTable&) = delete;
    AlarmTable& operator=(const AlarmTable&) = delete;

    // Reports the condition: raises it when clear, else refreshes last seen, severity and detail. True when
    // it was newly raised.
    bool raise(std::string_view id, Severity severity, std::string_view detail);
    // True when it was active.
    bool clear(std::string_view id);
    // Clears every active alarm whose id starts with `prefix` and is not in `keep`: for families with one
    // alarm per subject, after a full check found which subjects still have the condition.
    void clear_family(std::string_view prefix, const std::vector<std::string>& keep);

    bool active(std::string_view id) const;
    size_t active_count() const;
    // Active alarms first (most severe, then newest), then cleared ones (newest first).
    std::vector<Alarm> list() const;
    // The JSON array of list().
    std::string json() const;

  private:
    void set_gauge(const Alarm& a, int64_t v);
    bool clear_locked(Alarm& a, int64_t now);
    void trim_locked();

    Registry* metrics_;
    std::function<int64_t()> clock_;
    mutable std::mutex mu_;
    std::map<std::string, Alarm, std::less<>> alarms_;
};

} // namespace edgepair::obs
