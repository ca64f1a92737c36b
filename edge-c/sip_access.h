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
// The MRA access policy (edge-c/mra_access_policy.h) needs an authenticated user, which SIP only has on a
// flow a token bound (Cisco: MRA policies are "based on OAuth"; here an edge token counts too): with
// mra_policy.enabled, a bound flow of a user whose policy for this device class is not "IM & Presence, Voice
// and Video calls" is refused REGISTER and INVITE with 403 and a Warning naming the policy, counted in
// edgepair_mra_policy_refused_total.
//
// Confirmed: Unified CM validates the token "during SIP registration"; the device name travels in the
// Contact's +u.sip!devicename.ccm.cisco.com (TechNote 217244). Assumed (kept in sip_access.cpp): the token
// travels as `Authorization: Bearer <token>` on the REGISTER (RFC 8898's form; Cisco does not show the
// header), and is forwarded unchanged, since Unified CM validates it again.
//
// After single sign-on (issue #21), and after a password sign-in, the client holds an edge token
// (edge-c/edge_token.h) rather than a Unified CM token. It registers with it the same way: as the Bearer of
// the REGISTER. edge-c opens it with the EdgeTokenSealer (deployment, lifetime, password stamp), binds the
// flow to the token's user and to one of that user's devices exactly as for OAuth, and removes the token
// before the REGISTER leaves the pair: Unified CM cannot validate it, and like the HTTP path (which strips it
// from Authorization and Cookie) no internal host ever sees it. A REGISTER must carry a token when SIP OAuth
// is on for the flow's cluster or when the domain is in SSO mode Exclusive (seeds/002: the IdP "is the only
// permitted authentication agent"), where an edge token bought with a password is refused as on HTTP (an
// OAuth token is accepted: Unified CM issues those after its own sign-in, as on HTTP). Elsewhere a REGISTER
// without a token is forwarded as before (Unified CM's own SIP checks), and one with an edge token is
// checked and bound all the same, so the token never leaves the pair.
//
// Confirmed (seeds/002, "Extend SIP Authorization Token Lifetime"): with SSO the Expressway authorizes SIP
// with a token whose lifetime follows the credentials, plus "SIP token extra time-to-live" (here
// sso.sip_token_extra_ttl). Assumed: that the client presents it as `Authorization: Bearer` on the REGISTER
// (Cisco documents neither the header nor the token's form), kept in sip_access.cpp with the OAuth one.
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>

#include "common/config/common_config.h"
#include "common/sip/message.h"
#include "edge-c/edge_token.h"

namespace edgepair::edge_c {

// Whether every REGISTER of a flow must carry a token (see above).
bool sip_token_required(bool sip_oauth, config::SsoMode domain_mode);
// The edge token a SIP request carries as `Authorization: Bearer ept1...` (or in Proxy-Authorization), if
// any.
std::optional<std::string_view> sip_edge_token(const sip::Message& m);
// Removes every Authorization / Proxy-Authorization field that carries an edge token; returns how many.
size_t strip_sip_edge_tokens(sip::Message& m);
// Opens an edge token presented on SIP. lifetime_ms: credentials.refresh_interval; extra_ms:
// sso.sip_token_extra_ttl; stamps: the opening worker's memory of passwords seen. On refusal, the reason
// (refusal_label(), or "sso_exclusive" for a password-bought token in an Exclusive domain).
std::variant<EdgeTokenClaims, std::string>
open_sip_edge_token(const EdgeTokenSealer& sealer, std::string_view token, std::string_view deployment,
                    config::SsoMode domain_mode, uint64_t now_ms, uint64_t lifetime_ms, uint64_t extra_ms,
                    const CredentialStamps& stamps);

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
    // The mode that governs this flow's credentials (config::credential_sso_mode: its deployment's
    // strictest).
    config::SsoMode credential_sso_mode(const SipFlow& f) const;
    void check_register(SipFlow& f, sip::Message&& m);
    // The token's user, or nullopt when it answered the REGISTER.
    std::optional<std::string> check_edge_token(SipFlow& f, const sip::Message& m, std::string_view token);
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
