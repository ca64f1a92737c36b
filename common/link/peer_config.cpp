#include "common/link/peer_config.h"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace edgepair::link {

namespace {
void normalise(std::vector<std::string>& v, bool lower) {
    for (auto& s : v)
        if (lower)
            std::transform(s.begin(), s.end(), s.begin(),
                           [](unsigned char c) { return char(std::tolower(c)); });
    std::erase_if(v, [](const std::string& s) { return s.empty(); });
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
}

std::vector<std::string> split_list(std::string_view s) {
    std::vector<std::string> out;
    while (!s.empty()) {
        auto comma = s.find(',');
        auto item = s.substr(0, comma);
        while (!item.empty() && (item.front() == ' ' || item.front() == '\t'))
            item.remove_prefix(1);
        while (!item.empty() && (item.back() == ' ' || item.back() == '\t'))
            item.remove_suffix(1);
        if (!item.empty()) out.emplace_back(item);
        if (comma == std::string_view::npos) break;
        s.remove_prefix(comma + 1);
    }
    return out;
}

std::string list_text(const std::vector<std::string>& v) {
    return v.empty() ? std::string("none") : fmt::format("{}", fmt::join(v, ", "));
}
} // namespace

PeerConfig make_peer_config(std::string cluster, std::vector<std::string> domains,
                            std::vector<std::string> deployments) {
    PeerConfig c;
    c.cluster = std::move(cluster);
    c.domains = std::move(domains);
    c.deployments = std::move(deployments);
    normalise(c.domains, true);
    normalise(c.deployments, false);
    c.announced = true;
    return c;
}

std::vector<std::pair<std::string, std::string>> to_headers(const PeerConfig& c) {
    return {{std::string(kClusterHeader), c.cluster},
            {std::string(kDomainsHeader), fmt::format("{}", fmt::join(c.domains, ","))},
            {std::string(kDeploymentsHeader), fmt::format("{}", fmt::join(c.deployments, ","))}};
}

PeerConfig from_headers(const std::vector<std::pair<std::string, std::string>>& headers) {
    std::string cluster;
    std::vector<std::string> domains, deployments;
    bool any = false;
    for (const auto& [name, value] : headers) {
        if (name == kClusterHeader) {
            cluster = value;
            any = true;
        } else if (name == kDomainsHeader) {
            domains = split_list(value);
            any = true;
        } else if (name == kDeploymentsHeader) {
            deployments = split_list(value);
            any = true;
        }
    }
    if (!any) return {};
    return make_peer_config(std::move(cluster), std::move(domains), std::move(deployments));
}

std::vector<std::string> peer_differences(const PeerConfig& peer, std::string_view own_cluster,
                                          const PeerConfig* reference, std::string_view reference_node) {
    std::vector<std::string> out;
    if (!peer.announced) return out;
    if (peer.cluster != own_cluster)
        out.push_back(fmt::format("cluster name \"{}\", this edge-e's cluster.name is \"{}\"", peer.cluster,
                                  own_cluster));
    if (!reference || !reference->announced) return out;
    if (peer.domains != reference->domains)
        out.push_back(fmt::format("domains [{}], peer {} has [{}]", list_text(peer.domains), reference_node,
                                  list_text(reference->domains)));
    if (peer.deployments != reference->deployments)
        out.push_back(fmt::format("deployments [{}], peer {} has [{}]", list_text(peer.deployments),
                                  reference_node, list_text(reference->deployments)));
    return out;
}

} // namespace edgepair::link
