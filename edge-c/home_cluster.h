#pragma once
// The user's home Unified CM cluster, found the way Expressway-C finds it (issue #16).
//
// Cisco TechNote 211304's Expressway-C log shows, for each sign-in, `GET /cucm-uds/clusterUser?username=<id>`
// first, then the credential check on the cluster it names (`/cucm-uds/user/<id>/devices`). clusterUser needs
// no authentication and answers for the whole estate (ILS): `<result found="true" uri=".../user/<id>"/>` and
// `<homeCluster serversUri=".../cucm-uds/servers">host</homeCluster>` (UDS API reference, as summarised in
// shared/MRA-PROTOCOL.md). A cluster that does not know the user answers found="false".
//
// edgepair asks one node per discovered Unified CM cluster of the deployment (nodes grouped by publisher),
// moving to another node of the same cluster when one does not answer, until a cluster names the home.
// The named host must be a discovered Unified CM node of the same deployment: the user's password goes
// there next, so an answer naming anything else is refused, never followed.
// The answer is cached per user for a bounded time (credentials.home_cache); "not found" and failures are not
// cached.
//
// A client that signs in with its address (Jabber accepts `user@domain`) is looked up with clusterUser's
// email= form; the answer's result/@uri ends in the user's real UDS id, and that id is what the credential
// check and the own-user allow-list rules use (UDS resources are keyed by user id, not by address).
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/core/loop.h"
#include "common/core/result.h"
#include "common/http/h1_client.h"
#include "common/mra/snapshot.h"

namespace edgepair::edge_c {

// One clusterUser answer. nullopt from the parser: not a clusterUser document.
struct ClusterUserAnswer {
    bool found = false;
    std::string home_host; // <homeCluster> text, else the host of result/@uri; lower case
    std::string user_id;   // last path segment of result/@uri (".../cucm-uds/user/<id>"), percent-decoded;
                           // empty when the uri has no usable id
};
std::optional<ClusterUserAnswer> parse_cluster_user(std::string_view body);

// The discovered Unified CM clusters of `deployment`: node names grouped by publisher (a node without a
// publisher, e.g. configured by hand, is grouped with the others that have none), in snapshot order, with
// nodes marked unreachable last inside their cluster.
std::vector<std::vector<std::string>> ucm_clusters(const mra::Snapshot& snap, std::string_view deployment);

struct HomeClusterOptions {
    std::function<std::shared_ptr<const mra::Snapshot>()> snapshot;
    // How long a found home is trusted without asking again (credentials.home_cache); read on every store so
    // a reload applies. Unset: 10 minutes.
    std::function<uint64_t()> ttl_ms;
    size_t max_entries = 100000;
};

struct HomeCluster {
    std::string node;               // the node clusterUser named (a discovered node of the deployment)
    std::string user_id;            // the UDS user id clusterUser's uri names (the signed-in name if none)
    std::vector<std::string> nodes; // that node first, then the rest of its cluster
    bool cached = false;
};

// One per worker loop, like the credential checker that owns it.
class HomeClusterFinder {
  public:
    // Result: a home cluster; nullopt when every cluster answered that it does not know the user; an Error
    // ("unavailable: ..." when a cluster could not be asked and none named a home, "upstream: ..." for an
    // answer that cannot be followed) otherwise.
    using Callback = std::function<void(Result<std::optional<HomeCluster>>)>;

    HomeClusterFinder(core::Loop& loop, http::Client& client, HomeClusterOptions opts);
    ~HomeClusterFinder();
    HomeClusterFinder(const HomeClusterFinder&) = delete;
    HomeClusterFinder& operator=(const HomeClusterFinder&) = delete;

    // `user`: what the client signed in with; an '@' selects clusterUser's email= form.
    void find(std::string_view deployment, std::string_view user, Callback cb);
    // Drops a cached home (the credential check found it wrong or unreachable).
    void forget(std::string_view deployment, std::string_view user);
    size_t cache_size() const { return cache_.size(); }

  private:
    struct Lookup;
    struct Entry {
        std::string node, user_id;
        uint64_t expires_ms = 0;
    };
    static std::string key_of(std::string_view deployment, std::string_view user);
    void ask(const std::shared_ptr<Lookup>& l);
    void done(const std::shared_ptr<Lookup>& l, Result<std::optional<HomeCluster>> r);
    Result<HomeCluster> home_from(const mra::Snapshot& snap, const std::string& deployment,
                                  const std::string& host, const std::string& user_id) const;

    core::Loop& loop_;
    http::Client& client_;
    HomeClusterOptions opts_;
    std::unordered_map<std::string, Entry> cache_;
    std::unordered_map<std::string, std::shared_ptr<Lookup>> pending_;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

} // namespace edgepair::edge_c
