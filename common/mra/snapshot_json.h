#pragma once
// The wire and disk form of the MRA state: edge-c pushes its SnapshotInput to edge-e over the link's control
// stream, and keeps the discovered part in its state file. Only inputs travel: both sides run the same
// build_snapshot(), so zones, search rules and automatic rules can never disagree between the edges.
#include <string>
#include <string_view>

#include "common/core/result.h"
#include "common/mra/snapshot.h"

namespace edgepair::mra {

std::string to_json(const SnapshotInput& in);
Result<SnapshotInput> snapshot_input_from_json(std::string_view text);

// Control-stream envelope: {"type": "...", ...}. control_type() is empty for anything that is not a JSON
// object with a string "type".
std::string control_type(std::string_view msg);
std::string snapshot_control(const SnapshotInput& in);
// An unsigned field of a control message, or `fallback` when absent or not a number.
unsigned control_uint(std::string_view msg, const char* key, unsigned fallback);
Result<SnapshotInput> snapshot_input_from_control(std::string_view msg);

std::string node_to_json(const UcNode& n);
std::string nodes_to_json(const std::vector<UcNode>& nodes);
Result<std::vector<UcNode>> nodes_from_json(std::string_view text);

} // namespace edgepair::mra
