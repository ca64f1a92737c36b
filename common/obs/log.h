#pragma once
// Structured logging: one line per event, text or JSON, with a level per module. The logger is
// process-wide because every module logs; its settings change only on (re)load, atomically.
#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include <fmt/format.h>

namespace edgepair::obs {

enum class Level { Trace = 0, Debug, Info, Warn, Error, Off };

Level parse_level(std::string_view s, bool* ok = nullptr);
const char* level_name(Level l);

class Logger {
  public:
    static Logger& get();
    void configure(Level def, bool json, std::map<std::string, Level> per_module);
    bool enabled(std::string_view module, Level l) const;
    void write(std::string_view module, Level l, std::string_view msg);

  private:
    std::atomic<int> default_{int(Level::Info)};
    std::atomic<bool> json_{false};
    mutable std::mutex mu_;
    std::map<std::string, Level, std::less<>> modules_;
    std::atomic<bool> has_modules_{false};
};

template <class... Args>
void log(std::string_view module, Level l, fmt::format_string<Args...> f, Args&&... args) {
    auto& lg = Logger::get();
    if (!lg.enabled(module, l)) return;
    lg.write(module, l, fmt::format(f, std::forward<Args>(args)...));
}

} // namespace edgepair::obs

// The level is checked before the arguments are evaluated: a debug line's arguments (a redacted target, a
// formatted address) must cost nothing on a hot path when debug is off.
#define EP_LOG_AT(lvl, module, ...)                                                                          \
    do {                                                                                                     \
        if (::edgepair::obs::Logger::get().enabled(module, ::edgepair::obs::Level::lvl))                     \
            ::edgepair::obs::log(module, ::edgepair::obs::Level::lvl, __VA_ARGS__);                          \
    } while (0)
#define EP_TRACE(module, ...) EP_LOG_AT(Trace, module, __VA_ARGS__)
#define EP_DEBUG(module, ...) EP_LOG_AT(Debug, module, __VA_ARGS__)
#define EP_INFO(module, ...) EP_LOG_AT(Info, module, __VA_ARGS__)
#define EP_WARN(module, ...) EP_LOG_AT(Warn, module, __VA_ARGS__)
#define EP_ERROR(module, ...) EP_LOG_AT(Error, module, __VA_ARGS__)
