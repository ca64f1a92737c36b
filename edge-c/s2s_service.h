#pragma once
// edge-c's half of XMPP federation (issue #19; edge-e/federation.h has the whole picture).
//
// Inbound (x-xmpp-s2s: in): edge-e sends a remote server's restarted stream down a link stream; edge-c opens
// it on the first IM&P node of federation.xmpp.imp_nodes that answers (server-to-server port), negotiating
// STARTTLS itself per federation.xmpp.imp_security, then sends the remote's stream header and relays.
//
// Outbound: IM&P's own outbound federation connects to federation.xmpp.listen, from one of the configured
// IM&P node addresses only (any other source is refused). edge-c answers the pre-TLS stream with STARTTLS,
// reads IM&P's restarted header (its 'to' is the remote domain) and asks edge-e over this worker's link for a
// stream to that domain (control message s2s_dial). edge-e opens a link stream back carrying x-s2s-id; from
// then on the IM&P connection and that stream are relayed raw.
#include <cstdint>
#include <memory>
#include <string_view>
#include <unordered_map>

#include "common/config/federation_config.h"
#include "common/link/link_conn.h"
#include "common/net/listener.h"
#include "common/net/tls_context.h"
#include "common/obs/counter_memo.h"

namespace edgepair::edge_c {

class CWorker;
class ImpS2sOut;

class S2sService {
  public:
    explicit S2sService(CWorker& w);
    ~S2sService();
    S2sService(const S2sService&) = delete;
    S2sService& operator=(const S2sService&) = delete;

    // A federation link stream from edge-e (x-xmpp-s2s: in | out).
    void serve(link::LinkStream* s, const link::Headers& headers);
    // s2s_* control messages from edge-e (s2s_failed).
    void on_control(std::string_view msg);

    CWorker& worker() { return w_; }
    // federation.xmpp as it was at start, and the TLS edge-c offers IM&P: a reload keeps both (a reload that
    // removed the section would otherwise leave the open streams without them).
    const config::EdgeCXmppFederationConfig& cfg() const { return cfg_; }
    const net::TlsServerContext& inside_tls() const { return *inside_tls_; }
    // Outbound requests waiting for edge-e's stream.
    uint64_t register_dial(ImpS2sOut* s);
    void forget_dial(uint64_t id);
    // edgepair_xmpp_federation_imp_total{direction,result}
    void count(std::string_view direction, std::string_view result);

  private:
    void on_accept(int fd, const net::SockAddr& peer);

    CWorker& w_;
    config::EdgeCXmppFederationConfig cfg_;
    std::shared_ptr<const net::TlsServerContext> inside_tls_;
    std::unique_ptr<net::Listener> listener_;
    std::unordered_map<uint64_t, ImpS2sOut*> dials_;
    uint64_t next_id_ = 1;
    obs::CounterMemo memo_;
};

} // namespace edgepair::edge_c
