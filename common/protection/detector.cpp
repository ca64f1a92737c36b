#include "common/protection/detector.h"

#include <algorithm>

namespace edgepair::protection {

std::string Detector::key(const std::string& address, Category c) {
    std::string k = address;
    k += '|';
    k += category_name(c);
    return k;
}

void Detector::trim(Window& w, uint64_t window_ms, uint64_t now_ms) const {
    while (!w.times.empty() && w.times.front() + window_ms <= now_ms)
        w.times.pop_front();
}

Outcome Detector::record(Category c, const std::string& address, uint64_t now_ms) {
    const Rule& r = s_.rules[size_t(c)];
    if (!r.enabled) return {Outcome::Kind::Disabled, std::nullopt};
    if (auto b = ban_of(address, now_ms)) return {Outcome::Kind::AlreadyBanned, std::nullopt};
    auto k = key(address, c);
    auto it = windows_.find(k);
    if (it == windows_.end()) {
        if (windows_.size() >= s_.max_tracked) {
            expire(now_ms);
            if (windows_.size() >= s_.max_tracked) return {Outcome::Kind::Untracked, std::nullopt};
        }
        it = windows_.emplace(std::move(k), Window{}).first;
    }
    auto& w = it->second;
    trim(w, r.window_ms, now_ms);
    w.times.push_back(now_ms);
    if (w.times.size() < std::max<uint32_t>(1, r.threshold)) return {Outcome::Kind::Counted, std::nullopt};
    Ban b{address, c, uint32_t(w.times.size()), r.window_ms, now_ms, now_ms + r.ban_ms};
    // A banned address starts every category afresh when its ban ends.
    for (size_t i = 0; i < kCategoryCount; ++i)
        windows_.erase(key(address, Category(i)));
    bans_[address] = b;
    return {Outcome::Kind::Banned, b};
}

void Detector::count_remote(Category c, const std::string& address, uint32_t n, uint64_t now_ms) {
    const Rule& r = s_.rules[size_t(c)];
    const size_t room = std::max<uint32_t>(1, r.threshold) - 1;
    if (!r.enabled || n == 0 || room == 0 || ban_of(address, now_ms)) return;
    auto k = key(address, c);
    auto it = windows_.find(k);
    if (it == windows_.end()) {
        if (windows_.size() >= s_.max_tracked) {
            expire(now_ms);
            if (windows_.size() >= s_.max_tracked) return;
        }
        it = windows_.emplace(std::move(k), Window{}).first;
    }
    auto& w = it->second;
    trim(w, r.window_ms, now_ms);
    for (uint32_t i = 0; i < n && w.times.size() < room; ++i)
        w.times.push_back(now_ms);
}

std::optional<Ban> Detector::ban_of(const std::string& address, uint64_t now_ms) {
    auto it = bans_.find(address);
    if (it == bans_.end()) return std::nullopt;
    if (it->second.until_ms <= now_ms) {
        bans_.erase(it);
        return std::nullopt;
    }
    return it->second;
}

bool Detector::adopt(const Ban& b, uint64_t now_ms) {
    if (b.until_ms <= now_ms) return false;
    if (auto have = ban_of(b.address, now_ms); have && have->until_ms >= b.until_ms) return false;
    bans_[b.address] = b;
    return true;
}

bool Detector::lift(const std::string& address, uint64_t now_ms) {
    bool was = ban_of(address, now_ms).has_value();
    bans_.erase(address);
    for (size_t i = 0; i < kCategoryCount; ++i)
        windows_.erase(key(address, Category(i)));
    return was;
}

std::vector<Ban> Detector::bans(uint64_t now_ms) {
    expire(now_ms);
    std::vector<Ban> out;
    out.reserve(bans_.size());
    for (auto& [a, b] : bans_)
        out.push_back(b);
    std::sort(out.begin(), out.end(), [](const Ban& x, const Ban& y) {
        return x.until_ms != y.until_ms ? x.until_ms < y.until_ms : x.address < y.address;
    });
    return out;
}

std::vector<std::string> Detector::expire(uint64_t now_ms) {
    std::vector<std::string> ended;
    for (auto it = bans_.begin(); it != bans_.end();) {
        if (it->second.until_ms <= now_ms) {
            ended.push_back(it->first);
            it = bans_.erase(it);
        } else {
            ++it;
        }
    }
    for (auto it = windows_.begin(); it != windows_.end();) {
        auto bar = it->first.rfind('|');
        auto c = category_from_name(std::string_view(it->first).substr(bar + 1));
        trim(it->second, c ? s_.rules[size_t(*c)].window_ms : 0, now_ms);
        it = it->second.times.empty() ? windows_.erase(it) : std::next(it);
    }
    return ended;
}

} // namespace edgepair::protection
