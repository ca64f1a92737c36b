#pragma once
#include <vector>

#include "common/config/edge_c_config.h"
#include "common/mra/snapshot.h"

namespace edgepair::edge_c {

// edge-c's configured MRA state (deployments, domains, editable allow-list rules) plus what discovery
// found: the one input both edges build their snapshot from.
mra::SnapshotInput snapshot_input(const config::EdgeCConfig& cfg, const std::vector<mra::UcNode>& nodes);

} // namespace edgepair::edge_c
