#pragma once
// Counts of events per (kind, key) that the peers of a cluster add to each other's local limiters through
// Redis pub/sub (issue #17): a failed password of user X on edge-c 1 takes a token from X's bucket on
// edge-c 2 too, so P peers allow a guesser the configured number of attempts, not P times it.
//
// Only the wire form and the batching live here (no I/O, unit-tested apart from Redis); the owner of a
// peer's Redis connections publishes what drain() gives every flush interval and hands decode()'s entries
// to its limiters. One message:
//   t1 <origin>\n<kind> <count> <key>\n<kind> <count> <key>\n...
// <kind> is a short token ([a-z_-]), <count> a decimal 1..kMaxCount, <key> the rest of the line (a user
// name may hold blanks; never a line feed or NUL: such keys are not shared).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace edgepair::cluster {

struct TallyEntry {
    std::string kind, key;
    uint32_t count = 0;
};

struct TallyMessage {
    std::string origin;
    std::vector<TallyEntry> entries;
};

class TallyBatch {
  public:
    static constexpr size_t kMaxMessageBytes = 64 * 1024;
    static constexpr uint32_t kMaxCount = 1'000'000;
    // max_keys: distinct (kind, key) pairs held between two flushes; beyond, add() refuses (counted by the
    // caller: a flood of distinct user names is shared only in part, each peer still limits it locally).
    explicit TallyBatch(size_t max_keys = 20000) : max_keys_(max_keys) {}
    // False when not held: the key is not shareable, or the batch is full.
    bool add(std::string_view kind, std::string_view key, uint32_t n = 1);
    bool empty() const { return counts_.empty(); }
    size_t size() const { return counts_.size(); }
    // Everything held, as messages of at most kMaxMessageBytes each; the batch is empty afterwards.
    std::vector<std::string> drain(std::string_view origin);

  private:
    size_t max_keys_;
    std::unordered_map<std::string, uint32_t> counts_; // kind '\n' key -> count
};

// nullopt for anything malformed (a peer's bug or a hostile writer must not reach the limiters): a bad line
// makes the whole message void.
std::optional<TallyMessage> decode_tally(std::string_view text);

} // namespace edgepair::cluster
