#pragma once
// Imported allow-list rules shared by the edge-c peers of a cluster through Redis (issue #17): the one owner
// of that sharing.
//
// Without it, rules uploaded to one edge-c (POST /allowlist/rules) reached only that peer's snapshot, and
// every edge-e got two allow lists from two edge-c peers, taking whichever arrived last. With
// `cluster.redis`, under the prefix edgepair:<name>:
//   allowlist:imported   "1 <version_ms> <origin>\n<rules CSV>" (no expiry): the newest import of any peer
//   channel allowlist    the same text, when a peer imports
// <version_ms> is the wall-clock time of the import. A peer adopts a newer version (checks it against its own
// deployments, saves it to its allow_list.rules_file, republishes its snapshot), ignores an older one, and
// after every (re)connect compares with what Redis holds: the newer of the two wins, in Redis and here (so
// rules imported while Redis was away are pushed when it returns). Equal versions are ordered by origin, so
// every peer settles on the same text. The last import wins: two operators importing on two peers at once
// get one of the two, everywhere.
//
// Threads: everything on one loop (edge-c's main loop, where the allow-list admin routes run).
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/cluster/redis_conn.h"
#include "common/core/loop.h"

namespace edgepair::edge_c {

namespace rules_wire {
struct Imported {
    uint64_t version_ms = 0;
    std::string origin;
    std::string csv;
};
inline constexpr size_t kMaxCsvBytes = 8 * 1024 * 1024;
std::string encode(const Imported& r);
std::optional<Imported> decode(std::string_view text); // nullopt for anything malformed
// Whether `a` replaces `b`: newer, or as new from a greater origin.
bool newer(const Imported& a, uint64_t b_version_ms, std::string_view b_origin);
} // namespace rules_wire

class ClusterRules {
  public:
    struct Options {
        cluster::RedisSettings redis;
        std::string prefix; // "edgepair:<cluster.name>:"
        std::string origin; // this process, unique among the peers
    };
    struct Hooks {
        // What this peer holds: its imported rules as CSV, their version and who imported them.
        std::function<rules_wire::Imported()> local;
        // A newer import from a peer (or found in Redis). The owner checks, saves and applies it; an error
        // (rules naming a deployment this peer does not have, a disk error) keeps this peer's rules, and is
        // logged by the owner.
        std::function<void(const rules_wire::Imported&)> adopt;
        std::function<void()> command_failed;
    };
    ClusterRules(core::Loop& loop, Options o, Hooks h);
    ~ClusterRules();
    ClusterRules(const ClusterRules&) = delete;
    ClusterRules& operator=(const ClusterRules&) = delete;

    void start();
    bool up() const;
    // After an import on this peer (hooks.local() already answers it): written to Redis and announced. Redis
    // away: pushed when it returns (the reconnect compares versions).
    void share();

  private:
    void conn_changed();
    void on_message(const cluster::Reply& r);
    void consider(const rules_wire::Imported& r);
    void push(const rules_wire::Imported& r);

    core::Loop& loop_;
    Options o_;
    Hooks h_;
    std::unique_ptr<cluster::RedisConn> cmd_, sub_;
    bool synced_ = false; // compared with Redis since the last (re)connect
};

} // namespace edgepair::edge_c
