#pragma once
// The driver of the session scenarios (sip-register, xmpp, mra-login). Like Driver it owns one thread's
// share of the clients and runs them on that thread's loop, closed loop (each client starts its next
// operation --interval after the last) or open loop (--rate arrivals handed to free clients, latency from
// the scheduled time). Unlike Driver, a client here is a session that has to be set up before it can serve
// operations (a TLS connection for SIP, a whole login for XMPP) and that is set up again if it is lost.
#include <deque>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "common/core/loop.h"
#include "common/net/dns.h"
#include "tools/edge-load/driver.h"
#include "tools/edge-load/mra_login.h"
#include "tools/edge-load/runner.h"
#include "tools/edge-load/sip_client.h"
#include "tools/edge-load/xmpp_client.h"

namespace edgepair::load {

// Names of Stats::steps for a scenario (empty: no per-step latencies).
std::vector<std::string> step_names(Scenario s);

class SessionDriver : public Runner {
  public:
    SessionDriver(core::Loop& loop, Shared& shared, Plan plan);
    ~SessionDriver() override;
    SessionDriver(const SessionDriver&) = delete;
    SessionDriver& operator=(const SessionDriver&) = delete;

    void start() override;
    void stop_now() override { on_deadline(); }
    Stats snapshot() const override;
    const Stats& final_stats() const override { return stats_; }

  private:
    struct Slot;

    bool open_loop() const { return plan_.rate > 0; }
    bool usable(const Slot& s) const;
    void establish(Slot& s);
    void session_up(Slot& s);
    void session_lost(Slot& s, ErrKind k, std::string_view why);
    void kick(Slot& s);
    void begin_op(Slot& s, uint64_t t_sched);
    void begin_sign_in(Slot& s);
    // `end_ns`: when the operation ended, if before now (mra-login: its sign-out is not part of it).
    void complete_op(Slot& s, uint64_t end_ns = 0);
    void fail_op(Slot& s, ErrKind k, std::string_view why);
    void after_op(Slot& s, uint64_t delay_ms);
    void on_op_timeout(Slot& s);
    void on_keepalive(Slot& s);
    void on_xmpp_message(Slot& receiver, std::string_view id, bool error);
    void slot_done(Slot& s);
    void maybe_finish();
    void tick();
    void ramp();
    void publish();
    void on_deadline();
    void finish();
    void note(ErrKind k, std::string_view why);
    uint64_t interval_ms(const Slot& s) const;
    void bury(Slot& s);

    core::Loop& loop_;
    Shared& sh_;
    const Options& opt_;
    Plan plan_;
    Stats stats_;
    std::mt19937_64 rng_;
    std::unique_ptr<net::Resolver> resolver_;
    std::vector<std::unique_ptr<Slot>> slots_;
    unsigned active_slots_ = 0;
    uint64_t ops_left_;
    uint64_t timeout_ms_;
    uint64_t keepalive_ms_;
    uint64_t next_arrival_ = 0, interval_ns_ = 0;
    std::deque<uint64_t> backlog_;
    std::vector<Slot*> waiting_;
    std::deque<Slot*> to_establish_; // sessions waiting for a ramp place
    unsigned establishing_ = 0;
    unsigned notes_ = 0; // error reasons printed so far
    // Clients finished inside their own callbacks, freed on a later loop turn.
    std::vector<std::unique_ptr<SipClient>> dead_sip_;
    std::vector<std::unique_ptr<XmppClient>> dead_xmpp_;
    std::vector<std::unique_ptr<MraLogin>> dead_login_;
    std::unique_ptr<core::Timer> tick_timer_, publish_timer_, deadline_timer_, grace_timer_, reap_timer_;
    bool stopping_ = false, finished_ = false;
    mutable std::mutex pub_mu_;
    Stats published_;
};

} // namespace edgepair::load
