#pragma once
// The service manager's notification protocol (sd_notify(3)): readiness, reload, stop, watchdog pings and a
// one-line status for `systemctl status`. Without $NOTIFY_SOCKET (not started by systemd, or a unit that is
// not Type=notify), or when built without libsystemd, every call does nothing, so the edges run the same
// anywhere.
#include <cstdint>
#include <string>
#include <string_view>

namespace edgepair::app {

class SystemdNotifier {
  public:
    // Reads the environment once: the service manager sets it before exec and never changes it.
    SystemdNotifier();

    // Whether anyone listens: false means the calls below are no-ops.
    bool enabled() const { return enabled_; }
    // The watchdog period the unit asked for (WatchdogSec=), 0 when none. Pings are due well within it.
    uint64_t watchdog_ms() const { return watchdog_ms_; }

    void ready();
    // Before a reload: the service manager then waits for ready() again, which must follow once the reload
    // ended, whether it was applied or refused.
    void reloading();
    void stopping();
    void watchdog();
    // One line (newlines are replaced) shown as "Status:" by systemctl.
    void status(std::string_view text);

  private:
    void send(const std::string& state);

    bool enabled_ = false;
    uint64_t watchdog_ms_ = 0;
    bool warned_ = false; // a failure is logged once, not at every ping
};

} // namespace edgepair::app
