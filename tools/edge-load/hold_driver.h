#pragma once
// The hold scenario: --connections TLS connections, each bound to its own loopback source address from
// --source-range, each leaving a request that costs the server something and never finishes (a half-sent
// head, a refused request whose announced body never arrives, HTTP/2 streams with unfinished bodies). It
// measures what a server does about them: how many it lets stand, which it answers, which it closes and
// when. One HoldDriver per worker thread, as Driver.
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "common/core/loop.h"
#include "tools/edge-load/driver.h"
#include "tools/edge-load/options.h"
#include "tools/edge-load/runner.h"
#include "tools/edge-load/stats.h"

namespace edgepair::load {

// The bytes each hold mode sends. Built once and shared read-only by every driver.
struct HoldRequest {
    std::string first;    // h1: the partial request; h2: preface + SETTINGS (no streams)
    std::string h2_block; // h2: the HPACK header block of one stream's request (same for every stream)
    std::string h2_body;  // h2: the body bytes each stream sends (before --trickle)
};
HoldRequest build_hold_request(const Options& o);

class HoldDriver : public Runner {
  public:
    HoldDriver(core::Loop& loop, Shared& shared, const HoldRequest& req, Plan plan);
    ~HoldDriver() override;
    HoldDriver(const HoldDriver&) = delete;
    HoldDriver& operator=(const HoldDriver&) = delete;

    void start() override;
    void stop_now() override {
        if (!finished_) on_deadline();
    }
    Stats snapshot() const override;
    const Stats& final_stats() const override { return stats_; }

  private:
    struct Slot;
    void ramp();
    void open(Slot& s);
    void on_ready(Slot& s);
    void on_data(Slot& s, const char* data, size_t len);
    void on_h1_data(Slot& s, const char* data, size_t len);
    void on_h2_data(Slot& s, const char* data, size_t len);
    void on_close(Slot& s, std::string_view why);
    void on_setup_timeout(Slot& s);
    void setup_done(Slot& s, bool ok);
    void trickle();
    void publish();
    void on_deadline();
    void finish();

    core::Loop& loop_;
    Shared& sh_;
    const Options& opt_;
    const HoldRequest& req_;
    Plan plan_;
    Stats stats_;
    std::vector<std::unique_ptr<Slot>> slots_;
    std::deque<Slot*> pending_; // slots waiting for a set-up turn (first round, then --reopen)
    std::deque<std::pair<uint64_t, Slot*>> reopen_at_; // (now_ns due, slot), in due order
    unsigned in_flight_ = 0;                           // set-ups under way
    unsigned first_round_left_;                        // slots not yet tried once
    unsigned open_ = 0;                                // connections alive
    uint64_t start_ns_ = 0;
    std::unique_ptr<core::Timer> ramp_timer_, publish_timer_, deadline_timer_, trickle_timer_;
    bool finished_ = false;
    mutable std::mutex pub_mu_;
    Stats published_;
};

} // namespace edgepair::load
