#pragma once
// The user's home IM and Presence node for XMPP over MRA (issue #16).
//
// IM&P assigns every user to one node (the home node); the other node of that node's presence redundancy
// group takes the user over when the home node fails. A stream opened on any other node cannot serve the
// user. Expressway-C reaches the right node over XCP (port 7400, not public); edgepair relays the client's
// own c2s stream instead (shared/MRA-PROTOCOL.md, "XMPP"), so it has to pick the node itself:
//
//   1. Who signs in: the client's SASL <auth> names the user (edge-c/xmpp_sasl.h). edge-c reads it before
//      it forwards it, so the credential goes to one node only.
//   2. Where the user lives: ASSUMPTION. The public record says only that "IM&P can hint the user's home
//   node"
//      in its stream; the element is not public. edgepair reads the hint as RFC 6120's standard redirect,
//      `<stream:error><see-other-host xmlns='urn:ietf:params:xml:ns:xmpp-streams'>node</see-other-host>`
//      sent in answer to the <auth> of a user who is homed elsewhere. The one place that decides this is
//      home_node_hint() with kHomeNodeHint below: switch it (or add a form) when a capture shows IM&P's
//      real hint. The redirect is followed only to a discovered IM&P node of the same deployment, at most
//      kMaxRedirects times per stream, and the node that finally accepts the user (<success/>) is
//      remembered per worker for credentials.home_cache.
//   3. Fail-over: the home node unreachable -> its presence redundancy group peer (UcNode::imp_peer, from
//      AXL listPresenceRedundancyGroup), then the rest of the deployment's IM&P nodes.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace edgepair::edge_c {

enum class HomeNodeHint {
    None,         // never re-home: the stream stays on the node it was opened on (round-robin, as before)
    SeeOtherHost, // RFC 6120 4.9.3.19 <see-other-host/> answering the <auth> (edgepair's assumption)
};
inline constexpr HomeNodeHint kHomeNodeHint = HomeNodeHint::SeeOtherHost;
inline constexpr int kMaxRedirects = 2;

// The node a server stream element (raw bytes of a top-level <stream:error>) tells the client to use
// instead, lower case, port and brackets removed; nullopt when it is not a home-node hint (kHomeNodeHint).
std::optional<std::string> home_node_hint(std::string_view stream_error_raw);

// Per worker: user -> the IM&P node that last accepted the user, with a bounded lifetime and size.
class ImpHomeCache {
  public:
    explicit ImpHomeCache(size_t max_entries = 100000) : max_(max_entries) {}
    std::optional<std::string> get(std::string_view deployment, std::string_view user, uint64_t now_ms);
    void put(std::string_view deployment, std::string_view user, std::string node, uint64_t now_ms,
             uint64_t ttl_ms);
    size_t size() const { return map_.size(); }

  private:
    struct Entry {
        std::string node;
        uint64_t expires_ms = 0;
    };
    static std::string key(std::string_view deployment, std::string_view user);
    size_t max_;
    std::unordered_map<std::string, Entry> map_;
};

} // namespace edgepair::edge_c
