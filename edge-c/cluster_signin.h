#pragma once
// Sign-in state shared by the edge-c peers of a cluster through Redis (issue #17): the one owner of it.
//
// Without it each edge-c keeps to itself what a sign-in leaves behind, and with two peers behind the edge-e
// peers a client's requests land on either: an assertion replayed through the other peer was accepted, the
// answer to an AuthnRequest sent by one peer was unsolicited on the other, and a password change seen by one
// peer did not retire the old tokens on the other. With `cluster.redis`, under the prefix edgepair:<name>:
//   saml:assertion:<id>          "1", SET NX until the assertion's NotOnOrAfter: NX refused = a replay
//   saml:request:<id>            the domain, SET when the AuthnRequest is sent (PX sso.request_lifetime),
//                                taken with GETDEL when a Response names it (InResponseTo)
//   stamp:<deployment>:<user>    "2 <key id> <stamp hex> <seen_ms> <origin> <node> <mac>" (PX the token
//                                lifetime), and on the channel <prefix>stamps the same followed by
//                                " stamp:<d>:<u>". <node>: the Unified CM node that answered the check, so
//                                that a peer can let the check answer for its own (CredentialStamps::vouch);
//                                <mac>: HMAC-SHA256 over the key suffix and the record, with a key derived
//                                from the token key file, so that nobody but a peer can make one or move a
//                                time forward. Version 1 (no node, no MAC; edgepair before 2026-12-07) is
//                                still read: it retires old tokens but vouches for nothing.
// (<deployment> percent-encoded so that the first ':' ends it; <key id> names the edge token key the stamp
// was made with: a peer with another key ignores it rather than take every token for stale.)
// And on the channel <prefix>tally, batched every tally_flush_ms (common/cluster/tally.h): the tokens this
// peer's per-user limiters took (credentials.max_failures, max_authorizations), which every other peer takes
// from its own buckets, so that the limits hold for the cluster and not per peer. Redis away: not shared
// (each peer limits alone, counted as fallback "tally").
//
// The local memory (SamlReplayCache, the workers' CredentialStamps) stays in use whatever Redis does: an
// assertion or request is checked in both, a stamp always reaches this peer's workers first. Redis
// unreachable or slower than the check timeout: the local answer alone decides (as without a cluster),
// counted by `fallback`; what was decided locally meanwhile is pushed when Redis is back.
//
// Threads: everything, construction and destruction included, on one loop (edge-c's main loop), the
// SamlReplayCache given included. Nothing here waits: a check hands its answer to a callback.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/cluster/redis_conn.h"
#include "common/cluster/tally.h"
#include "common/core/loop.h"
#include "common/crypto/digest.h"
#include "edge-c/edge_token.h"
#include "edge-c/saml_sp.h"

namespace edgepair::edge_c {

// The wire forms above; no I/O (unit-tested apart from Redis).
namespace signin_wire {
struct Stamp {
    std::string deployment, user;
    std::string key_id;
    CredentialStamp stamp{};
    uint64_t seen_ms = 0;
    std::string origin;
    std::string node; // empty from a version-1 record
};
// "stamp:<encoded deployment>:<user>", under the prefix.
std::string stamp_key_suffix(std::string_view deployment, std::string_view user);
// `key` signs the record (version 2, with the node); null, or no node: version 1, unsigned.
std::string encode_stamp_record(const Stamp& s, const crypto::HmacSha256* key);
std::string encode_stamp_message(const Stamp& s, const crypto::HmacSha256* key);
// nullopt for anything malformed (a peer's bug or a hostile writer must not reach the workers' memory).
// A version-2 record whose MAC does not verify under `key` (or with no key) is refused like a malformed one.
std::optional<Stamp> decode_stamp_record(std::string_view key_suffix, std::string_view value,
                                         const crypto::HmacSha256* key);
std::optional<Stamp> decode_stamp_message(std::string_view text, const crypto::HmacSha256* key);
// What the workers' CredentialStamps compare a token with only means something under the same key.
std::string stamp_key_id(const EdgeTokenSealer& sealer);
} // namespace signin_wire

class ClusterSignin {
  public:
    struct Options {
        cluster::RedisSettings redis;
        std::string prefix; // "edgepair:<cluster.name>:"
        std::string origin; // this process, unique among the peers
        // How long a sign-in waits for Redis before the local memory decides alone.
        uint64_t check_timeout_ms = 500;
        // Decisions made locally while Redis was away, kept to push when it returns (per kind).
        size_t max_pending = 10000;
        // How long limiter takes wait to be published together: one PUBLISH per interval, not per sign-in.
        uint64_t tally_flush_ms = 50;
    };
    struct Hooks {
        // A password stamp a peer saw: heard on the channel, or read back after a (re)connect.
        std::function<void(const signin_wire::Stamp&)> stamp;
        // Tokens a peer's per-user limiter took (a batch of them: entry.count).
        std::function<void(const cluster::TallyEntry&)> tally;
        // A decision made without Redis: "assertion", "request", "stamp" or "tally".
        std::function<void(const char* what)> fallback;
        std::function<void()> command_failed;
        // Both connections up, or not (with why); on changes only, and once at the first failure.
        std::function<void(bool up, const std::string& why)> state;
    };
    ClusterSignin(core::Loop& loop, std::shared_ptr<SamlReplayCache> local, Options o, Hooks h);
    ~ClusterSignin();
    ClusterSignin(const ClusterSignin&) = delete;
    ClusterSignin& operator=(const ClusterSignin&) = delete;

