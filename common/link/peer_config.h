#pragma once
// What an edge-c peer announces about its configuration when its link opens (issue #17, config
// consistency): its cluster name, MRA domains and deployments, as headers of the control stream's answer
// (x-link-cluster, x-link-domains, x-link-deployments; lists comma-separated). edge-e compares the peers it
// serves with its own cluster name and with each other, and reports disagreements by peer; a mismatch does
// not refuse the link (Expressway warns too): the link stays up and an alarm is raised.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace edgepair::link {

inline constexpr std::string_view kClusterHeader = "x-link-cluster";
inline constexpr std::string_view kDomainsHeader = "x-link-domains";
inline constexpr std::string_view kDeploymentsHeader = "x-link-deployments";

struct PeerConfig {
    std::string cluster;                  // cluster.name; empty when not configured
    std::vector<std::string> domains;     // sorted, lower case, no duplicates
    std::vector<std::string> deployments; // sorted, no duplicates
    bool announced = false;               // false: the peer sent none of the headers (an older edge-c)
    friend bool operator==(const PeerConfig&, const PeerConfig&) = default;
};

// Sorted and without duplicates; domains in lower case (DNS names compare without case).
PeerConfig make_peer_config(std::string cluster, std::vector<std::string> domains,
                            std::vector<std::string> deployments);
std::vector<std::pair<std::string, std::string>> to_headers(const PeerConfig& c);
// From the control stream's answer; items that are empty after trimming are dropped.
PeerConfig from_headers(const std::vector<std::pair<std::string, std::string>>& headers);

// One line per disagreement, for /status, the alarm and the log. `own_cluster` is edge-e's cluster.name;
// `reference` is the peer the others are compared with (nullptr: none, only the cluster name is checked)
// and `reference_node` its node name. A peer that announced nothing is not compared (nothing to say).
std::vector<std::string> peer_differences(const PeerConfig& peer, std::string_view own_cluster,
                                          const PeerConfig* reference, std::string_view reference_node);

} // namespace edgepair::link
