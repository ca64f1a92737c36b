#pragma once
// The `media:` sections of both edges (issue #9). Absent section = no media relay: SDP passes unchanged.
#include <cstdint>
#include <optional>
#include <string>

#include "common/config/types.h"

namespace edgepair::config {

class Node;
struct Diagnostics;
struct SourceMap;

struct PortRange {
    uint16_t lo = 0, hi = 0;
    size_t size() const { return size_t(hi) - lo + 1; }
};

struct EdgeEMediaConfig {
    std::string listen;            // numeric IP of the client-facing media ports
    std::string public_address;    // written into SDP for clients; static NAT; defaults to listen
    PortRange ports{36012, 59999}; // per-call RTP/RTCP pairs (36002- collides with 12 traversal ports)
    std::string traversal_listen;  // numeric IP edge-c sends traversal media to; defaults to link.listen's
    PortRange traversal_ports{36000, 36011}; // worker i uses lo + i
    Duration idle_timeout = std::chrono::seconds(60);
};

enum class MediaEncryption { Force, BestEffort };
const char* to_string(MediaEncryption);

struct EdgeCMediaConfig {
    std::string address; // numeric IP towards internal endpoints
    PortRange ports{36000, 59999};
    MediaEncryption encryption = MediaEncryption::Force;
    Duration idle_timeout = std::chrono::seconds(60);
};

void parse_edge_e_media(const Node& n, EdgeEMediaConfig& out);
void parse_edge_c_media(const Node& n, EdgeCMediaConfig& out);

} // namespace edgepair::config