    void start();
    bool up() const { return up_; }
    std::string redis_address() const;
    std::string last_error() const;
    // The token key (at start, and after a reload with another credentials.token_key_file): its id, and the
    // key stamp records are signed with (EdgeTokenSealer::cluster_doc_key).
    void set_keys(std::string key_id, const std::string& mac_key);

    // An AuthnRequest this peer sent: any peer may take its answer, once.
    void remember_request(const std::string& id, const std::string& domain, int64_t expires_s, int64_t now_s);
    // SamlReplayCache::admit across the peers: Replay when any peer accepted the assertion before,
    // Unsolicited when no peer has an open request of this domain it answers. `done` runs on the loop, once.
    using Admitted = std::function<void(std::optional<SamlRefusal>, std::string detail)>;
    void admit(const SamlIdentity& id, const std::string& domain, int64_t now_s, Admitted done);
    // A password check Unified CM answered here (the workers of this peer have it already).
    void share_stamp(const std::string& deployment, const std::string& user, const CredentialStamp& stamp,
                     uint64_t seen_ms, uint64_t ttl_ms, const std::string& node);

    // A token this peer's limiter `kind` took for `key`: the other peers take it too (batched).
    void tally(std::string_view kind, std::string_view key);

    // Tests: what waits for Redis to return.
    size_t pending() const {
        return pending_assertions_.size() + pending_requests_.size() + pending_stamps_.size();
    }

  private:
    struct Check;
    struct Resync;
    void finish(const std::shared_ptr<Check>& c, bool answered);
    void conn_changed(const std::string& why);
    void on_message(const cluster::Reply& r);
    void scan(std::shared_ptr<Resync> rs);
    void resynced(const std::shared_ptr<Resync>& rs);
    void push_stamp(const signin_wire::Stamp& s, uint64_t ttl_ms);
    void keep_stamp(const signin_wire::Stamp& s, uint64_t ttl_ms);
    void flush_tally();
    void on_tally(const std::string& payload);

    core::Loop& loop_;
    std::shared_ptr<SamlReplayCache> local_;
    Options o_;
    Hooks h_;
    std::string key_id_;
    std::unique_ptr<crypto::HmacSha256> mac_;
    std::unique_ptr<cluster::RedisConn> cmd_, sub_;
    bool up_ = false;
    std::optional<bool> reported_;
    uint64_t session_ = 0; // bumped on every (re)connect: a resync of an older session is abandoned
    // Decided here while Redis was away. Assertions and requests by ID (expiry, wall-clock seconds).
    std::unordered_map<std::string, int64_t> pending_assertions_;
    std::unordered_map<std::string, std::pair<std::string, int64_t>> pending_requests_; // domain, expiry
    struct PendingStamp {
        signin_wire::Stamp s;
        uint64_t until_ms = 0; // wall clock
    };
    std::unordered_map<std::string, PendingStamp> pending_stamps_; // by key suffix
    cluster::TallyBatch tally_;
    std::unique_ptr<core::Timer> tally_timer_;
};

} // namespace edgepair::edge_c
