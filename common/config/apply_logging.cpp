#include "common/config/apply_logging.h"

#include "common/obs/log.h"

namespace edgepair::config {

namespace {
obs::Level to_level(LogLevel l) {
    switch (l) {
    case LogLevel::Trace:
        return obs::Level::Trace;
    case LogLevel::Debug:
        return obs::Level::Debug;
    case LogLevel::Info:
        return obs::Level::Info;
    case LogLevel::Warn:
        return obs::Level::Warn;
    case LogLevel::Error:
        return obs::Level::Error;
    }
    return obs::Level::Info;
}
} // namespace

void apply_logging(const LogConfig& log) {
    std::map<std::string, obs::Level> mods;
    for (auto& [k, v] : log.modules)
        mods[k] = to_level(v);
    obs::Logger::get().configure(to_level(log.level), log.format == LogFormat::Json, std::move(mods));
}

} // namespace edgepair::config
