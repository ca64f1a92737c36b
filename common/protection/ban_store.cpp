#include "common/protection/ban_store.h"

namespace edgepair::protection {

void LocalBanStore::apply(const Settings& s) {
    std::lock_guard<std::mutex> lk(mu_);
    d_.apply(s);
}

Outcome LocalBanStore::record_failure(Category c, const std::string& address, uint64_t now_ms) {
    Outcome o;
    {
        std::lock_guard<std::mutex> lk(mu_);
        o = d_.record(c, address, now_ms);
    }
    if (o.kind == Outcome::Kind::Banned && listener_.banned) listener_.banned(*o.ban);
    return o;
}

std::vector<Ban> LocalBanStore::bans(uint64_t now_ms) {
    std::lock_guard<std::mutex> lk(mu_);
    return d_.bans(now_ms);
}

bool LocalBanStore::lift(const std::string& address, uint64_t now_ms) {
    bool was;
    {
        std::lock_guard<std::mutex> lk(mu_);
        was = d_.lift(address, now_ms);
    }
    if (was && listener_.lifted) listener_.lifted(address);
    return was;
}

bool LocalBanStore::adopt(const Ban& b, uint64_t now_ms) {
    bool changed;
    {
        std::lock_guard<std::mutex> lk(mu_);
        changed = d_.adopt(b, now_ms);
    }
    if (changed && listener_.adopted) listener_.adopted(b);
    return changed;
}

void LocalBanStore::count_remote(Category c, const std::string& address, uint32_t n, uint64_t now_ms) {
    std::lock_guard<std::mutex> lk(mu_);
    d_.count_remote(c, address, n, now_ms);
}

bool LocalBanStore::lift_by_peer(const std::string& address, uint64_t now_ms) {
    bool was;
    {
        std::lock_guard<std::mutex> lk(mu_);
        was = d_.lift(address, now_ms);
    }
    if (was && listener_.lifted_by_peer) listener_.lifted_by_peer(address);
    return was;
}

std::optional<Ban> LocalBanStore::ban_of(const std::string& address, uint64_t now_ms) {
    std::lock_guard<std::mutex> lk(mu_);
    return d_.ban_of(address, now_ms);
}

size_t LocalBanStore::tracked() {
    std::lock_guard<std::mutex> lk(mu_);
    return d_.tracked();
}

void BanView::add(const std::string& address, uint64_t until_ms) {
    auto& u = until_[address];
    if (until_ms > u) u = until_ms;
}

bool BanView::banned(const std::string& address, uint64_t now_ms) {
    if (until_.empty()) return false;
    auto it = until_.find(address);
    if (it == until_.end()) return false;
    if (it->second <= now_ms) {
        until_.erase(it);
        return false;
    }
    return true;
}

} // namespace edgepair::protection
