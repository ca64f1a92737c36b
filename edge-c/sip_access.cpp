#include "edge-c/sip_access.h"

#include <chrono>
#include <variant>

#include <fmt/format.h>

#include "common/mra/allow_list.h"
#include "common/obs/log.h"
#include "common/sip/lex.h"
#include "common/sip/proxy.h"
#include "common/sip/uri.h"
#include "edge-c/edge_c.h"
#include "edge-c/mra_access_policy.h"
#include "edge-c/oauth_validator.h"
#include "edge-c/sip_router.h"

namespace edgepair::edge_c {

namespace {

constexpr const char* kLog = "sip";
// Assumption (header comment): the access token rides in this header with the Bearer scheme (RFC 8898).
constexpr std::string_view kTokenHeader = "Authorization";
// Where Jabber names its device in the REGISTER's Contact (TechNote 217244).
constexpr std::string_view kDeviceParam = "+u.sip!devicename.ccm.cisco.com";
// RFC 8898 section 2.3: what a registrar answers a REGISTER without a usable token.
constexpr std::string_view kBearerChallenge = "Bearer realm=\"Cisco-Edge\"";
constexpr std::string_view kBearerInvalid = "Bearer realm=\"Cisco-Edge\", error=\"invalid_token\"";

std::optional<std::string_view> bearer_token(const sip::Message& m) {
    const sip::Header* h = m.find(kTokenHeader);
    return h ? bearer_of(h->value) : std::nullopt;
}

bool is_edge_token_field(const sip::Header& h) {
    // Proxy-Authorization too: whichever field a client puts it in, the token stays with the edge.
    if (h.id != sip::HeaderId::other ||
        !(sip::lex::iequals(h.name, kTokenHeader) || sip::lex::iequals(h.name, "Proxy-Authorization")))
        return false;
    auto b = bearer_of(h.value);
    return b && b->starts_with(kEdgeTokenPrefix);
}

// The device every Contact of the REGISTER names; empty when none does or two disagree.
std::string device_of(const sip::Message& m) {
    std::string out;
    for (auto v : m.values(sip::HeaderId::contact)) {
        auto na = sip::NameAddr::parse(v);
        if (!na) return {};
        auto d = na->params.get(kDeviceParam);
        if (!d) return {};
        std::string_view s = *d;
        if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
        if (s.empty() || (!out.empty() && out != s)) return {};
        out = std::string(s);
    }
    return out;
}

std::string deployment_of(CWorker& w, const SipFlow& f) {
    auto snap = w.snapshot();
    if (!snap) return "default";
    const mra::Domain* d = snap->find_domain(f.domain());
    return snap->resolve_deployment(d ? d->deployment : std::string_view{});
}

} // namespace

bool sip_token_required(bool sip_oauth, config::SsoMode domain_mode) {
    return sip_oauth || domain_mode == config::SsoMode::Exclusive;
}

std::optional<std::string_view> sip_edge_token(const sip::Message& m) {
    for (const auto& h : m.headers())
        if (is_edge_token_field(h)) return bearer_of(h.value);
    return std::nullopt;
}

size_t strip_sip_edge_tokens(sip::Message& m) {
    auto& hs = m.headers();
    const size_t before = hs.size();
    std::erase_if(hs, is_edge_token_field);
    return before - hs.size();
}

std::variant<EdgeTokenClaims, std::string>
open_sip_edge_token(const EdgeTokenSealer& sealer, std::string_view token, std::string_view deployment,
                    config::SsoMode domain_mode, uint64_t now_ms, uint64_t lifetime_ms, uint64_t extra_ms,
                    const CredentialStamps& stamps) {
    auto r = sealer.open(token, deployment, now_ms, lifetime_ms + extra_ms, stamps);
    if (auto* why = std::get_if<EdgeTokenRefusal>(&r)) return std::string(refusal_label(*why));
    auto& c = std::get<EdgeTokenClaims>(r);
    // seeds/002 Exclusive: "the IdP ... is the only permitted authentication agent".
    if (!c.sso && domain_mode == config::SsoMode::Exclusive) return std::string("sso_exclusive");
    return std::move(c);
}

config::SsoMode SipAccessGate::credential_sso_mode(const SipFlow& f) const {
    return config::credential_sso_mode(w_.gen()->cfg, f.domain());
}

bool SipAccessGate::sip_oauth_on(const SipFlow& f) const {
    const auto& clusters = w_.gen()->cfg.oauth.clusters;
    bool any = false;
    for (const auto& c : clusters)
        any = any || c.sip_oauth;
    if (!any) return false;
    const std::string dep = deployment_of(w_, f);
    for (const auto& c : clusters)
        if (c.sip_oauth && c.deployment == dep) return true;
    return false;
}

void SipAccessGate::admit(SipFlow& f, sip::Message&& m) {
    if (auto it = held_.find(f.id()); it != held_.end()) {
        it->second.push_back(std::move(m));
        return;
    }
    auto& id = f.identity;
    const std::string& method = m.method();
    const bool required = sip_token_required(sip_oauth_on(f), credential_sso_mode(f));
    // Once a token bound the flow it stays bound, whatever the cluster requires.
    const bool held_to_token = required || !id.user.empty() || !id.refused_policy.empty();
    if (method == "REGISTER" && (held_to_token || sip_edge_token(m))) return check_register(f, std::move(m));
    if (!held_to_token || method == "ACK" || method == "CANCEL") {
        strip_sip_edge_tokens(m); // only a REGISTER binds with it; nowhere does it leave the pair
        return forward_(f, std::move(m));
    }
    if (!id.refused_policy.empty() && method == "INVITE") {
        w_.counters()
            .get("edgepair_mra_policy_refused_total", "Requests refused by the user's MRA access policy",
                 {{"service", "sip"}, {"policy", id.refused_policy}})
            .inc();
        return refuse(f, m, 403, "Forbidden by MRA access policy", "mra_policy",
                      fmt::format("MRA access policy of user {}: {}", id.refused_user, id.refused_policy));
    }
    if (id.user.empty()) return refuse(f, m, 403, "Not registered with an access token", "sip_oauth_unbound");
    if (method == "INVITE" && !id.voice) {
        return refuse(f, m, 403, "Forbidden by MRA access policy", "mra_policy",
                      fmt::format("MRA access policy of user {}: {}", id.user, id.policy));
    }
    strip_sip_edge_tokens(m);
    forward_(f, std::move(m));
}

std::optional<std::string> SipAccessGate::check_edge_token(SipFlow& f, const sip::Message& m,
                                                           std::string_view token) {
    const auto& g = w_.gen();
    if (!g->edge_tokens) {
        refuse(f, m, 401, "Invalid access token", "sip_edge_token_unavailable", {}, kBearerInvalid);
        return std::nullopt;
    }
    const auto mode = credential_sso_mode(f);
    auto r = open_sip_edge_token(*g->edge_tokens, token, deployment_of(w_, f), mode, wall_clock_ms(),
                                 uint64_t(g->cfg.credentials.refresh_interval.count()),
                                 uint64_t(g->cfg.sso.sip_token_extra_ttl.count()), w_.credential_stamps());
    if (auto* why = std::get_if<std::string>(&r)) {
        if (*why == "sso_exclusive") {
            EP_INFO(kLog, "flow {} ({}): REGISTER refused: domain {} signs in through its IdP only", f.id(),
                    f.client(), f.domain());
            refuse(f, m, 403, "Single sign-on only", "sso_exclusive",
                   fmt::format("domain {} accepts only tokens from single sign-on", f.domain()));
            return std::nullopt;
        }
        w_.counters()
            .get("edgepair_edge_token_refused_total", "Edge tokens refused, by reason", {{"reason", *why}})
            .inc();
        EP_INFO(kLog, "flow {} ({}): REGISTER refused: edge token refused: {}", f.id(), f.client(), *why);
        refuse(f, m, 401, "Invalid access token", "sip_edge_token_" + *why, {}, kBearerInvalid);
        return std::nullopt;
    }
    return std::get<EdgeTokenClaims>(std::move(r)).user;
}

void SipAccessGate::check_register(SipFlow& f, sip::Message&& m) {
    auto token = sip_edge_token(m);
    if (!token) token = bearer_token(m);
    if (!token) {
        return refuse(f, m, 401, "Access token required",
                      sip_oauth_on(f) ? "sip_oauth_no_token" : "sip_token_required", {}, kBearerChallenge);
    }
    std::string user;
    if (token->starts_with(kEdgeTokenPrefix)) {
        auto u = check_edge_token(f, m, *token);
        if (!u) return;
        user = std::move(*u);
        // Unified CM cannot validate it and must never see it: the REGISTER goes on without it.
        strip_sip_edge_tokens(m);
    } else {
        auto r = check_access_token(w_, *token, deployment_of(w_, f));
        if (auto* reason = std::get_if<const char*>(&r)) {
            EP_INFO(kLog, "flow {} ({}): REGISTER refused: OAuth token refused: {}", f.id(), f.client(),
                    *reason);
            return refuse(f, m, 401, "Invalid access token", std::string("sip_oauth_") + *reason, {},
                          kBearerInvalid);
        }
        user = std::move(std::get<OAuthIdentity>(r).user);
    }
    std::string device = device_of(m);
    if (device.empty()) return refuse(f, m, 403, "No device name in Contact", "sip_oauth_no_device");
    auto& id = f.identity;
    if (!id.user.empty() && (!mra::same_user(id.user, user) || id.device != device)) {
        EP_WARN(kLog, "flow {} ({}): REGISTER as {} / {} refused: the flow is bound to {} / {}", f.id(),
                f.client(), user, device, id.user, id.device);
        return refuse(f, m, 403, "Flow bound to another identity", "identity_mismatch");
    }
    // Later requests of this flow wait for the look-up, so they cannot overtake the REGISTER.
    held_[f.id()];
    w_.mra_access().lookup(
        user, deployment_of(w_, f),
        [this, fid = f.id(), m = std::move(m), user, device](Result<UserAccess> a) mutable {
            SipFlow* fl = r_.find_flow(fid);
            if (!fl) {
                held_.erase(fid);
                return;
            }
            if (!a) {
                // Identity binding cannot be skipped (mra_policy.allow_on_lookup_error or not): no device
                // list, no registration.
                refuse(*fl, m, 503, "User directory unavailable", "policy_lookup_failed");
                return release(fid);
            }
            const auto& acc = *a;
            auto& id = fl->identity;
            if (!acc.owns_device(device)) {
                EP_WARN(kLog, "flow {} ({}): REGISTER refused: device {} is not one of user {}'s devices",
                        fid, fl->client(), device, user);
                refuse(*fl, m, 403, "Device not associated with the authenticated user", "identity_mismatch");
                return release(fid);
            }
            const auto& pc = w_.gen()->cfg.mra_policy;
            MraPolicy pol = MraPolicy::ImVoiceVideo;
            if (pc.enabled)
                pol = effective_policy(acc, device_class_of_sip_device(device), pc.unknown_device_class);
            if (!policy_allows(pol, MraService::Sip)) {
                w_.mra_access().count_refusal(MraService::Sip, pol);
                id.refused_user = user;
                id.refused_policy = policy_label(pol);
                EP_INFO(kLog, "flow {} ({}): REGISTER of {} refused: MRA access policy {}", fid, fl->client(),
                        user, policy_label(pol));
                refuse(*fl, m, 403, "Forbidden by MRA access policy", "mra_policy",
                       fmt::format("MRA access policy of user {}: {}", user, policy_label(pol)));
                return release(fid);
            }
            id.user = user;
            id.device = device;
            id.policy = policy_label(pol);
            id.voice = true;
            EP_DEBUG(kLog, "flow {} ({}): bound to user {} device {}", fid, fl->client(), user, device);
            forward_(*fl, std::move(m));
            release(fid);
        });
}

void SipAccessGate::release(uint64_t flow) {
    // Replays what waited, in order; one of them may be another REGISTER that holds the flow again.
    auto it = held_.find(flow);
    if (it == held_.end()) return;
    auto q = std::move(it->second);
    held_.erase(it);
    while (!q.empty()) {
        SipFlow* f = r_.find_flow(flow);
        if (!f) return;
        sip::Message m = std::move(q.front());
        q.pop_front();
        if (auto again = held_.find(flow); again != held_.end()) {
            again->second.push_back(std::move(m));
            continue;
        }
        admit(*f, std::move(m));
    }
}

void SipAccessGate::refuse(SipFlow& f, const sip::Message& m, int status, std::string_view reason,
                           std::string_view count, std::string_view warning, std::string_view challenge) {
    r_.count(count);
    if (m.method() == "ACK") return;
    auto resp = sip::make_response(m, status, reason, r_.random_token());
    if (!challenge.empty()) resp.append_header("WWW-Authenticate", std::string(challenge));
    // RFC 3261 20.43: code 399 "miscellaneous warning" with the edge as the agent; the text says which
    // policy.
    if (!warning.empty())
        resp.append_header("Warning", fmt::format("399 {} \"{}\"", w_.gen()->cfg.node_name, warning));
    f.send(resp.serialize());
}

} // namespace edgepair::edge_c
