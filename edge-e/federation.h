#pragma once
// XMPP federation on edge-e (issue #19; common/xmpp/s2s.h has the shape of the relay).
//
// Inbound: a remote server connects to federation.xmpp.listen (5269). edge-e answers its first stream
// itself (STARTTLS per federation.xmpp.security), checks the remote domain against the allow/deny lists and,
// in required mode, the remote's certificate against the domain in its restarted stream header; then the
// restarted stream crosses the link to edge-c (an xmpp stream with x-xmpp-s2s: in), which opens it on IM&P's
// server-to-server port. edge-e keeps framing the remote's side (stanza size limit, well-formedness,
// dialback requests checked against the domain lists); IM&P's side is relayed raw.
//
// Outbound: edge-e never dials into the enterprise, so IM&P's outbound connection ends at edge-c, which asks
// for a stream with a control message {"type":"s2s_dial","id":N,"to":D,"from":F}. edge-e opens a link stream
// back (x-xmpp-s2s: out, x-s2s-id: N) on that same link, reads IM&P's stream header from it, finds D's
// servers by `_xmpp-server._tcp.D` SRV (RFC 6120 3.2: priority, then weighted random; no usable record -> D's
// own A/AAAA on 5269), tries them in order and relays. A refusal or failure is written into the link stream
// as a stream error, which is what IM&P reads. When federation is not configured edge-e answers
// {"type":"s2s_failed","id":N,"error":...} on the control stream.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "common/net/dns.h"
#include "common/obs/counter_memo.h"
#include "common/xmpp/s2s.h"
#include "edge-e/edge_e.h"
#include "edge-e/federation_dns.h"

namespace edgepair::edge_e {

// The link stream header that marks an XMPP stream as server-to-server, and its values.
inline constexpr std::string_view kS2sHeader = "x-xmpp-s2s";

class Federation {
  public:
    explicit Federation(WorkerState& ws);
    ~Federation();
    Federation(const Federation&) = delete;
    Federation& operator=(const Federation&) = delete;

    // A new configuration generation: domain lists, security, resolver (rebuilt when its servers changed).
    void apply(const std::shared_ptr<const Generation>& gen);
    std::unique_ptr<ClientSession> make_inbound(int fd);
    // An s2s_* control message from edge-c on `link` (this worker's).
    void on_control(link::LinkConn* link, std::string_view msg);

    WorkerState& ws() { return ws_; }
    xmpp::S2sSecurity security() const { return security_; }
    const xmpp::DomainPolicy& policy() const { return policy_; }
    bool local_domain(std::string_view d) const;
    net::Resolver* resolver() { return dns_.resolver(); }

    using Target = FederationTarget;
    // The servers of a remote domain, in the order to try them (never called back inline; an empty list
    // means the domain has no reachable server by DNS).
    void targets(const std::string& domain, std::function<void(std::vector<Target>)> cb);

    // edgepair_xmpp_federation_refusals_total{reason}
    void count_refusal(std::string_view reason);
    // edgepair_xmpp_federation_sessions_total{direction,domain}, and one unit of
    // edgepair_xmpp_federation_open{direction,domain} for as long as the session keeps the hold (/status
    // shows these per remote domain)
    obs::GaugeHold count_session(std::string_view direction, std::string_view domain);
    // edgepair_xmpp_federation_dns_failures_total{stage}: "srv" (no usable SRV record: A/AAAA fallback),
    // "address" (a target host did not resolve), "domain" (nothing to try at all).
    void count_dns_failure(std::string_view stage);

  private:
    WorkerState& ws_;
    obs::CounterMemo memo_;
    FederationDns dns_;    // _xmpp-server._tcp, else the domain on 5269
    bool enabled_ = false; // the current generation has federation.xmpp
    xmpp::S2sSecurity security_ = xmpp::S2sSecurity::Required;
    xmpp::DomainPolicy policy_;
    std::vector<std::string> local_;
    std::unordered_set<std::string> labelled_; // domains with their own metric label on this worker
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

} // namespace edgepair::edge_e
