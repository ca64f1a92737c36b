#pragma once
// Intrusion-protection bans shared by the edge-e peers of a cluster through Redis (issue #17).
//
// A layer over the process's LocalBanStore, which still counts failures and decides bans on its own (the
// detectors' windows stay per peer: a failure never waits on Redis). What it adds:
//   - a ban made here is written to Redis (SET <prefix>ban:<addr> ... PX) and published (<prefix>bans);
//   - every peer subscribes on its own connection and adopts the bans and lifts of the others;
//   - on every (re)connect a peer reads what Redis holds (SCAN), adopts it, and pushes its own active bans
//     and the lifts it made while Redis was away (common/cluster/ban_sync.h has the rules);
//   - a lift here deletes the ban in Redis, leaves a tombstone, and is published;
//   - the failures counted here below a ban are published on <prefix>intrusion, batched every 50 ms
//     (common/cluster/tally.h, kind = the category's name, key = the address), and every other peer adds
//     them to its own windows (Detector::count_remote): an attacker spreading failures over P peers is
//     banned after the threshold in all, not P times it. Pub/sub only: a peer that was away misses them.
// Redis down: bans are made, held and lifted locally as without a cluster; nothing is refused for it.
//
// Threads: record_failure on any worker, on failure paths only (as LocalBanStore); everything that talks to
// Redis runs on the loop given (edge-e's main loop), reached by posting. bans(), lift() and tracked() are
// for the admin routes on that loop. The per-worker BanViews are kept current by the listener, as without a
// cluster, so the accept path never sees Redis or a lock.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "common/cluster/ban_sync.h"
#include "common/cluster/redis_conn.h"
#include "common/cluster/tally.h"
#include "common/core/loop.h"
#include "common/protection/ban_store.h"

namespace edgepair::cluster {

class ClusterBanStore final : public protection::BanStore {
  public:
    struct Options {
        RedisSettings redis;
        std::string prefix; // "edgepair:<cluster.name>:"
        std::string origin; // this process, unique among the peers (node name and a random id)
        uint64_t tally_flush_ms = 50;
    };
    struct Hooks {
        // Redis usable (both connections) or not; `why` says what failed. Runs on the loop, on changes only
        // (and once at the first failure to connect).
        std::function<void(bool up, const std::string& why)> state;
        std::function<void()> command_failed;
    };
    ClusterBanStore(core::Loop& loop, protection::Settings s, Options o, Hooks h);
    ~ClusterBanStore() override;

    // On the loop: connect (and keep reconnecting).
    void start();
    bool up() const { return up_.load(); }
    std::string redis_address() const;
    std::string last_error() const; // the loop only

    void set_listener(Listener l) override;
    void apply(const protection::Settings& s) override { local_.apply(s); }
    protection::Outcome record_failure(protection::Category c, const std::string& address,
                                       uint64_t now_ms) override;
    std::vector<protection::Ban> bans(uint64_t now_ms) override { return local_.bans(now_ms); }
    bool lift(const std::string& address, uint64_t now_ms) override;
    size_t tracked() override { return local_.tracked(); }
    const char* kind() const override { return "redis"; }

  private:
    void conn_changed(const std::string& why);
    void own_ban(const protection::Ban& b);
    void push_ban(const protection::Ban& b);
    void push_lift(const std::string& address, uint64_t lifted_at_ms, uint64_t forget_ms, bool delete_ban);
    void on_message(const Reply& r);
    void apply_remote_ban(const protection::Ban& b, uint64_t now_ms);
    void apply_remote_lift(const std::string& address, uint64_t lifted_at_ms, uint64_t now_ms);
    void tally(protection::Category c, const std::string& address);
    void flush_tally();
    void on_tally(const std::string& payload);
    // The load after a (re)connect: SCAN in pages, MGET each page, then converge.
    struct Load;
    void scan(std::shared_ptr<Load> l);
    void loaded(std::shared_ptr<Load> l);

    core::Loop& loop_;
    protection::LocalBanStore local_;
    Listener listener_;
    Options o_;
    Hooks h_;
    BanLedger ledger_;
    std::unique_ptr<RedisConn> cmd_, sub_;
    std::atomic<bool> up_{false};
    std::optional<bool> reported_;
    uint64_t session_ = 0; // bumped on every (re)connect: a load of an older session is abandoned
    core::Timer expire_timer_;
    TallyBatch tally_; // the loop only
    core::Timer tally_timer_;
};

} // namespace edgepair::cluster
