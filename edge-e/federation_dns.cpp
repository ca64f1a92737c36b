#include "edge-e/federation_dns.h"

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/obs/log.h"
#include "common/xmpp/s2s.h"

namespace edgepair::edge_e {

namespace {
constexpr const char* kLog = "federation";
constexpr size_t kMaxCachedDomains = 4096;
constexpr uint64_t kTransientCacheMs = 5000;
} // namespace

FederationDns::FederationDns(core::Loop& loop, uint16_t default_port)
    : loop_(loop), default_port_(default_port), rng_(std::random_device{}()) {}

FederationDns::~FederationDns() = default;

Result<void> FederationDns::configure(const std::vector<std::string>& servers, config::Duration timeout,
                                      config::Duration cache_ttl) {
    cache_ttl_ms_ = uint64_t(cache_ttl.count());
    net::ResolverOptions o;
    o.servers = servers;
    o.timeout_ms = uint32_t(timeout.count());
    o.tries = 2;
    std::string key = fmt::format("{}|{}", fmt::join(o.servers, ","), o.timeout_ms);
    if (resolver_ && key == resolver_key_) return {};
    auto r = net::Resolver::create(loop_, o);
    if (!r) return r.error();
    resolver_ = std::move(*r);
    resolver_key_ = key;
    cache_.clear();
    return {};
}

std::vector<FederationTarget> FederationDns::order(const std::string& domain, const CacheEntry& e) {
    std::vector<FederationTarget> out;
    if (e.refused) return out;
    if (e.srv.empty()) {
        out.push_back({domain, default_port_});
        return out;
    }
    for (auto& r : net::srv_weighted_order(e.srv, rng_))
        out.push_back({r.target, r.port});
    return out;
}

void FederationDns::targets(const std::string& domain, std::vector<SrvName> names,
                            std::function<void(std::string_view)> count_failure,
                            std::function<void(std::vector<FederationTarget>)> cb) {
    if (auto it = cache_.find(domain); it != cache_.end() && it->second.expires_ms > loop_.now_ms()) {
        auto t = order(domain, it->second);
        loop_.post([cb = std::move(cb), t = std::move(t)] { cb(t); });
        return;
    }
    if (!resolver_ || names.empty()) {
        count_failure("domain");
        loop_.post([cb = std::move(cb)] { cb({}); });
        return;
    }
    query(domain, std::move(names), 0, std::move(count_failure), std::move(cb), false);
}

void FederationDns::query(const std::string& domain, std::vector<SrvName> names, size_t i,
                          std::function<void(std::string_view)> count_failure,
                          std::function<void(std::vector<FederationTarget>)> cb, bool transient) {
    std::weak_ptr<bool> alive = alive_;
    std::string name = names[i].name;
    resolver_->resolve_srv_answer(name, [this, alive, domain, names = std::move(names), i, transient,
                                         count_failure = std::move(count_failure),
                                         cb = std::move(cb)](net::SrvAnswer a) mutable {
        if (alive.expired()) return cb({});
        using Kind = net::SrvAnswer::Kind;
        CacheEntry e;
        // A look-up that got no answer (timeout, SERVFAIL) says nothing about the domain: what it led to is
        // kept only briefly, so the domain's SRV records are used as soon as its DNS answers again.
        transient = transient || a.kind == Kind::failed;
        e.expires_ms =
            loop_.now_ms() + (transient ? std::min(cache_ttl_ms_, kTransientCacheMs) : cache_ttl_ms_);
        if (a.kind == Kind::not_offered) {
            e.refused = true;
            count_failure("domain");
            EP_DEBUG(kLog, "{}", a.error);
        } else if (a.kind == Kind::records) {
            e.srv = std::move(a.records);
        } else {
            count_failure(names[i].miss_stage);
            if (i + 1 < names.size())
                return query(domain, std::move(names), i + 1, std::move(count_failure), std::move(cb),
                             transient);
            EP_DEBUG(kLog, "{}; falling back to {}:{}", a.error, domain, default_port_);
        }
        if (cache_.size() > kMaxCachedDomains) cache_.clear();
        auto& slot = cache_[domain] = std::move(e);
        cb(order(domain, slot));
    });
}

bool federation_local_domain(std::string_view domain, const std::vector<std::string>& local,
                             const mra::Snapshot* snap) {
    std::string n = xmpp::normalise_domain(domain);
    if (n.empty()) return false;
    if (!local.empty()) return std::find(local.begin(), local.end(), n) != local.end();
    if (!snap) return false;
    const mra::Domain* dom = snap->find_domain(n);
    return dom != nullptr && dom->services.imp;
}

} // namespace edgepair::edge_e
