#pragma once
// Shared bans (issue #17): what edge-e peers write to Redis and to each other, and the rules by which a peer
// converges after it lost Redis for a while. No I/O and no clock here (times are passed in), so that the
// rules are unit-tested apart from Redis (tests/unit/cluster).
//
// In Redis, under the cluster's prefix (edgepair:<cluster.name>:):
//   ban:<address>   "1 <since_ms> <until_ms> <category> <count> <window_ms> <origin>"  expiring at until_ms
//   lift:<address>  "1 <lifted_at_ms> <origin>"  a tombstone: bans of <address> made before lifted_at_ms
//                   are void. It outlives the lifted ban so a peer that was away while it was lifted does not
//                   push it back.
// On the channel <prefix>bans:
//   "ban <address> <since_ms> <until_ms> <category> <count> <window_ms> <origin>"
//   "lift <address> <lifted_at_ms> <origin>"
// <origin> names the process that wrote it (node name and a random id), so a peer skips its own messages.
// Times are wall-clock milliseconds (the loops' clock), comparable between peers as far as their clocks
// agree.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/protection/detector.h"

namespace edgepair::cluster {

// A ban key as the detectors make it (an IPv4 address or an IPv6 /64, http::client_rate_key): only the
// characters those use, so that nothing read from Redis can smuggle spaces or control bytes into logs.
bool valid_ban_address(std::string_view a);

struct BanMessage {
    enum class Kind { Ban, Lift };
    Kind kind = Kind::Ban;
    protection::Ban ban;       // Ban: the whole ban; Lift: only ban.address
    uint64_t lifted_at_ms = 0; // Lift
    std::string origin;
};

std::string encode_ban_message(const protection::Ban& b, std::string_view origin);
std::string encode_lift_message(std::string_view address, uint64_t lifted_at_ms, std::string_view origin);
std::optional<BanMessage> decode_ban_message(std::string_view text);

std::string encode_ban_record(const protection::Ban& b, std::string_view origin);
std::optional<protection::Ban> decode_ban_record(std::string_view address, std::string_view value);
std::string encode_lift_record(uint64_t lifted_at_ms, std::string_view origin);
std::optional<uint64_t> decode_lift_record(std::string_view value);

// How long a tombstone is kept: at least as long as the ban it lifted would have lasted, and never less than
// a minute, so that a peer which missed the PUBLISH still finds it when it comes back soon after.
uint64_t tombstone_ttl_ms(uint64_t lifted_until_ms, uint64_t now_ms);

// One peer's view of what it must keep pushing and what it must refuse, on the loop that talks to Redis.
class BanLedger {
  public:
    // A ban this peer made: pushed now if Redis is up, and again after every reconnect while it lasts (a
    // Redis restarted without persistence has forgotten it).
    void own(const protection::Ban& b);
    // A lift (here or by a peer) at lifted_at_ms: bans of the address made at or before then are void until
    // forget_ms. Forgets an own ban it voids.
    void lifted(const std::string& address, uint64_t lifted_at_ms, uint64_t forget_ms);
    // A lift made here while Redis was down: pushed on reconnect.
    void lift_pending(const std::string& address, uint64_t lifted_at_ms, uint64_t forget_ms);
    bool covered(const std::string& address, uint64_t since_ms) const;
    // Whether a ban heard from a peer (or read back from Redis) should be applied here.
    bool accept(const protection::Ban& b, uint64_t now_ms) const;
    // After a reconnect, once what Redis holds is known (address -> until_ms of its ban record): the own
    // bans Redis lacks, or holds with an earlier end.
    std::vector<protection::Ban> to_push(const std::unordered_map<std::string, uint64_t>& held,
                                         uint64_t now_ms) const;
    struct PendingLift {
        std::string address;
        uint64_t lifted_at_ms = 0;
        uint64_t forget_ms = 0;
    };
    std::vector<PendingLift> take_pending_lifts();
    void expire(uint64_t now_ms);
    size_t own_count() const { return own_.size(); }
    size_t pending_lift_count() const { return pending_lifts_.size(); }

  private:
    struct Tombstone {
        uint64_t lifted_at_ms = 0;
        uint64_t forget_ms = 0;
    };
    std::unordered_map<std::string, protection::Ban> own_;
    std::unordered_map<std::string, Tombstone> lifted_;
    std::unordered_map<std::string, PendingLift> pending_lifts_;
};

} // namespace edgepair::cluster
