#include "common/obs/log.h"
#include "common/obs/json.h"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <unistd.h>

namespace edgepair::obs {

Level parse_level(std::string_view s, bool* ok) {
    static const std::pair<const char*, Level> names[] = {{"trace", Level::Trace}, {"debug", Level::Debug},
                                                          {"info", Level::Info},   {"warn", Level::Warn},
                                                          {"error", Level::Error}, {"off", Level::Off}};
    for (auto& [n, l] : names)
        if (s == n) {
            if (ok) *ok = true;
            return l;
        }
    if (ok) *ok = false;
    return Level::Info;
}

const char* level_name(Level l) {
    switch (l) {
    case Level::Trace:
        return "trace";
    case Level::Debug:
        return "debug";
    case Level::Info:
        return "info";
    case Level::Warn:
        return "warn";
    case Level::Error:
        return "error";
    case Level::Off:
        return "off";
    }
    return "?";
}

Logger& Logger::get() {
    static Logger lg;
    return lg;
}

void Logger::configure(Level def, bool json, std::map<std::string, Level> per_module) {
    std::lock_guard<std::mutex> lk(mu_);
    default_ = int(def);
    json_ = json;
    modules_.clear();
    for (auto& [k, v] : per_module)
        modules_.emplace(k, v);
    has_modules_ = !modules_.empty();
}

bool Logger::enabled(std::string_view module, Level l) const {
    if (has_modules_.load(std::memory_order_relaxed)) {
        std::lock_guard<std::mutex> lk(mu_);
        auto it = modules_.find(module);
        if (it != modules_.end()) return l >= it->second;
    }
    return int(l) >= default_.load(std::memory_order_relaxed);
}

void Logger::write(std::string_view module, Level l, std::string_view msg) {
    auto now = std::chrono::system_clock::now();
    auto t = std::chrono::system_clock::to_time_t(now);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm tm;
    gmtime_r(&t, &tm);
    char ts[32];
    std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    std::string line;
    line.reserve(msg.size() + 64);
    if (json_) {
        line += fmt::format("{{\"ts\":\"{}.{:03}Z\",\"level\":\"{}\",\"module\":\"", ts, ms, level_name(l));
        json_escape_into(line, module);
        line += "\",\"msg\":\"";
        json_escape_into(line, msg);
        line += "\"}\n";
    } else {
        line += fmt::format("{}.{:03}Z {:5} [{}] ", ts, ms, level_name(l), module);
        for (char c : msg)
            line += (c == '\n' || c == '\r') ? ' ' : c; // one event, one line
        line += '\n';
    }
    // One write(2) per line keeps lines whole across threads without a lock.
    ssize_t r = ::write(STDERR_FILENO, line.data(), line.size());
    (void)r;
}

} // namespace edgepair::obs
