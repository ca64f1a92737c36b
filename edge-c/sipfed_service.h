#pragma once
// edge-c's half of SIP federation (issue #19; edge-e/sip_federation.h has the whole picture).
//
// Inbound (x-sip-federation: in): edge-e sends a remote domain's flow down a link stream; edge-c opens a TCP
// connection to the IM&P routing node (the first of federation.sip.imp_nodes that accepts) for that flow and
// nowhere else: no MRA route (Unified CM, the HTTP allow list) is reachable from it. Every request is checked
// again here: REGISTER is refused, a request outside a dialog must address one of edge-c's domains, a request
// inside one must address an IM&P node (its Contact) or one of our domains, and a Route may name only an IM&P
// node. IM&P answers and sends its in-dialog requests (NOTIFY) on the same connection, which is the flow's:
// replies go back to the node that sent the request.
//
// Outbound: IM&P connects to federation.sip.listen (TCP, from an IM&P node address only) and sends requests
// for remote domains. Per remote domain the connection gets one leg: edge-c sends {"type":"sipfed_dial",
// "id":N,"to":D} on its worker's link and edge-e opens a stream back (x-sip-federation: out, x-sipfed-id: N)
// once it reached D's server. Requests are sent on the leg of their dialog (Call-ID) or of their
// Request-URI's domain; the remote's answers and in-dialog requests come back on the IM&P connection.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/config/federation_config.h"
#include "common/link/link_conn.h"
#include "common/net/listener.h"
#include "common/obs/counter_memo.h"
#include "common/sip/fed_route.h"
#include "common/sip/message.h"

namespace edgepair::edge_c {

class CWorker;
class ImpSipOut;

class SipFedService {
  public:
    explicit SipFedService(CWorker& w);
    ~SipFedService();
    SipFedService(const SipFedService&) = delete;
    SipFedService& operator=(const SipFedService&) = delete;

    // A federation link stream from edge-e (x-sip-federation: in | out).
    void serve(link::LinkStream* s, const link::Headers& headers);
    // sipfed_* control messages from edge-e (sipfed_failed).
    void on_control(std::string_view msg);

    CWorker& worker() { return w_; }
    // federation.sip as it was at start: a reload keeps it for the open flows.
    const config::EdgeCSipFederationConfig& cfg() const { return cfg_; }
    bool local_domain(std::string_view d) const;
    // The host (and port, when given) is one of imp_nodes.
    bool imp_node(std::string_view host, std::optional<uint16_t> port) const;
    uint64_t register_dial(ImpSipOut* s, std::string domain);
    // edge-c's hop for federated Record-Route entries (TCP, as IM&P reaches it); none when listening on `*`
    // without federation.sip.record_route.
    std::optional<sip::FedHop> hop() const;
    // sip::fed_route_through with edge-c's hop, for a request of a dialog with remote domain `domain`.
    std::optional<std::string> route_through(std::string_view bytes, sip::Message& m,
                                             std::string_view domain) const;
    void forget_dials(ImpSipOut* s);
    // edgepair_sip_federation_refusals_total{reason} (edge-c's own checks)
    void count_refusal(std::string_view reason);
    // edgepair_sip_federation_imp_total{direction,result}
    void count(std::string_view direction, std::string_view result);

  private:
    void on_accept(int fd, const net::SockAddr& peer);
    struct Dial {
        ImpSipOut* out = nullptr;
        std::string domain;
    };

    CWorker& w_;
    config::EdgeCSipFederationConfig cfg_;
    std::unique_ptr<net::Listener> listener_;
    std::unordered_map<uint64_t, Dial> dials_;
    uint64_t next_id_ = 1;
    obs::CounterMemo memo_;
};

} // namespace edgepair::edge_c
