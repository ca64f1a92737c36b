#pragma once
// One Driver per worker thread: it owns that thread's share of the connections and runs the scenario on
// the worker's loop. Nothing is shared between drivers during a run except the read-only Shared block and
// the once-per-second published snapshot of each driver's Stats.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/core/loop.h"
#include "common/net/address.h"
#include "common/net/tls_context.h"
#include "tools/edge-load/options.h"
#include "tools/edge-load/runner.h"
#include "tools/edge-load/stats.h"

namespace edgepair::load {

// Monotonic nanoseconds (the loop's cached millisecond clock is too coarse for µs latencies).
uint64_t now_ns();

struct Shared {
    const Options* opt = nullptr;
    std::shared_ptr<net::TlsClientContext> tls; // null for --plain
    net::SockAddr addr;
    std::string tls_name; // handed to new_ssl: SNI and the name verified
    std::string request;  // the request bytes, built once
    // sign-in: every --target's address and TLS name, and the sign-in counter that spreads sign-ins over
    // targets, users and source addresses the same way whatever thread runs them.
    std::vector<net::SockAddr> targets;
    std::vector<std::string> target_names;
    std::atomic<uint64_t> signin_seq{0};

    std::atomic<unsigned> ramped{0}; // idle: drivers that have tried all their connections
    std::mutex mu;
    std::condition_variable cv;
    unsigned finished = 0; // guarded by mu

    // A driver's last act on its own thread: main() waits for every driver to call it.
    void driver_finished() {
        {
            std::lock_guard<std::mutex> lk(mu);
            ++finished;
        }
        cv.notify_all();
    }
};

struct Plan {
    uint64_t ops = UINT64_MAX; // operations this driver may start (its share of --requests)
    unsigned slots = 1;        // its share of --connections
    double rate = 0;           // its share of --rate
    uint64_t phase_ns = 0;     // offset of its first arrival, so drivers' arrivals interleave
    uint64_t deadline_ns = 0;  // absolute now_ns() at which it stops
    unsigned first_slot = 0;   // global index of its first connection (--user %d, XMPP resources)
};

class Driver : public Runner {
  public:
    Driver(core::Loop& loop, Shared& shared, Plan plan);
    ~Driver() override;
    Driver(const Driver&) = delete;
    Driver& operator=(const Driver&) = delete;

    void start() override; // on the loop's thread
    // On the loop's thread: end the run now, as the deadline would (SIGINT/SIGTERM).
    void stop_now() override {
        if (!finished_) on_deadline();
    }
    // Thread-safe: the stats as of the last once-per-second publish (or the final ones).
    Stats snapshot() const override;
    // After the worker thread has been joined.
    const Stats& final_stats() const override { return stats_; }

  private:
    struct Slot;
    enum class SlotState { Free, Connecting, Ready, Busy, Closing, Done };

    bool open_loop() const { return plan_.rate > 0; }
    void kick(Slot& s);
    void kick_later(Slot& s, uint64_t ms);
    void begin_op(Slot& s, uint64_t t_sched);
    void open_conn(Slot& s);
    void send_request(Slot& s);
    void on_ready(Slot& s);
    void on_data(Slot& s, const char* data, size_t len);
    void on_close(Slot& s, std::string_view why);
    void on_timeout(Slot& s);
    bool complete_op(Slot& s, int status); // true when it counts as a success
    void fail_op(Slot& s, ErrKind k);
    void slot_done(Slot& s);
    void maybe_finish();
    void tick();
    void ramp();
    void ramp_step_done();
    void publish();
    void on_deadline();
    void finish();

    core::Loop& loop_;
    Shared& sh_;
    const Options& opt_;
    Plan plan_;
    Stats stats_;
    std::vector<std::unique_ptr<Slot>> slots_;
    unsigned active_slots_ = 0; // slots not Done
    uint64_t ops_left_;
    uint64_t timeout_ms_;
    // open loop
    uint64_t next_arrival_ = 0;
    uint64_t interval_ns_ = 0;
    std::deque<uint64_t> backlog_; // scheduled times of arrivals waiting for a free slot
    std::vector<Slot*> waiting_;   // slots with nothing to do
    // idle
    unsigned ramp_next_ = 0, ramp_in_flight_ = 0;
    bool ramp_reported_ = false;
    unsigned open_ = 0; // connections alive

    std::unique_ptr<core::Timer> tick_timer_, publish_timer_, deadline_timer_, grace_timer_;
    bool stopping_ = false, finished_ = false;
    mutable std::mutex pub_mu_;
    Stats published_;
};

} // namespace edgepair::load
