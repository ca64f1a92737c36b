// How a peer names itself and the cluster's keys in Redis, from its `cluster:` section: one reading for
// edge-e's ban store and edge-c's shared sign-in state, so both edges of a cluster agree on the prefix.
#pragma once

#include <string>
#include <string_view>

#include "common/cluster/redis_conn.h"
#include "common/config/common_config.h"

namespace edgepair::cluster {

struct ClusterIdentity {
    RedisSettings redis;
    std::string prefix; // "edgepair:<cluster.name>:"
    std::string origin; // this process, unique among the peers: node name and a random id
};

// What a message or record may carry as an origin (or a node name): 1..300 printable ASCII characters, no
// blank, so that it ends at the next blank of a space-separated wire form. Every reader of the cluster's
// messages checks with this one rule.
bool valid_origin(std::string_view o);

// `c.redis` must be set (the caller only builds shared state when it is).
ClusterIdentity cluster_identity(const config::ClusterConfig& c, const std::string& node_name);

} // namespace edgepair::cluster
