#include "common/cluster/cluster_identity.h"

#include <fmt/format.h>

#include <random>

namespace edgepair::cluster {

bool valid_origin(std::string_view o) {
    if (o.empty() || o.size() > 300) return false;
    for (char c : o)
        if (static_cast<unsigned char>(c) <= ' ' || static_cast<unsigned char>(c) >= 0x7f) return false;
    return true;
}

ClusterIdentity cluster_identity(const config::ClusterConfig& c, const std::string& node_name) {
    ClusterIdentity id;
    const auto& rc = *c.redis;
    id.redis.host = rc.address.host;
    id.redis.port = rc.address.port;
    id.redis.password = rc.password;
    id.redis.db = rc.db;
    for (const auto& a : rc.sentinels)
        id.redis.sentinels.push_back({a.host, a.port});
    id.redis.master_name = rc.master_name;
    id.redis.timeout_ms = uint64_t(rc.timeout.count());
    id.prefix = "edgepair:" + c.name + ":";
    // Unique per process, not per node name: a restarted peer must not take its former self's messages
    // for its own.
    std::random_device rd;
    id.origin = fmt::format("{}/{:08x}{:08x}", node_name, rd(), rd());
    return id;
}

} // namespace edgepair::cluster
