#pragma once
// One document the peers of a cluster keep the same through Redis (issue #17): the newest version wins, in
// Redis and on every peer. edge-c shares two with it: its imported allow-list rules and its discovery result.
//
// Under the prefix edgepair:<name>:
//   <key>        "1 <version_ms> <origin> <mac>\n<text>" (no expiry): the newest version any peer shared,
//                signed (<mac>: HMAC-SHA256 with a key all peers share, Options::mac_key)
//   channel <channel>   the same, when a peer shares a new version
// <version_ms> is the wall-clock time the version was made (an import, a discovery run). A peer hands a newer
// version to its owner (`adopt`), ignores an older one, and after every (re)connect compares with what Redis
// holds: the newer of the two wins, in Redis and here (what changed while Redis was away is pushed when it
// returns). A peer that hears an older version than its own writes its own back over it. Equal versions are
// ordered by origin, so every peer settles on the same text. The last version wins: two changes on two peers
// at once end as one of the two everywhere.
//
// Threads: everything on one loop (edge-c's main loop).
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/cluster/redis_conn.h"
#include "common/core/loop.h"
#include "common/crypto/digest.h"

namespace edgepair::cluster {

namespace doc_wire {
struct Doc {
    uint64_t version_ms = 0; // 0: this peer has nothing to share
    std::string origin;
    std::string text;
    std::string mac; // on the wire: HMAC-SHA256 (hex) of the key name, version, origin and text
};
inline constexpr size_t kMaxTextBytes = 8 * 1024 * 1024;
std::string encode(const Doc& d);
// The MAC `d.mac` must hold for a document shared under `name` (Options::key).
std::string mac(const crypto::HmacSha256& key, std::string_view name, const Doc& d);
std::optional<Doc> decode(std::string_view text); // nullopt for anything malformed
// Whether `a` replaces `b`: newer, or as new from a greater origin.
bool newer(const Doc& a, uint64_t b_version_ms, std::string_view b_origin);
} // namespace doc_wire

class SharedDoc {
  public:
    struct Options {
        RedisSettings redis;
        std::string prefix;  // "edgepair:<cluster.name>:"
        std::string origin;  // this process, unique among the peers
        std::string key;     // under the prefix, e.g. "allowlist:imported"
        std::string channel; // under the prefix, e.g. "allowlist"
        std::string what;    // for logs, e.g. "imported allow-list rules"
        // 32 secret bytes every peer has (edge-c: derived from credentials.token_key_file). Every document is
        // signed with it and one that does not verify is ignored: a Redis writer cannot plant rules or nodes.
        // Empty: nothing is shared (logged).
        std::string mac_key;
    };
    struct Hooks {
        // What this peer holds: the text, its version and the peer that made it.
        std::function<doc_wire::Doc()> local;
        // A newer version from a peer (or found in Redis). The owner checks and applies it; what it refuses
        // (it logs why) leaves this peer's version as it was.
        std::function<void(const doc_wire::Doc&)> adopt;
        std::function<void()> command_failed;
    };
    SharedDoc(core::Loop& loop, Options o, Hooks h);
    ~SharedDoc();
    SharedDoc(const SharedDoc&) = delete;
    SharedDoc& operator=(const SharedDoc&) = delete;

    void start();
    bool up() const;
    // After a change on this peer (hooks.local() already answers it): written to Redis and announced. Redis
    // away: pushed when it returns (the reconnect compares versions).
    void share();

  private:
    void conn_changed();
    void on_message(const Reply& r);
    void consider(const doc_wire::Doc& d);
    void push(const doc_wire::Doc& d);
    std::optional<doc_wire::Doc> open(std::string_view text, const char* where) const;

    core::Loop& loop_;
    Options o_;
    Hooks h_;
    std::unique_ptr<RedisConn> cmd_, sub_;
    std::unique_ptr<crypto::HmacSha256> mac_;
    bool synced_ = false; // compared with Redis since the last (re)connect
};

} // namespace edgepair::cluster
