#include "common/app/sd_notify.h"

#include <fmt/format.h>

#include <cstdlib>
#include <ctime>
#include <system_error>

#include "common/obs/log.h"

#ifdef EDGEPAIR_HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

namespace edgepair::app {

SystemdNotifier::SystemdNotifier() {
#ifdef EDGEPAIR_HAVE_LIBSYSTEMD
    const char* sock = std::getenv("NOTIFY_SOCKET");
    enabled_ = sock && *sock;
    uint64_t usec = 0;
    // 0 leaves WATCHDOG_USEC/WATCHDOG_PID in the environment: nothing this process starts should ping.
    if (enabled_ && sd_watchdog_enabled(0, &usec) > 0) watchdog_ms_ = usec / 1000;
#endif
}

void SystemdNotifier::ready() {
    send("READY=1\nSTATUS=ready");
}

void SystemdNotifier::reloading() {
    // systemd 253 and later want the CLOCK_MONOTONIC time of the reload request with RELOADING=1 (so a
    // Type=notify-reload unit can match it to its own signal); earlier versions ignore it.
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    send(fmt::format("RELOADING=1\nSTATUS=reloading\nMONOTONIC_USEC={}",
                     uint64_t(ts.tv_sec) * 1000000 + uint64_t(ts.tv_nsec) / 1000));
}

void SystemdNotifier::stopping() {
    send("STOPPING=1\nSTATUS=draining");
}

void SystemdNotifier::watchdog() {
    if (watchdog_ms_) send("WATCHDOG=1");
}

void SystemdNotifier::status(std::string_view text) {
    std::string line(text);
    for (auto& c : line)
        if (c == '\n' || c == '\r') c = ' ';
    send("STATUS=" + line);
}

void SystemdNotifier::send(const std::string& state) {
    if (!enabled_) return;
#ifdef EDGEPAIR_HAVE_LIBSYSTEMD
    if (int r = sd_notify(0, state.c_str()); r < 0 && !warned_) {
        warned_ = true;
        EP_WARN("systemd", "sd_notify(\"{}\") to $NOTIFY_SOCKET failed: {}",
                state.substr(0, state.find('\n')), std::system_category().message(-r));
    }
#else
    (void)state;
#endif
}

} // namespace edgepair::app
