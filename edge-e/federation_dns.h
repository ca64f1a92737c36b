#pragma once
// The DNS side of one federation service (XMPP server-to-server, SIP between domains) on one edge-e worker:
// a c-ares resolver rebuilt when its servers change, the SRV answers cached per remote domain (bounded:
// remote domains are open-ended), and the targets in the order to try them (RFC 2782 priority and weight).
// Each service says which SRV names to ask in turn and what to dial when none answers.
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/config/types.h"
#include "common/core/loop.h"
#include "common/core/result.h"
#include "common/mra/snapshot.h"
#include "common/net/dns.h"

namespace edgepair::edge_e {

struct FederationTarget {
    std::string host;
    uint16_t port = 0;
};

class FederationDns {
  public:
    // default_port: dialled on the domain's own name when no SRV name has a record.
    FederationDns(core::Loop& loop, uint16_t default_port);
    ~FederationDns();
    FederationDns(const FederationDns&) = delete;
    FederationDns& operator=(const FederationDns&) = delete;

    // A configuration generation: servers (empty: resolv.conf) and timeout make the resolver, rebuilt (and
    // the cache forgotten) only when they change. An error leaves the previous resolver, if any, in place.
    Result<void> configure(const std::vector<std::string>& servers, config::Duration timeout,
                           config::Duration cache_ttl);
    net::Resolver* resolver() { return resolver_.get(); }

    struct SrvName {
        std::string name;       // e.g. "_xmpp-server._tcp.example.org"
        std::string miss_stage; // what count_failure gets when it finds nothing usable
    };
    // The servers of `domain` in the order to try them; cb never runs inline. The names are asked in turn,
    // the next only when one found nothing. count_failure gets each name's miss_stage as it misses, and
    // "domain" when there is nothing to try at all: no resolver, or a lone "." target (the service is not
    // offered), which makes the list empty.
    void targets(const std::string& domain, std::vector<SrvName> names,
                 std::function<void(std::string_view stage)> count_failure,
                 std::function<void(std::vector<FederationTarget>)> cb);

  private:
    struct CacheEntry {
        uint64_t expires_ms = 0;
        std::vector<net::SrvRecord> srv; // empty: the domain's own address on default_port_
        bool refused = false;            // a lone "." target
    };
    // transient: an earlier name of this look-up got no answer (the result is then cached only briefly).
    void query(const std::string& domain, std::vector<SrvName> names, size_t i,
               std::function<void(std::string_view)> count_failure,
               std::function<void(std::vector<FederationTarget>)> cb, bool transient);
    std::vector<FederationTarget> order(const std::string& domain, const CacheEntry& e);

    core::Loop& loop_;
    uint16_t default_port_;
    std::unique_ptr<net::Resolver> resolver_;
    std::string resolver_key_;
    uint64_t cache_ttl_ms_ = 60000;
    std::unordered_map<std::string, CacheEntry> cache_;
    std::mt19937 rng_;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// Whether a federation peer names one of our own domains: the configured local_domains when there are any,
// else the domains of the discovery snapshot that have IM and Presence.
bool federation_local_domain(std::string_view domain, const std::vector<std::string>& local,
                             const mra::Snapshot* snap);

} // namespace edgepair::edge_e
