#pragma once
// Who may use SIP through the edge (issue #15 items 2, 5, 6): SIP OAuth and the per-user MRA access policy.
//
// SIP OAuth (Unified CM 12.5+ "SIP OAuth mode", Expressway X12.5+ CEOAuth zones), switched on per Unified CM
// cluster (oauth.clusters[].sip_oauth): a REGISTER through the edge must carry that cluster's access token,
// which edge-c validates with the same OAuthValidator as HTTP. The flow is then bound to the token's user
// and to the device the REGISTER names, which must be one of that user's devices (CVE-2024-20497: a client
// authenticated as user A must not register or call as user B's device). Every later request of the flow
// runs under that binding: a REGISTER with another user's token or for another device is refused, and a
// flow that never registered with a token may send nothing but ACK and CANCEL.
//
// The MRA access policy (edge-c/mra_access_policy.h) needs an authenticated user, which SIP only has with
// SIP OAuth (Cisco: MRA policies are "based on OAuth"): with mra_policy.enabled, a bound flow of a user
// whose policy for this device class is not "IM & Presence, Voice and Video calls" is refused REGISTER and
// INVITE with 403 and a Warning naming the policy, counted in edgepair_mra_policy_refused_total.
//
// Confirmed: Unified CM validates the token "during SIP registration"; the device name travels in the
// Contact's +u.sip!devicename.ccm.cisco.com (TechNote 217244). Assumed (kept in sip_access.cpp): the token
// travels as `Authorization: Bearer <token>` on the REGISTER (RFC 8898's form; Cisco does not show the
// header), and is forwarded unchanged, since Unified CM validates it again.
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <unordered_map>

#include "common/sip/message.h"

namespace edgepair::edge_c {

class CWorker;
class SipFlow;
class SipRouter;

class SipAccessGate {
  public:
    using Forward = std::function<void(SipFlow&, sip::Message&&)>;
    SipAccessGate(CWorker& w, SipRouter& r, Forward forward) : w_(w), r_(r), forward_(std::move(forward)) {}

    // A request from client flow `f` after the router's own checks. The gate forwards it (now or after a
    // look-up, in the flow's order) or answers it.
    void admit(SipFlow& f, sip::Message&& m);
    void flow_ended(uint64_t flow) { held_.erase(flow); }

  private:
    bool sip_oauth_on(const SipFlow& f) const;
    void check_register(SipFlow& f, sip::Message&& m);
    void decide_register(uint64_t flow, sip::Message&& m, std::string user, std::string device);
    void refuse(SipFlow& f, const sip::Message& m, int status, std::string_view reason,
                std::string_view count, std::string_view warning = {}, std::string_view challenge = {});
    void release(uint64_t flow);

    CWorker& w_;
    SipRouter& r_;
    Forward forward_;
    // Requests that arrived while the flow's REGISTER waits for its user's look-up: kept in order.
    std::unordered_map<uint64_t, std::deque<sip::Message>> held_;
};

} // namespace edgepair::edge_c
