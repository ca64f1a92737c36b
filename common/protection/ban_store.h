#pragma once
// Where intrusion-protection state lives: failures and bans behind one small interface, so that the
// detectors in edge-e's sessions never know whether bans are kept in this process (LocalBanStore) or shared
// by every edge-e peer of a cluster (cluster::ClusterBanStore, common/cluster, over a LocalBanStore).
//
// Threads: record_failure is called from any worker, but only on a failure path (a refused request, a
// protocol violation), never for a request that succeeds. LocalBanStore takes one mutex there. The check a
// connection pays on the success path is BanView::banned, a per-worker table without a lock, which the
// store's listener keeps current by posting every new ban and lift to each worker's loop.
//
// Times are the loops' clock (core::Loop::now_ms: wall-clock milliseconds, cached per turn), so a ban's end
// means the same instant on every worker and, later, on every peer.
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/protection/detector.h"

namespace edgepair::protection {

class BanStore {
  public:
    struct Listener {
        std::function<void(const Ban&)> banned;         // a new ban (log it once, count it, tell workers)
        std::function<void(const std::string&)> lifted; // an address lifted by hand here (tell workers)
        // Cluster only: a ban made by another peer, and a lift made on another peer (tell workers; count the
        // ban as a peer's, not as one more ban: its maker counted and logged it).
        std::function<void(const Ban&)> adopted;
        std::function<void(const std::string&)> lifted_by_peer;
    };
    virtual ~BanStore() = default;
    // Before the first failure; the callbacks run on the thread that caused the event, outside any lock.
    virtual void set_listener(Listener l) = 0;
    virtual void apply(const Settings& s) = 0;
    // A store that decides elsewhere (Redis) answers Counted and reports the ban through the listener later.
    virtual Outcome record_failure(Category c, const std::string& address, uint64_t now_ms) = 0;
    virtual std::vector<Ban> bans(uint64_t now_ms) = 0;
    virtual bool lift(const std::string& address, uint64_t now_ms) = 0;
    virtual size_t tracked() = 0;
    // "local", or "redis" for a store shared by the peers of a cluster (/status).
    virtual const char* kind() const { return "local"; }
};

// The bans of one edge-e process, shared by its workers.
class LocalBanStore final : public BanStore {
  public:
    explicit LocalBanStore(Settings s = {}) : d_(std::move(s)) {}
    void set_listener(Listener l) override { listener_ = std::move(l); }
    void apply(const Settings& s) override;
    Outcome record_failure(Category c, const std::string& address, uint64_t now_ms) override;
    std::vector<Ban> bans(uint64_t now_ms) override;
    bool lift(const std::string& address, uint64_t now_ms) override;
    size_t tracked() override;
    // The cluster's ways in (common/cluster): a peer's ban, a peer's lift (listener.adopted and
    // listener.lifted_by_peer, not listener.banned or listener.lifted), and one address's active ban.
    bool adopt(const Ban& b, uint64_t now_ms);
    bool lift_by_peer(const std::string& address, uint64_t now_ms);
    void count_remote(Category c, const std::string& address, uint32_t n, uint64_t now_ms);
    std::optional<Ban> ban_of(const std::string& address, uint64_t now_ms);

  private:
    std::mutex mu_; // failure path and admin only
    Detector d_;
    Listener listener_;
};

// One worker's copy of the active bans: read on every accept and request boundary, written only by the
// ban store's posts to this worker's loop. Expired entries are dropped when met.
class BanView {
  public:
    void add(const std::string& address, uint64_t until_ms);
    void remove(const std::string& address) { until_.erase(address); }
    bool empty() const { return until_.empty(); }
    bool banned(const std::string& address, uint64_t now_ms);
    size_t size() const { return until_.size(); }

  private:
    std::unordered_map<std::string, uint64_t> until_;
};

} // namespace edgepair::protection
