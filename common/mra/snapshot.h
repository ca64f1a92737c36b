#pragma once
// The read-mostly MRA state both edges consult on the request path: built once, validated, then shared as
// shared_ptr<const Snapshot> and replaced whole on reload or rediscovery (DESIGN.md section 2), so workers
// never lock to read it.
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/core/result.h"
#include "common/mra/allow_list.h"
#include "common/mra/model.h"

namespace edgepair::mra {

struct SnapshotInput {
    // The primary deployment: always present, may be renamed (Using Deployments to Partition ...).
    std::string default_deployment = std::string(kDefaultDeploymentName);
    std::vector<Deployment> deployments; // the default deployment is added when missing
    std::vector<Domain> domains;
    std::vector<UcNode> nodes;
    std::vector<AllowRule> editable_rules; // empty deployment means the default deployment
    MethodSet default_methods{Method::Get};
    // edge-c's sso.check_internal_availability, which edge-e compares with its own (seeds/002 sets it on
    // both); absent from an older edge-c's snapshot.
    std::optional<bool> sso_check_internal;
};

struct Snapshot {
    std::string default_deployment;
    std::vector<Deployment> deployments;
    std::vector<Domain> domains;
    std::vector<UcNode> nodes;
    std::vector<Zone> zones;
    std::vector<SearchRule> search_rules;
    AllowList allow_list;
    // Above-recommendation and consistency notes that do not stop the snapshot from serving.
    std::vector<std::string> warnings;
    std::optional<bool> sso_check_internal; // SnapshotInput's

    const Deployment* find_deployment(std::string_view name) const;
    const Domain* find_domain(std::string_view name) const; // case-insensitive
    const UcNode* find_node(std::string_view name) const;   // case-insensitive
    std::vector<const UcNode*> nodes_of(std::string_view deployment, NodeType type) const;
    // Empty means the default deployment; anything else is returned as is.
    std::string resolve_deployment(std::string_view name) const;
};

// Validates and freezes the input: generates zones, search rules and the automatic allow-list rules, resolves
// empty deployments to the default one. Errors (all of them, one per line): duplicate deployment, domain or
// node; a domain, node or rule naming an unknown deployment; a malformed rule. Each domain and each node is
// in exactly one deployment by construction (one field), so a duplicate name is the way to put one in two.
Result<std::shared_ptr<const Snapshot>> build_snapshot(SnapshotInput in);

} // namespace edgepair::mra
