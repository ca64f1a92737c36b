#include "common/mra/snapshot.h"

#include <map>
#include <set>
#include <utility>

namespace edgepair::mra {

const Deployment* Snapshot::find_deployment(std::string_view name) const {
    for (const Deployment& d : deployments) {
        if (d.name == name) {
            return &d;
        }
    }
    return nullptr;
}

const Domain* Snapshot::find_domain(std::string_view name) const {
    for (const Domain& d : domains) {
        if (iequals(d.name, name)) {
            return &d;
        }
    }
    return nullptr;
}

const UcNode* Snapshot::find_node(std::string_view name) const {
    for (const UcNode& n : nodes) {
        if (iequals(n.name, name)) {
            return &n;
        }
    }
    return nullptr;
}

std::vector<const UcNode*> Snapshot::nodes_of(std::string_view deployment, NodeType type) const {
    std::vector<const UcNode*> out;
    for (const UcNode& n : nodes) {
        if (n.type == type && n.deployment == deployment) {
            out.push_back(&n);
        }
    }
    return out;
}

std::string Snapshot::resolve_deployment(std::string_view name) const {
    return name.empty() ? default_deployment : std::string(name);
}

Result<std::shared_ptr<const Snapshot>> build_snapshot(SnapshotInput in) {
    auto snap = std::make_shared<Snapshot>();
    snap->allow_list = AllowList(in.default_methods);
    std::vector<std::string> errors;

    if (in.default_deployment.empty()) {
        errors.push_back("the default deployment needs a name");
    }
    snap->default_deployment = in.default_deployment;
    snap->sso_check_internal = in.sso_check_internal;

    // Deployment names are compared exactly: they are operator labels, not DNS names.
    std::set<std::string> seen_deployments;
    bool have_default = false;
    for (Deployment& d : in.deployments) {
        if (d.name.empty()) {
            errors.push_back("deployment with an empty name");
            continue;
        }
        if (!seen_deployments.insert(d.name).second) {
            errors.push_back("deployment '" + d.name + "' defined twice");
            continue;
        }
        have_default = have_default || d.name == in.default_deployment;
        snap->deployments.push_back(std::move(d));
    }
    if (!have_default && !in.default_deployment.empty()) {
        snap->deployments.insert(snap->deployments.begin(), Deployment{in.default_deployment});
        seen_deployments.insert(in.default_deployment);
    }
    auto resolve = [&](std::string& dep, const std::string& what) {
        if (dep.empty()) {
            dep = in.default_deployment;
        }
        if (!seen_deployments.contains(dep)) {
            errors.push_back(what + " names unknown deployment '" + dep + "'");
            return false;
        }
        return true;
    };

    std::set<std::string> seen_domains;
    for (Domain& d : in.domains) {
        d.name = to_lower(d.name);
        if (!is_valid_host(d.name)) {
            errors.push_back("domain '" + d.name + "' is not a valid DNS name");
            continue;
        }
        // "You cannot associate one domain with more than one deployment."
        if (!seen_domains.insert(d.name).second) {
            errors.push_back("domain '" + d.name +
                             "' defined twice (a domain belongs to exactly one deployment)");
            continue;
        }
        resolve(d.deployment, "domain '" + d.name + "'");
        snap->domains.push_back(std::move(d));
    }

    std::set<std::string> seen_nodes;
    std::map<std::string, std::string> cluster_deployment; // publisher -> deployment of its first node
    for (UcNode& n : in.nodes) {
        n.name = to_lower(n.name);
        n.publisher = to_lower(n.publisher);
        // Node names end up in allow-list rules, zone names and the edge-config XML: only hosts get in.
        if (!is_valid_host(n.name)) {
            errors.push_back("UC node '" + n.name + "' is not a valid host name or address");
            continue;
        }
        // "each Unified Communications node may only be associated with one deployment."
        if (!seen_nodes.insert(n.name).second) {
            errors.push_back("UC node '" + n.name +
                             "' defined twice (a node belongs to exactly one deployment)");
            continue;
        }
        if (!resolve(n.deployment, "UC node '" + n.name + "'")) {
            continue;
        }
        const std::string& cluster = n.publisher.empty() ? n.name : n.publisher;
        auto [it, inserted] = cluster_deployment.emplace(cluster, n.deployment);
        if (!inserted && it->second != n.deployment) {
            // Discovery assigns a deployment per publisher address, so a split cluster is a config slip.
            snap->warnings.push_back("cluster of publisher '" + cluster + "' spans deployments '" +
                                     it->second + "' and '" + n.deployment + "'");
        }
        snap->nodes.push_back(std::move(n));
    }
    for (const UcNode& n : snap->nodes) {
        if (!n.publisher.empty() && !seen_nodes.contains(n.publisher)) {
            snap->warnings.push_back("UC node '" + n.name + "' names publisher '" + n.publisher +
                                     "' which is not among the discovered nodes");
        }
    }

    auto zr = generate_zones(snap->nodes);
    std::set<std::string> zone_names;
    for (const Zone& z : zr.zones) {
        if (!zone_names.insert(z.name).second) {
            errors.push_back("two UC nodes map to zone name '" + z.name + "'");
        }
    }
    snap->zones = std::move(zr.zones);
    snap->search_rules = std::move(zr.search_rules);

    for (const UcNode& n : snap->nodes) {
        for (AllowRule& r : automatic_rules_for(n, n.deployment)) {
            if (auto added = snap->allow_list.add(std::move(r)); !added) {
                errors.push_back(added.error().message);
            }
        }
    }
    for (AllowRule& r : in.editable_rules) {
        const std::string what = "allow list rule '" + to_string(r.url) + "'";
        if (!resolve(r.deployment, what)) {
            continue;
        }
        r.origin = RuleOrigin::Editable;
        if (auto added = snap->allow_list.add(std::move(r)); !added) {
            errors.push_back(what + ": " + added.error().message);
        }
    }

    if (snap->deployments.size() > kRecommendedMaxDeployments) {
        snap->warnings.push_back(std::to_string(snap->deployments.size()) +
                                 " deployments: the guide recommends not exceeding " +
                                 std::to_string(kRecommendedMaxDeployments));
    }
    if (snap->domains.size() > kRecommendedMaxDomains) {
        snap->warnings.push_back(std::to_string(snap->domains.size()) +
                                 " domains: the guide recommends not exceeding " +
                                 std::to_string(kRecommendedMaxDomains));
    }
    for (const Domain& d : snap->domains) {
        if (d.services.sip_on_ucm && snap->nodes_of(d.deployment, NodeType::UnifiedCM).empty()) {
            snap->warnings.push_back("domain '" + d.name + "' has SIP on Unified CM but deployment '" +
                                     d.deployment + "' has no Unified CM node");
        }
        if (d.services.imp && snap->nodes_of(d.deployment, NodeType::ImP).empty()) {
            snap->warnings.push_back("domain '" + d.name + "' has IM and Presence but deployment '" +
                                     d.deployment + "' has no IM and Presence node");
        }
    }

    if (!errors.empty()) {
        std::string msg;
        for (const std::string& e : errors) {
            if (!msg.empty()) {
                msg.push_back('\n');
            }
            msg += e;
        }
        return make_error(std::move(msg));
    }
    return std::shared_ptr<const Snapshot>(std::move(snap));
}

} // namespace edgepair::mra
