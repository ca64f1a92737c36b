#include "common/cluster/ban_sync.h"

#include <charconv>

#include <fmt/format.h>

#include "common/cluster/cluster_identity.h"

namespace edgepair::cluster {

namespace {

constexpr uint64_t kMinTombstoneMs = 60'000;
constexpr uint64_t kMaxTombstoneMs = 31ull * 24 * 3600 * 1000; // past the longest ban (protection.*.ban)

std::vector<std::string_view> fields(std::string_view s) {
    std::vector<std::string_view> out;
    size_t i = 0;
    while (i <= s.size() && out.size() < 16) {
        size_t j = s.find(' ', i);
        if (j == std::string_view::npos) j = s.size();
        out.push_back(s.substr(i, j - i));
        i = j + 1;
    }
    return out;
}

template <class T> bool number(std::string_view s, T& out) {
    if (s.empty()) return false;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size();
}

// since, until, category, count, window: the ban's fields after the address, in the wire's order.
bool read_ban_fields(const std::vector<std::string_view>& f, size_t at, protection::Ban& b) {
    if (f.size() < at + 5) return false;
    auto cat = protection::category_from_name(f[at + 2]);
    if (!cat) return false;
    b.category = *cat;
    return number(f[at], b.since_ms) && number(f[at + 1], b.until_ms) && number(f[at + 3], b.count) &&
           number(f[at + 4], b.window_ms) && b.since_ms <= b.until_ms;
}

} // namespace

bool valid_ban_address(std::string_view a) {
    if (a.empty() || a.size() > 64) return false;
    for (char c : a)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == '.' ||
              c == ':' || c == '/'))
            return false;
    return true;
}

std::string encode_ban_message(const protection::Ban& b, std::string_view origin) {
    return fmt::format("ban {} {} {} {} {} {} {}", b.address, b.since_ms, b.until_ms,
                       protection::category_name(b.category), b.count, b.window_ms, origin);
}

std::string encode_lift_message(std::string_view address, uint64_t lifted_at_ms, std::string_view origin) {
    return fmt::format("lift {} {} {}", address, lifted_at_ms, origin);
}

std::optional<BanMessage> decode_ban_message(std::string_view text) {
    auto f = fields(text);
    BanMessage m;
    if (f.size() == 8 && f[0] == "ban") {
        m.kind = BanMessage::Kind::Ban;
        if (!valid_ban_address(f[1]) || !read_ban_fields(f, 2, m.ban) || !valid_origin(f[7]))
            return std::nullopt;
        m.ban.address = std::string(f[1]);
        m.origin = std::string(f[7]);
        return m;
    }
    if (f.size() == 4 && f[0] == "lift") {
        m.kind = BanMessage::Kind::Lift;
        if (!valid_ban_address(f[1]) || !number(f[2], m.lifted_at_ms) || !valid_origin(f[3]))
            return std::nullopt;
        m.ban.address = std::string(f[1]);
        m.origin = std::string(f[3]);
        return m;
    }
    return std::nullopt;
}

std::string encode_ban_record(const protection::Ban& b, std::string_view origin) {
    return fmt::format("1 {} {} {} {} {} {}", b.since_ms, b.until_ms, protection::category_name(b.category),
                       b.count, b.window_ms, origin);
}

std::optional<protection::Ban> decode_ban_record(std::string_view address, std::string_view value) {
    auto f = fields(value);
    protection::Ban b;
    if (f.size() != 7 || f[0] != "1" || !valid_ban_address(address) || !read_ban_fields(f, 1, b) ||
        !valid_origin(f[6]))
        return std::nullopt;
    b.address = std::string(address);
    return b;
}

std::string encode_lift_record(uint64_t lifted_at_ms, std::string_view origin) {
    return fmt::format("1 {} {}", lifted_at_ms, origin);
}

std::optional<uint64_t> decode_lift_record(std::string_view value) {
    auto f = fields(value);
    uint64_t at = 0;
    if (f.size() != 3 || f[0] != "1" || !number(f[1], at) || !valid_origin(f[2])) return std::nullopt;
    return at;
}

uint64_t tombstone_ttl_ms(uint64_t lifted_until_ms, uint64_t now_ms) {
    uint64_t left = lifted_until_ms > now_ms ? lifted_until_ms - now_ms : 0;
    return std::min(std::max(left, kMinTombstoneMs), kMaxTombstoneMs);
}

void BanLedger::own(const protection::Ban& b) {
    auto& o = own_[b.address];
    if (b.until_ms >= o.until_ms) o = b;
}

void BanLedger::lifted(const std::string& address, uint64_t lifted_at_ms, uint64_t forget_ms) {
    auto& t = lifted_[address];
    t.lifted_at_ms = std::max(t.lifted_at_ms, lifted_at_ms);
    t.forget_ms = std::max(t.forget_ms, forget_ms);
    auto it = own_.find(address);
    if (it != own_.end() && it->second.since_ms <= t.lifted_at_ms) own_.erase(it);
}

void BanLedger::lift_pending(const std::string& address, uint64_t lifted_at_ms, uint64_t forget_ms) {
    lifted(address, lifted_at_ms, forget_ms);
    auto& p = pending_lifts_[address];
    p.address = address;
    p.lifted_at_ms = std::max(p.lifted_at_ms, lifted_at_ms);
    p.forget_ms = std::max(p.forget_ms, forget_ms);
}

bool BanLedger::covered(const std::string& address, uint64_t since_ms) const {
    auto it = lifted_.find(address);
    return it != lifted_.end() && since_ms <= it->second.lifted_at_ms;
}

bool BanLedger::accept(const protection::Ban& b, uint64_t now_ms) const {
    return b.until_ms > now_ms && !covered(b.address, b.since_ms);
}

std::vector<protection::Ban> BanLedger::to_push(const std::unordered_map<std::string, uint64_t>& held,
                                                uint64_t now_ms) const {
    std::vector<protection::Ban> out;
    for (const auto& [a, b] : own_) {
        if (b.until_ms <= now_ms || covered(a, b.since_ms)) continue;
        auto it = held.find(a);
        if (it != held.end() && it->second >= b.until_ms) continue;
        out.push_back(b);
    }
    return out;
}

std::vector<BanLedger::PendingLift> BanLedger::take_pending_lifts() {
    std::vector<PendingLift> out;
    for (auto& [a, p] : pending_lifts_)
        out.push_back(std::move(p));
    pending_lifts_.clear();
    return out;
}

void BanLedger::expire(uint64_t now_ms) {
    std::erase_if(own_, [now_ms](const auto& kv) { return kv.second.until_ms <= now_ms; });
    std::erase_if(lifted_, [now_ms](const auto& kv) { return kv.second.forget_ms <= now_ms; });
    std::erase_if(pending_lifts_, [now_ms](const auto& kv) { return kv.second.forget_ms <= now_ms; });
}

} // namespace edgepair::cluster
