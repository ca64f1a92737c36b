#pragma once
// The decision logic of intrusion protection, apart from any clock, lock or transport: failures per (source
// address, category) within a sliding window, and the bans they make. Time is passed in (monotonic
// milliseconds) so tests drive it with a fake clock. Not thread-safe: its owner (LocalBanStore, or a future
// store sharing bans over Redis) serialises calls.
#include <array>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/protection/category.h"

namespace edgepair::protection {

struct Settings {
    std::array<Rule, kCategoryCount> rules = default_rules();
    // (address, category) pairs counted at once; beyond that a new pair is not remembered until the table
    // sweeps (failing open: an address-spraying attacker must not make the table grow without bound).
    size_t max_tracked = 65536;
};

struct Ban {
    std::string address; // the key: IPv4 address or IPv6 /64 (http::client_rate_key)
    Category category = Category::HttpAuth;
    uint32_t count = 0;     // failures within the window that made the ban
    uint64_t window_ms = 0; // that window (the category's rule when the ban was made)
    uint64_t since_ms = 0;  // monotonic
    uint64_t until_ms = 0;  // monotonic
};

struct Outcome {
    enum class Kind : uint8_t {
        Disabled,      // the category is off: nothing recorded
        Counted,       // recorded, below the threshold
        Banned,        // this failure reached the threshold: `ban` is new
        AlreadyBanned, // the address is banned already (a failure on a connection opened before the ban)
        Untracked,     // the table is full of live entries: not recorded
    };
    Kind kind = Kind::Counted;
    std::optional<Ban> ban;
};

class Detector {
  public:
    explicit Detector(Settings s = {}) : s_(std::move(s)) {}
    // New settings apply to the next failure; bans made keep their end time.
    void apply(Settings s) { s_ = std::move(s); }
    const Settings& settings() const { return s_; }

    Outcome record(Category c, const std::string& address, uint64_t now_ms);
    // The active ban of an address (expired ones are forgotten here).
    std::optional<Ban> ban_of(const std::string& address, uint64_t now_ms);
    // A ban made elsewhere (another edge-e peer of the cluster): held here as if made here, unless a ban of
    // the address already lasts as long. True when it changed anything. Counts of the address are kept.
    bool adopt(const Ban& b, uint64_t now_ms);
    // Failures another edge-e peer counted (issue #17): added to the address's window like local ones, but
    // never more than one short of the threshold, so that the ban is made where a failure reaches it (that
    // peer counts and logs it once, and shares it). Nothing for a banned address or a disabled category.
    void count_remote(Category c, const std::string& address, uint32_t n, uint64_t now_ms);
    // Ends a ban and forgets the address's counts (a lifted address starts clean). False if not banned.
    bool lift(const std::string& address, uint64_t now_ms);
    // Active bans, soonest end first.
    std::vector<Ban> bans(uint64_t now_ms);
    // Forgets expired bans and windows with nothing left in them. Returns the addresses whose ban ended.
    std::vector<std::string> expire(uint64_t now_ms);
    size_t tracked() const { return windows_.size(); }

  private:
    struct Window {
        std::deque<uint64_t> times; // failure times within the window, oldest first; never above threshold
    };
    static std::string key(const std::string& address, Category c);
    void trim(Window& w, uint64_t window_ms, uint64_t now_ms) const;

    Settings s_;
    std::unordered_map<std::string, Window> windows_; // key(address, category)
    std::unordered_map<std::string, Ban> bans_;       // by address
};

} // namespace edgepair::protection
