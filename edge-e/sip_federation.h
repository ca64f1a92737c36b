#pragma once
// SIP federation on edge-e (issue #19; docs/ARCHITECTURE.md "SIP federation" has the whole picture).
//
// Inbound: a remote domain's SIP server connects over TLS to federation.sip.listen, a listener of its own:
// nothing that arrives there can open an MRA flow (no registration, no token, no Unified CM), because its
// link streams carry `x-sip-federation: in` and edge-c serves those with the federation service only, which
// connects to the IM&P routing node and nowhere else. edge-e frames the remote's messages and holds every
// request to the federation policy before it may cross the link: REGISTER is refused (403), the From domain
// must pass the allow/deny lists (403), and a request outside a dialog must address one of our domains
// (404). Refusals are answered here and counted by reason.
//
// Outbound: IM&P sends a request for a remote domain to edge-c's inside listener; edge-c asks on the control
// stream {"type":"sipfed_dial","id":N,"to":D}. edge-e checks D against the lists, finds D's servers by
// `_sips._tcp.D`, then `_sip._tcp.D` SRV (RFC 3263 4.2 / RFC 2782: priority, then weighted random), else D's
// own address on 5061, connects over TLS (the certificate must name D, RFC 5922, unless tls_verify is off)
// and then opens a link stream back (`x-sip-federation: out`, `x-sipfed-id: N`) that relays both ways.
// A refusal or failure is {"type":"sipfed_failed","id":N,"status":S,"error":...}; edge-c answers IM&P's
// waiting requests with S.
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

// The link stream header that marks a SIP stream as federation, and its values ("in" | "out").
inline constexpr std::string_view kSipFederationHeader = "x-sip-federation";

class SipFederation {
  public:
    explicit SipFederation(WorkerState& ws);
    ~SipFederation();
    SipFederation(const SipFederation&) = delete;
    SipFederation& operator=(const SipFederation&) = delete;

    void apply(const std::shared_ptr<const Generation>& gen);
    std::unique_ptr<ClientSession> make_inbound(int fd);
    // A sipfed_* control message from edge-c on `link` (this worker's).
    void on_control(link::LinkConn* link, std::string_view msg);

    WorkerState& ws() { return ws_; }
    const xmpp::DomainPolicy& policy() const { return policy_; }
    bool local_domain(std::string_view d) const;
    net::Resolver* resolver() { return dns_.resolver(); }

    using Target = FederationTarget;
    // The servers of a remote domain in the order to try them (never called back inline; empty: none).
    void targets(const std::string& domain, std::function<void(std::vector<Target>)> cb);

    // edgepair_sip_federation_refusals_total{reason}
    void count_refusal(std::string_view reason);
    // edgepair_sip_federation_sessions_total{direction,domain}, and one unit of
    // edgepair_sip_federation_open{direction,domain} for as long as the flow keeps the hold (/status shows
    // these per remote domain)
    obs::GaugeHold count_session(std::string_view direction, std::string_view domain);
    // edgepair_sip_federation_requests_total{direction,method}: requests relayed, "in" from a remote domain,
    // "out" to one (in-dialog ones included: the evidence that a dialog's route set runs through the pair)
    void count_request(std::string_view direction, std::string_view method);
    // edgepair_sip_federation_target_failures_total{domain}: a server of an SRV answer (or the domain's own
    // address) that did not take the connection; the next one is tried
    void count_target_failure(std::string_view domain);
    // edgepair_sip_federation_dns_failures_total{stage}: "sips" (no _sips._tcp record), "sip" (no _sip._tcp
    // record either: the domain's own address), "address" (a target did not resolve), "domain" (nothing to
    // try)
    void count_dns_failure(std::string_view stage);

  private:
    WorkerState& ws_;
    obs::CounterMemo memo_;
    // RFC 3263 4.2 for a SIP (not SIPS) URI over TLS: _sips._tcp, then _sip._tcp (its targets are dialled
    // with TLS too: the pair federates over TLS only), then the domain's own address on 5061.
    FederationDns dns_;
    bool enabled_ = false;
    xmpp::DomainPolicy policy_;
    std::vector<std::string> local_;
    std::unordered_set<std::string> labelled_;
    std::string domain_label(std::string_view domain);
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

} // namespace edgepair::edge_e
