#pragma once
// What main() needs from a per-thread load driver, whichever scenario family it runs: Driver (one request
// or handshake per operation) or SessionDriver (long-lived SIP/XMPP sessions, MRA sign-ins).
#include "tools/edge-load/stats.h"

namespace edgepair::load {

class Runner {
  public:
    virtual ~Runner() = default;
    virtual void start() = 0;    // on the loop's thread
    virtual void stop_now() = 0; // on the loop's thread: end the run now, as the deadline would
    // Thread-safe: the stats as of the last once-per-second publish (or the final ones).
    virtual Stats snapshot() const = 0;
    // After the worker thread has been joined.
    virtual const Stats& final_stats() const = 0;
};

} // namespace edgepair::load
