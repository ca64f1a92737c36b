// edge-c's half of the HTTP edge: every HTTPS request a remote client sends to edge-e 8443 arrives here as
// one link stream (request headers = the client's end-to-end headers + edge-e's x-edge-* facts; the body as
// DATA) and is answered here: get_edge_config and get_edge_sso from the MRA snapshot, and
// /<b64 domain>/http(s)/<host>/<port>/<path> proxied to the internal node once the user's credentials and
// the allow list say so. Bodies stream in both directions; backpressure travels through the link's
// per-stream flow control on one side and the upstream socket on the other.
#include "edge-c/http_service.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <memory>
#include <string>
#include <unordered_map>
#include <variant>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/http/b64_domain.h"
#include "common/http/h1_client.h"
#include "common/http/header_policy.h"
#include "common/http/query.h"
#include "common/mra/edge_config.h"
#include "common/mra/request_gate.h"
#include "common/obs/access_log.h"
#include "common/obs/log.h"
#include "common/obs/metrics.h"
#include "edge-c/credentials.h"
#include "edge-c/edge_c.h"
#include "edge-c/edge_token.h"
#include "edge-c/home_cluster.h"
#include "edge-c/mra_access_policy.h"
#include "edge-c/oauth_validator.h"
#include "edge-c/saml_sp.h"

namespace edgepair::edge_c {

namespace {

constexpr const char* kLog = "http";
constexpr const char* kRealm = mra::kClientAuthChallenge;

// ---- per-worker state (owned by the CWorker) ----

// Views all the way to the worker's memo: most requests count two or three events, and building the
// family's name, help and label set as strings for each cost more than the rest of the bookkeeping.
void count(CWorker& w, std::string_view name, std::string_view help, obs::CounterMemo::LabelViews labels) {
    w.counters().get_views(name, help, labels).inc();
}

// ---- small helpers ----

std::string_view hv(const link::Headers& h, std::string_view name) {
    return link::header_value(h, name);
}

std::string lower_ascii(std::string_view s) {
    std::string out(s);
    for (auto& c : out)
        if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
    return out;
}

std::optional<uint16_t> parse_u16(std::string_view s) {
    if (s.empty() || s.size() > 5) return std::nullopt;
    unsigned v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size() || v > 65535) return std::nullopt;
    return uint16_t(v);
}

// The Unified CM OAuth endpoints a client uses to get and refresh its tokens (CUCM security guide, DevNet
// "Bad Request for SSO Request URI"). Unified CM authenticates these requests itself, so the edge passes them
// without edge credentials: exactly these paths, to a discovered Unified CM node, over https, and only as far
// as the allow list lets them. Revocation (/ssosp/token/revoke) is an administrator's call and stays behind
// the edge's check like any other path.
bool is_oauth_endpoint(const http::MraPath& p, std::string_view target, const mra::Snapshot& snap) {
    constexpr std::string_view kPaths[] = {"/ssosp/oauth/authorize", "/ssosp/oauth/token"};
    if (p.scheme != "https") return false;
    const mra::UcNode* node = snap.find_node(p.host);
    if (!node || node->type != mra::NodeType::UnifiedCM) return false;
    std::string_view path = target.substr(0, target.find('?'));
    for (auto k : kPaths)
        if (path == k) return true;
    return false;
}

// RFC 6750 3.1: tells the client its access token is no good so it refreshes, instead of prompting for a
// password. The Basic challenge comes first: clients that only know Basic read the first one.
constexpr const char* kBearerInvalid = "Bearer error=\"invalid_token\"";

constexpr const char* kSsoTokensMetric = "edgepair_sso_tokens_total";
constexpr const char* kSsoTokensHelp = "Tokens answered after a SAML sign-in, by kind (edge: an edge token; "
                                       "unified_cm: Unified CM OAuth tokens)";

std::string_view kind_label(http::MraKind k) {
    switch (k) {
    case http::MraKind::EdgeConfig:
        return "edge_config";
    case http::MraKind::EdgeSso:
        return "edge_sso";
    case http::MraKind::Proxy:
        return "proxy";
    case http::MraKind::SsoAuthorize:
        return "sso_authorize";
    case http::MraKind::SsoFedlet:
        return "sso_fedlet";
    case http::MraKind::Other:
        return "other";
    }
    return "other";
}

// ---- one stream ----

class HttpStream final : public link::StreamHandler, public http::ExchangeHandler {
  public:
    HttpStream(CWorker& w, link::LinkStream* s, const link::Headers& h)
        : w_(w), s_(s), req_(h), method_(hv(h, ":method")) {}

    void start();

    // link::StreamHandler
    void on_data(link::LinkStream&, const char* data, size_t len) override;
    void on_end(link::LinkStream&) override;
    void on_writable(link::LinkStream&) override;
    void on_close(link::LinkStream&, const core::Failure& failure) override;

    // http::ExchangeHandler
    void on_response_head(const http::ResponseHead& head) override;
    void on_response_body(std::string_view data) override;
    void on_response_end() override;
    void on_error(const http::ClientError& err) override;
    void on_request_writable() override;

  private:
    void authenticate(std::function<void(const AuthOutcome&)> next);
    // `next` behind the user's MRA access policy (edge-c/mra_access_policy.h), when mra_policy is enabled.
    std::function<void(const AuthOutcome&)> with_mra_policy(std::function<void(const AuthOutcome&)> next);
    void refuse_other_user(const std::string& owner, const std::string& user);
    void check_edge_token(std::string_view token, const std::function<void(const AuthOutcome&)>& next);
    void check_oauth(std::string_view token, const std::function<void(const AuthOutcome&)>& next);
    bool over_authorization_limit(std::string_view user, const char* method);
    void issue_edge_token(const AuthOutcome& who, const std::string& password);
    void serve_edge_config(const AuthOutcome& who);
    void serve_edge_sso();
    void answer_edge_sso(bool available, const char* why);
    void serve_sso_authorize();
    void consume_assertion();
    void signed_in_by_assertion(SamlIdentity id); // consumed and admitted (not a replay, solicited)
    void refuse_assertion(SamlRefusal why, const std::string& detail);
    void sso_signed_in(const SamlIdentity& id, const std::string& node);
    void unified_cm_tokens(const SamlIdentity& id, const std::string& node);
    void refuse_ucm_tokens(const char* result, int status, const std::string& why);
    config::SsoMode sso_mode() const;
    std::string acs_url() const;
    bool refuse_credentials_in_exclusive(const char* kind);
    void serve_proxy_checked();
    void start_exchange();
    void respond(int status, std::string_view body, const link::Headers& extra = {},
                 std::string_view content_type = "text/plain; charset=utf-8");
    void record(int status);
    void release_owed();
    void destroy_later();

    CWorker& w_;
    link::LinkStream* s_; // null once the stream is gone (on_close seen or we reset it)
    link::Headers req_;
    std::string method_;
    std::shared_ptr<const mra::Snapshot> snap_;
    http::MraPath path_;
    std::string deployment_;
    std::string forward_target_; // proxy: the request-target the allow list matched
    std::string kind_ = "invalid";
    bool upstream_verify_ = true;
    // Authenticated by an edge token: its Authorization field stays here (the token is the edge's, and the
    // whole point is that no password goes upstream).
    bool drop_authorization_ = false;
    link::Headers auth_extra_;     // get_edge_config: the Set-Cookie with a new edge token
    bool collecting_form_ = false; // fedlet: the POST body is read whole, then checked
    std::string form_;

    std::string pending_body_; // request bytes received before the exchange exists, not yet consumed
    bool req_ended_ = false;
    http::Exchange* x_ = nullptr;
    size_t owed_ = 0; // bytes handed to the exchange while it said "stop": consumed() once it drains
    bool req_blocked_ = false;
    bool head_sent_ = false;
    bool resp_paused_ = false;
    bool responded_ = false; // our answer is complete (or abandoned): extra request bytes are discarded
    bool recorded_ = false;
    bool dying_ = false;
    obs::HttpAccess access_; // this request's log.access line, under the id edge-e gave it
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

void HttpStream::start() {
    snap_ = w_.snapshot();
    // The same decisions edge-e made before it opened this stream (common/mra/request_gate.h). A refusal
    // here means the two edges disagree (different snapshots during a reload, or a bug): answered like
    // edge-e would, and counted under the same labels with side="edge-c".
    mra::GateRequest gr;
    gr.method = method_;
    gr.target = hv(req_, ":path");
    access_.begin(w_.gen()->access_log, obs::checked_request_id(hv(req_, obs::kRequestIdHeader)),
                  hv(req_, "x-client-addr"), method_, gr.target);
    gr.field_names.reserve(req_.size());
    for (const auto& [k, v] : req_)
        gr.field_names.emplace_back(k);
    auto verdict = mra::decide(snap_.get(), gr);
    path_ = std::move(verdict.path);
    deployment_ = std::move(verdict.deployment);
    kind_ = verdict.reason == mra::GateReason::NoConfig  ? "unavailable"
            : verdict.reason == mra::GateReason::BadPath ? "invalid"
                                                         : std::string(kind_label(path_.kind));
    if (!verdict.passed()) {
        count(w_, mra::kRejectedMetric, mra::kRejectedHelp, {{"side", "edge-c"}, {"reason", verdict.label}});
        if (verdict.reason == mra::GateReason::Blocked)
            count(w_, mra::kBlockedMetric, mra::kBlockedHelp,
                  {{"side", "edge-c"}, {"reason", std::string(mra::block_stage_label(verdict.block_stage))}});
        access_.set_reason(verdict.label);
        EP_INFO(kLog, "stream {}: {} {} refused ({}): {}", s_->id(), method_, obs::redact_target(gr.target),
                verdict.label, verdict.log);
        link::Headers extra;
        if (!verdict.allow.empty()) extra.emplace_back("allow", verdict.allow);
        return respond(verdict.status, verdict.message + "\n", extra);
    }
    forward_target_ = std::move(verdict.forward_target);
    if (verdict.params_dropped) {
        count(w_, "edgepair_http_path_params_dropped_total",
              "Proxied requests whose ;params were dropped from the forwarded path", {{"side", "edge-c"}});
        EP_DEBUG(kLog, "stream {}: ;params dropped: {} is forwarded as {}", s_->id(),
                 obs::redact_target(gr.target), obs::redact_target(forward_target_));
    }

    switch (path_.kind) {
    case http::MraKind::EdgeSso:
        return serve_edge_sso();
    case http::MraKind::SsoAuthorize:
        return serve_sso_authorize();
    case http::MraKind::SsoFedlet:
        if (sso_mode() == config::SsoMode::Off || !w_.gen()->saml) {
            access_.set_reason("sso_off");
            return respond(404, "single sign-on is off for this domain\n");
        }
        collecting_form_ = true;
        return;
    case http::MraKind::EdgeConfig:
        return authenticate([this](const AuthOutcome& who) { serve_edge_config(who); });
    case http::MraKind::Proxy: {
        // The allow list was checked before the credentials: a blocked request must not cost a UDS round trip
        // (edge-e already refused it before authentication too, so no policy leaks here).
        // A discovered node is reached with the verify mode its discovery used; anything else the operator
        // allowed by hand is verified against the trusted CAs.
        const mra::UcNode* node = snap_->find_node(path_.host);
        upstream_verify_ = node ? node->tls_verify : true;
        if (is_oauth_endpoint(path_, forward_target_, *snap_)) {
            count(w_, "edgepair_http_auth_total", "End-user credential checks on the HTTP edge",
                  {{"side", "edge-c"}, {"result", "oauth_endpoint"}});
            return serve_proxy_checked();
        }
        return authenticate([this, owner = std::move(verdict.owner_user)](const AuthOutcome& who) {
            // An own-user rule (UDS settings writes): only the signed-in user's own id (issue #16).
            if (!owner.empty() && !mra::same_user(owner, who.user)) return refuse_other_user(owner, who.user);
            serve_proxy_checked();
        });
    }
    case http::MraKind::Other:
        break;
    }
    respond(404, "not found\n");
}

void HttpStream::refuse_other_user(const std::string& owner, const std::string& user) {
    count(w_, mra::kRejectedMetric, mra::kRejectedHelp, {{"side", "edge-c"}, {"reason", "blocked"}});
    count(w_, mra::kBlockedMetric, mra::kBlockedHelp,
          {{"side", "edge-c"}, {"reason", std::string(mra::block_stage_label(mra::BlockStage::User))}});
    access_.set_reason("blocked");
    EP_INFO(kLog, "stream {}: {} under user {} refused: signed in as {}", s_->id(), method_, owner, user);
    respond(403, "blocked by the HTTP allow list\n");
}

void HttpStream::check_edge_token(std::string_view token,
                                  const std::function<void(const AuthOutcome&)>& next) {
    const auto& g = w_.gen();
    if (!g->edge_tokens) return respond(401, "invalid token\n", {{"www-authenticate", kRealm}});
    auto r =
        g->edge_tokens->open(token, deployment_, wall_clock_ms(),
                             uint64_t(g->cfg.credentials.refresh_interval.count()), w_.credential_stamps());
    if (auto* why = std::get_if<EdgeTokenRefusal>(&r)) {
        count(w_, "edgepair_edge_token_refused_total", "Edge tokens refused, by reason",
              {{"reason", std::string(refusal_label(*why))}});
        count(w_, "edgepair_http_auth_total", "End-user credential checks on the HTTP edge",
              {{"side", "edge-c"}, {"result", "token_refused"}});
        EP_INFO(kLog, "stream {}: edge token refused: {}", s_->id(), refusal_label(*why));
        // The Basic challenge sends the client back to its password, which gets it a new token.
        return respond(401, "invalid token\n", {{"www-authenticate", kRealm}});
    }
    auto& c = std::get<EdgeTokenClaims>(r);
    if (!c.sso && refuse_credentials_in_exclusive("edge_token")) return;
    if (over_authorization_limit(c.user, "edge_token")) return;
    count(w_, "edgepair_http_auth_total", "End-user credential checks on the HTTP edge",
          {{"side", "edge-c"}, {"result", "edge_token"}});
    drop_authorization_ = true;
    AuthOutcome o;
    o.verdict = AuthOutcome::Verdict::Allowed;
    o.user = c.user;
    o.node = c.node;
    o.cached = true;
    next(o);
}

void HttpStream::check_oauth(std::string_view token, const std::function<void(const AuthOutcome&)>& next) {
    auto r = check_access_token(w_, token, deployment_);
    if (auto* reason = std::get_if<const char*>(&r)) {
        count(w_, "edgepair_http_auth_total", "End-user credential checks on the HTTP edge",
              {{"side", "edge-c"}, {"result", "token_refused"}});
        EP_INFO(kLog, "stream {}: OAuth token refused: {}", s_->id(), *reason);
        return respond(401, "invalid token\n",
                       {{"www-authenticate", kRealm}, {"www-authenticate", kBearerInvalid}});
    }
    auto& id = std::get<OAuthIdentity>(r);
    if (over_authorization_limit(id.user, "oauth")) return;
    count(w_, "edgepair_http_auth_total", "End-user credential checks on the HTTP edge",
          {{"side", "edge-c"}, {"result", "oauth"}});
    EP_DEBUG(kLog, "stream {}: OAuth token of user {} (cluster {})", s_->id(), id.user, id.cluster);
    AuthOutcome o;
    o.verdict = AuthOutcome::Verdict::Allowed;
    o.user = id.user;
    o.cached = true;
    o.oauth = true;
    // The access token goes upstream unchanged: Unified CM, IM&P and Unity Connection validate it themselves.
    next(o);
}

// seeds/002 "Authorization Rate Control": "Each time a client supplies credentials to authorize the user"
// counts, and one beyond credentials.max_authorizations within authorization_period gets 429. An
// authorization here is a sign-in: get_edge_config with a password, an edge token or an OAuth token. Other
// requests carry what the sign-in gave (or a cached password) and are not counted, or the limit would refuse
// a signed-in client its ordinary traffic. Returns true when it answered 429.
bool HttpStream::over_authorization_limit(std::string_view user, const char* method) {
    const auto& limiter = w_.gen()->authorizations;
    if (!limiter || path_.kind != http::MraKind::EdgeConfig) return false;
    const std::string key = "user:" + lower_ascii(user);
    const uint64_t now = w_.worker().loop().now_ms();
    const auto verdict = limiter->take(key, now);
    if (verdict == http::KeyedRateLimiter::Verdict::Allowed)
        w_.app().share_limiter_take("authorizations", key);
    if (verdict != http::KeyedRateLimiter::Verdict::Limited) return false;
    // Counted by limit and credential kind: a user name is not a metric label (unbounded, and personal).
    count(w_, "edgepair_auth_rate_limited_total",
          "Sign-in attempts answered 429 by the per-user limits, by limit and credential kind",
          {{"reason", "authorizations"}, {"method", method}});
    count(w_, "edgepair_http_auth_total", "End-user credential checks on the HTTP edge",
          {{"side", "edge-c"}, {"result", "rate_limited"}});
    access_.set_reason("auth_rate_limited");
    EP_INFO(kLog, "stream {}: user {} over the authorization limit ({} sign-in)", s_->id(), user, method);
    respond(429, "too many sign-ins for this user\n",
            {{"retry-after", std::to_string(limiter->retry_after_s(key, now))}});
    return true;
}

std::function<void(const AuthOutcome&)>
HttpStream::with_mra_policy(std::function<void(const AuthOutcome&)> next) {
    const auto& cfg = w_.gen()->cfg;
    if (!cfg.mra_policy.enabled && !cfg.oauth.require_active_user) return next;
    return [this, next = std::move(next)](const AuthOutcome& who) {
        // oauth.require_active_user alone: a password or an edge token was checked against Unified CM when
        // it was given; only an OAuth token can outlive its user's removal.
        if (!w_.gen()->cfg.mra_policy.enabled && !who.oauth) return next(who);
        std::weak_ptr<bool> alive = alive_;
        w_.mra_access().lookup(who.user, deployment_, [this, alive, next, who](Result<UserAccess> r) {
            auto a = alive.lock();
            if (!a || !*a || !s_) return;
            const auto& pc = w_.gen()->cfg.mra_policy;
            if (!r) {
                if (pc.allow_on_lookup_error) return next(who);
                access_.set_reason("policy_lookup_failed");
                return respond(503, "user directory unavailable\n");
            }
            if (!pc.enabled) {
                if (r->found) return next(who);
                // The user was removed from Unified CM after the token was issued: the token is no good any
                // more, and the Bearer challenge sends the client back to sign in.
                count(w_, "edgepair_oauth_refused_total", "OAuth access tokens refused, by reason",
                      {{"reason", "user_not_active"}});
                access_.set_reason("oauth_user_not_active");
                EP_INFO(kLog, "stream {}: OAuth token refused: user {} is not on Unified CM", s_->id(),
                        who.user);
                return respond(401, "invalid token\n",
                               {{"www-authenticate", kRealm}, {"www-authenticate", kBearerInvalid}});
            }
            auto cls = device_class_of_user_agent(hv(req_, "user-agent"));
            MraPolicy pol = effective_policy(*r, cls, pc.unknown_device_class);
            if (!policy_allows(pol, MraService::Http)) {
                w_.mra_access().count_refusal(MraService::Http, pol);
                access_.set_reason("mra_policy");
                EP_INFO(kLog, "stream {}: user {} refused: MRA access policy {} ({} client)", s_->id(),
                        who.user, policy_label(pol), device_class_label(cls));
                return respond(403, "forbidden by the MRA access policy\n");
            }
            next(who);
        });
    };
}

void HttpStream::authenticate(std::function<void(const AuthOutcome&)> next) {
    next = with_mra_policy(std::move(next));
    const std::string_view authz = hv(req_, "authorization");
    if (auto bearer = bearer_of(authz)) {
        if (bearer->starts_with(kEdgeTokenPrefix)) return check_edge_token(*bearer, next);
        return check_oauth(*bearer, next);
    }
    if (authz.empty()) {
        for (const auto& [k, v] : req_)
            if (k == "cookie")
                if (auto t = edge_token_from_cookie(v)) return check_edge_token(*t, next);
    }
    if (!authz.empty() && refuse_credentials_in_exclusive("basic")) return;
    auto creds = parse_basic_auth(authz);
    if (!creds) {
        count(w_, "edgepair_http_auth_total", "End-user credential checks on the HTTP edge",
              {{"side", "edge-c"}, {"result", hv(req_, "authorization").empty() ? "missing" : "malformed"}});
        access_.set_reason(hv(req_, "authorization").empty() ? "auth_missing" : "auth_malformed");
        return respond(401, "credentials required\n", {{"www-authenticate", kRealm}});
    }
    // seeds/002 "Authorization Rate Control": past the allowed failures for this user, 429 without asking
    // Unified CM, so password guessing costs neither a UDS round trip nor an answer.
    auto limiter = w_.gen()->auth_failures;
    std::string rate_key = "user:" + lower_ascii(creds->user);
    if (limiter && !limiter->would_allow(rate_key, w_.worker().loop().now_ms())) {
        count(w_, "edgepair_http_auth_total", "End-user credential checks on the HTTP edge",
              {{"side", "edge-c"}, {"result", "rate_limited"}});
        access_.set_reason("auth_rate_limited");
        EP_INFO(kLog, "stream {}: user {} over the failed-check limit", s_->id(), creds->user);
        auto retry = limiter->retry_after_s(rate_key, w_.worker().loop().now_ms());
        count(w_, "edgepair_auth_rate_limited_total",
              "Sign-in attempts answered 429 by the per-user limits, by limit and credential kind",
              {{"reason", "failures"}, {"method", "basic"}});
        return respond(429, "too many failed sign-in attempts\n", {{"retry-after", std::to_string(retry)}});
    }
    // The attempt counts before Unified CM is asked: sparing it is what the limit is for.
    if (over_authorization_limit(creds->user, "basic")) return;
    std::weak_ptr<bool> alive = alive_;
    w_.credentials().check(
        creds->user, creds->password, path_.domain,
        [this, alive, limiter, rate_key, next = std::move(next),
         password = creds->password](Result<AuthOutcome> r) {
            auto a = alive.lock();
            if (!a || !*a || !s_) return;
            if (!r) {
                count(w_, "edgepair_http_auth_total", "End-user credential checks on the HTTP edge",
                      {{"side", "edge-c"}, {"result", "error"}});
                access_.set_reason("auth_error");
                EP_WARN(kLog, "stream {}: credential check failed: {}", s_->id(), r.error().message);
                return respond(auth_error_status(r.error()), "credential check unavailable\n");
            }
            const bool ok = r->verdict == AuthOutcome::Verdict::Allowed;
            count(w_, "edgepair_http_auth_total", "End-user credential checks on the HTTP edge",
                  {{"side", "edge-c"}, {"result", ok ? (r->cached ? "cached" : "ok") : "denied"}});
            if (r->vouched)
                count(w_, "edgepair_http_auth_vouched_total",
                      "Credential checks answered by another worker's or edge-c peer's check of the same "
                      "password (counted as cached too; Unified CM not asked)",
                      {});
            if (!ok) {
                if (limiter) {
                    limiter->take(rate_key, w_.worker().loop().now_ms());
                    w_.app().share_limiter_take("auth_failures", rate_key);
                }
                access_.set_reason("auth_denied");
                EP_INFO(kLog, "stream {}: user {} refused: {}", s_->id(), r->user, r->reason);
                return respond(401, "invalid credentials\n", {{"www-authenticate", kRealm}});
            }
            issue_edge_token(*r, password);
            next(*r);
        });
}

void HttpStream::issue_edge_token(const AuthOutcome& who, const std::string& password) {
    const auto& g = w_.gen();
    if (!g->edge_tokens) return;
    const uint64_t now = wall_clock_ms();
    // Only a check Unified CM answered: a cache hit repeats a password already noted, and noting costs an
    // HMAC and a post to every worker on every proxied request. The success cache lives far shorter than
    // the cleanup interval, so a user who keeps signing in is noted again before the memory forgets the
    // stamp.
    if (!who.cached)
        w_.app().share_credential_stamp(w_, deployment_, who.user,
                                        g->edge_tokens->stamp_of(deployment_, who.user, password), now,
                                        uint64_t(g->cfg.credentials.cleanup_interval.count()), who.node);
    // seeds/002: the token comes back from the sign-in request (get_edge_config), not from every request.
    if (path_.kind != http::MraKind::EdgeConfig || !g->cfg.credentials.edge_tokens) return;
    // A cached success for a password older than one seen since (here or on a peer): no token, which would
    // pass as "sealed after the change" (CredentialStamps::stale); the request itself is served as before.
    if (who.cached && w_.credential_stamps().knows_other(
                          deployment_, who.user, g->edge_tokens->stamp_of(deployment_, who.user, password)))
        return;
    EdgeTokenClaims c{who.user, deployment_, who.node, now};
    auto token = g->edge_tokens->issue(c, password);
    if (token.empty()) return; // no randomness: the client keeps using its password
    count(w_, "edgepair_edge_tokens_issued_total", "Edge tokens issued after a Basic check", {});
    const uint64_t max_age = uint64_t(g->cfg.credentials.refresh_interval.count()) / 1000;
    auth_extra_.emplace_back("set-cookie", edge_token_set_cookie(token, max_age));
}

void HttpStream::serve_edge_config(const AuthOutcome& who) {
    mra::EdgeAddresses ea;
    std::string_view host = hv(req_, "x-edge-host");
    if (host.empty()) {
        // Older edge-e: fall back to the Host the client used, which names edge-e too.
        auto a = http::parse_authority(hv(req_, ":authority"), "https");
        if (a) ea.fqdn = a->host;
    } else {
        ea.fqdn = std::string(host);
    }
    auto https = parse_u16(hv(req_, "x-edge-https-port"));
    auto sip = parse_u16(hv(req_, "x-edge-sip-port"));
    auto xmpp = parse_u16(hv(req_, "x-edge-xmpp-port"));
    if (https && *https) ea.http_port = *https;
    if (sip) ea.sip_tls_port = *sip;
    if (xmpp) ea.xmpp_port = *xmpp;
    auto cfg = mra::edge_config_for(*snap_, path_.domain, ea, who.node);
    if (!cfg) {
        EP_WARN(kLog, "stream {}: edge config for {}: {}", s_->id(), path_.domain, cfg.error().message);
        return respond(503, "edge configuration unavailable\n");
    }
    // A listener edge-e does not run (port 0) must not be advertised: the client would try it first.
    if (sip && *sip == 0) {
        cfg->sip_edge.reset();
        cfg->sip_route.clear();
    }
    if (xmpp && *xmpp == 0) cfg->xmpp_edge.reset();
    auto xml = mra::build_edge_config_xml(*cfg, http::query_values(path_.query, "service_name"));
    respond(200, xml, auth_extra_, "text/xml; charset=utf-8");
}

config::SsoMode HttpStream::sso_mode() const {
    const auto* d = find_domain_config(w_.gen()->cfg, path_.domain);
    return d ? d->sso : config::SsoMode::Off;
}

// seeds/002 "Exclusive: ... the IdP, which is the only permitted authentication agent": a password (or an
// edge token a password bought) is refused without asking Unified CM, in every domain of a deployment that
// has an Exclusive domain (config::credential_sso_mode). Returns true when it answered.
bool HttpStream::refuse_credentials_in_exclusive(const char* kind) {
    if (config::credential_sso_mode(w_.gen()->cfg, path_.domain) != config::SsoMode::Exclusive) return false;
    count(w_, "edgepair_http_auth_total", "End-user credential checks on the HTTP edge",
          {{"side", "edge-c"}, {"result", "sso_exclusive"}});
    access_.set_reason("sso_exclusive");
    EP_INFO(kLog, "stream {}: {} credentials refused: domain {} signs in through its IdP only", s_->id(),
            kind, path_.domain);
    respond(403, "this domain signs in through single sign-on only\n");
    return true;
}

// The consumer URL of the edge-e this request came through (x-edge-host is its node_name; the port its HTTPS
// listener's). An assertion must name exactly this URL as its recipient.
std::string HttpStream::acs_url() const {
    std::string host = lower_ascii(hv(req_, "x-edge-host"));
    auto port = parse_u16(hv(req_, "x-edge-https-port"));
    if (host.empty() || !port || !*port) return {};
    return saml_acs_url(fmt::format("{}:{}", host, *port), path_.domain);
}

void HttpStream::answer_edge_sso(bool available, const char* why) {
    count(w_, "edgepair_edge_sso_answers_total", "get_edge_sso answers, by answer and reason",
          {{"answer", available ? "true" : "false"}, {"reason", why}});
    access_.set_reason(why);
    respond(200, mra::build_edge_sso_xml(available), {}, "text/xml; charset=utf-8");
}

void HttpStream::serve_edge_sso() {
    // seeds/002 "Check for Internal SSO Availability": with the check on, edge-c finds the user's home
    // cluster over UDS and answers from it; with it off the answer is true for a domain with SSO on. A
    // domain without SSO answers false: a true would send Jabber to an IdP that is not there, and the guide
    // says it would then not fall back to credentials.
    const auto mode = sso_mode();
    if (mode == config::SsoMode::Off || !w_.gen()->saml) return answer_edge_sso(false, "sso_off");
    if (!w_.gen()->cfg.sso.check_internal_availability) return answer_edge_sso(true, "no_internal_check");
    // The identity as clients send it: email= in public logs, username= in edgepair's older tests.
    std::string who;
    for (auto key : {"email", "username"}) {
        auto v = http::query_values(path_.query, key);
        if (!v.empty() && !v.front().empty()) {
            who = v.front();
            break;
        }
    }
    bool printable = !who.empty() && who.size() <= 256;
    for (char c : who)
        printable = printable && static_cast<unsigned char>(c) > 0x20 && c != 0x7f && c != '/';
    if (!printable) return answer_edge_sso(false, "no_identity");
    std::weak_ptr<bool> alive = alive_;
    // Assumed (shared/MRA-PROTOCOL.md: the UDS query behind get_edge_sso is not public): the user's home
    // cluster found by clusterUser means SSO is available there. What Unified CM reports about its own SSO
    // state would be read here once a capture shows it.
    w_.credentials().home().find(deployment_, who, [this, alive](Result<std::optional<HomeCluster>> r) {
        auto a = alive.lock();
        if (!a || !*a || !s_) return;
        if (!r) {
            EP_WARN(kLog, "stream {}: get_edge_sso: home cluster look-up failed: {}", s_->id(),
                    r.error().message);
            return answer_edge_sso(false, "lookup_failed");
        }
        if (!*r) return answer_edge_sso(false, "unknown_user");
        answer_edge_sso(true, "home_cluster");
    });
}

void HttpStream::serve_sso_authorize() {
    const auto& g = w_.gen();
    const auto* d = find_domain_config(g->cfg, path_.domain);
    if (!d || d->sso == config::SsoMode::Off || !g->saml) {
        access_.set_reason("sso_off");
        return respond(404, "single sign-on is off for this domain\n");
    }
    const std::string acs = acs_url();
    const auto listed = saml_acs_urls(g->cfg, deployment_);
    if (acs.empty() || std::find(listed.begin(), listed.end(), acs) == listed.end()) {
        // The IdP would refuse a consumer URL the exported metadata does not list.
        EP_WARN(kLog, "stream {}: SSO for {}: consumer {} is not among sso.edge_e_addresses", s_->id(),
                path_.domain, acs.empty() ? "(unknown edge-e)" : acs);
        access_.set_reason("sso_misconfigured");
        return respond(503, "single sign-on is not configured for this edge\n");
    }
    // sso_tokens: unified_cm: the OAuth client the tokens will be issued to, decided now and carried in the
    // request ID (edge-c/saml_sp.h), so that the answer to this request gets tokens for this client.
    std::string client_id;
    if (d->sso_tokens == config::SsoTokens::UnifiedCm) {
        auto named = http::query_values(path_.query, "client_id");
        client_id = !named.empty() && !named.front().empty() ? named.front() : g->cfg.sso.oauth_client_id;
        if (!config::valid_oauth_client_id(client_id)) {
            EP_INFO(
                kLog,
                "stream {}: SSO for {}: no usable OAuth client_id (the query named {}, sso.oauth_client_id "
                "is {})",
                s_->id(), path_.domain, named.empty() ? "none" : "an unusable one",
                g->cfg.sso.oauth_client_id.empty() ? "unset" : "set");
            access_.set_reason("sso_client_id");
            return respond(400, "client_id required: 1 to 64 characters of A-Z a-z 0-9 . _ -\n");
        }
    }
    auto r = g->saml->authn_request(d->idp, acs, "", int64_t(wall_clock_ms() / 1000), client_id);
    if (!r) {
        EP_WARN(kLog, "stream {}: SSO for {}: {}", s_->id(), path_.domain, r.error().message);
        access_.set_reason("sso_request_failed");
        return respond(503, "single sign-on unavailable\n");
    }
    w_.app().saml_remember_request(r->request_id, path_.domain, r->expires_s);
    count(w_, "edgepair_saml_requests_total", "SAML AuthnRequests sent to identity providers", {});
    EP_INFO(kLog, "stream {}: SSO for {}: AuthnRequest {} to IdP {}", s_->id(), path_.domain, r->request_id,
            d->idp);
    respond(302, "redirecting to the identity provider\n", {{"location", r->url}});
}

void HttpStream::refuse_assertion(SamlRefusal why, const std::string& detail) {
    count(w_, "edgepair_saml_responses_total", "SAML Responses consumed, by result (the refusal reason)",
          {{"result", refusal_label(why)}});
    access_.set_reason(std::string("saml_") + refusal_label(why));
    // The guide's wording first, so that "Check the logs for \"Invalid SAML Response\"" finds it.
    EP_WARN(kLog, "stream {}: {}: {} ({})", s_->id(), refusal_message(why), refusal_label(why), detail);
    respond(403, std::string(refusal_message(why)) + "\n");
}

void HttpStream::consume_assertion() {
    collecting_form_ = false;
    const auto& g = w_.gen();
    const auto* d = find_domain_config(g->cfg, path_.domain);
    if (!d || !g->saml) return respond(404, "single sign-on is off for this domain\n");
    auto form = parse_saml_post_form(form_);
    form_.clear();
    if (!form) return refuse_assertion(SamlRefusal::BadForm, "the body is not a SAMLResponse form");
    const std::string acs = acs_url();
    std::string detail;
    const int64_t now_s = int64_t(wall_clock_ms() / 1000);
    auto r =
        g->saml->consume(*form, d->idp, acs, now_s, detail, d->sso_tokens == config::SsoTokens::UnifiedCm);
    if (auto* why = std::get_if<SamlRefusal>(&r)) return refuse_assertion(*why, detail);
    std::weak_ptr<bool> alive = alive_;
    w_.app().saml_admit(w_, std::get<SamlIdentity>(std::move(r)), path_.domain, now_s,
                        [this, alive](SamlIdentity id, std::optional<SamlRefusal> why, std::string detail) {
                            auto a = alive.lock();
                            if (!a || !*a || !s_) return;
                            if (why) return refuse_assertion(*why, detail);
                            signed_in_by_assertion(std::move(id));
                        });
}

void HttpStream::signed_in_by_assertion(SamlIdentity id) {
    EP_INFO(kLog, "stream {}: SAML assertion {} from {}: uid {}", s_->id(), id.assertion_id, id.idp, id.uid);
    // The user's home cluster, as for a password sign-in: the token names the node get_edge_config
    // advertises.
    std::weak_ptr<bool> alive = alive_;
    w_.credentials().home().find(
        deployment_, id.uid, [this, alive, id](Result<std::optional<HomeCluster>> h) {
            auto a = alive.lock();
            if (!a || !*a || !s_) return;
            if (!h) {
                count(w_, "edgepair_saml_responses_total",
                      "SAML Responses consumed, by result (the refusal reason)",
                      {{"result", "lookup_failed"}});
                EP_WARN(kLog, "stream {}: SSO user {}: home cluster look-up failed: {}", s_->id(), id.uid,
                        h.error().message);
                access_.set_reason("saml_lookup_failed");
                return respond(auth_error_status(h.error()), "user directory unavailable\n");
            }
            if (!*h) {
                count(w_, "edgepair_saml_responses_total",
                      "SAML Responses consumed, by result (the refusal reason)",
                      {{"result", "unknown_user"}});
                EP_WARN(kLog, "stream {}: SSO user {} is unknown to Unified CM", s_->id(), id.uid);
                access_.set_reason("saml_unknown_user");
                return respond(403, "user not known to Unified CM\n");
            }
            SamlIdentity who = id;
            who.uid = (*h)->user_id.empty() ? id.uid : (*h)->user_id;
            sso_signed_in(who, (*h)->node);
        });
}

// How the client gets its token after the assertion. Not public (the Jabber side of /fedlet is not in any
// capture): edgepair sets the same X-Auth cookie a password sign-in gets and answers the token as JSON too,
// in OAuth 2.0's implicit-grant field names (RFC 6749 4.2.2), which the authorize query's response_type=token
// suggests. Change the form here only.
void HttpStream::sso_signed_in(const SamlIdentity& id, const std::string& node) {
    const auto& g = w_.gen();
    const auto* d = find_domain_config(g->cfg, path_.domain);
    if (d && d->sso_tokens == config::SsoTokens::UnifiedCm) return unified_cm_tokens(id, node);
    if (!g->edge_tokens) return respond(503, "edge tokens unavailable\n");
    EdgeTokenClaims c{id.uid, deployment_, node, wall_clock_ms(), true};
    auto token = g->edge_tokens->issue(c, "");
    if (token.empty()) return respond(503, "edge tokens unavailable\n");
    count(w_, "edgepair_saml_responses_total", "SAML Responses consumed, by result (the refusal reason)",
          {{"result", "ok"}});
    count(w_, "edgepair_edge_tokens_issued_total", "Edge tokens issued after a Basic check", {});
    count(w_, kSsoTokensMetric, kSsoTokensHelp, {{"kind", "edge"}});
    const uint64_t max_age = uint64_t(g->cfg.credentials.refresh_interval.count()) / 1000;
    access_.set_reason("saml_ok");
    // nlohmann escapes: a uid may hold any printable character, '"' included; bytes that are not UTF-8 (a
    // percent-decoded UDS id) are replaced rather than thrown on.
    const nlohmann::json answer{
        {"access_token", token}, {"token_type", "Bearer"}, {"expires_in", max_age}, {"user", c.user}};
    respond(200, answer.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n",
            {{"set-cookie", edge_token_set_cookie(token, max_age)}}, "application/json");
}

// sso_tokens: unified_cm. How Unified CM issues OAuth tokens to a client that signed in at the edge is NOT
// public (no capture of it, no document): this is assumed, not confirmed. Assumed here: the SAML 2.0 bearer
// assertion grant (RFC 7522) on the home node's OAuth service, POST /ssosp/oauth/token (the path Unified CM's
// other grants use), with the assertion the IdP signed and the client id Jabber named at authorize, over the
// node's HTTPS port; the answer is RFC 6749 5.1 JSON. Change the exchange here only (docs/PROTOCOL-FACTS.md).
constexpr std::string_view kUcmTokenPath = "/ssosp/oauth/token";
// urn:ietf:params:oauth:grant-type:saml2-bearer, form-encoded.
constexpr std::string_view kSaml2BearerGrant = "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Asaml2-bearer";

void HttpStream::refuse_ucm_tokens(const char* result, int status, const std::string& why) {
    count(w_, "edgepair_saml_responses_total", "SAML Responses consumed, by result (the refusal reason)",
          {{"result", result}});
    access_.set_reason(std::string("saml_") + result);
    EP_WARN(kLog, "stream {}: {}", s_ ? s_->id() : 0, why);
    respond(status, status == 503 ? "Unified CM unavailable: no token was issued\n"
                                  : "Unified CM did not issue tokens for this sign-in\n");
}

void HttpStream::unified_cm_tokens(const SamlIdentity& id, const std::string& node) {
    const mra::UcNode* n = snap_ ? snap_->find_node(node) : nullptr;
    if (!n)
        return refuse_ucm_tokens(
            "ucm_unavailable", 503,
            fmt::format("SSO user {}: home node {} is not in the snapshot", id.uid, node));
    // A request sent before a reload turned unified_cm on carries no client id: the configured one, if any.
    const std::string client_id = id.client_id.empty() ? w_.gen()->cfg.sso.oauth_client_id : id.client_id;
    if (id.assertion_xml.empty() || client_id.empty())
        return refuse_ucm_tokens(
            "ucm_bad_request", 502,
            fmt::format("SSO user {}: no {} for Unified CM (sso_tokens changed by a reload "
                        "during the sign-in?)",
                        id.uid, client_id.empty() ? "client id" : "assertion"));
    http::ClientRequest req;
    req.method = "POST";
    req.origin = http::Origin{"https", n->name, mra::https_port_of(*n)};
    req.target = std::string(kUcmTokenPath);
    // Verified whatever discovery's mode: the assertion is a bearer credential, and an impostor holding it
    // could get this user's tokens.
    req.verify = true;
    req.headers.add("Content-Type", "application/x-www-form-urlencoded");
    req.headers.add("Accept", "application/json");
    // base64url without padding or line breaks (RFC 7522 2.1): nothing in it needs form encoding; the
    // client id's alphabet (config::valid_oauth_client_id) does not either.
    req.body = fmt::format("grant_type={}&assertion={}&client_id={}", kSaml2BearerGrant,
                           http::base64_encode(id.assertion_xml, false, true), client_id);
    access_.set_upstream(fmt::format("{}:{}", n->name, req.origin.port));
    const std::string node_name = n->name;
    const uint16_t port = req.origin.port;
    EP_DEBUG(kLog, "stream {}: SSO user {}: assertion grant to {}:{} for client {}", s_->id(), id.uid,
             node_name, port, client_id);
    std::weak_ptr<bool> alive = alive_;
    w_.http().fetch(std::move(req), [this, alive, uid = id.uid, client_id, node_name,
                                     port](Result<http::ClientResponse> r) {
        auto a = alive.lock();
        if (!a || !*a || !s_) return;
        if (!r) {
            const auto kind = http::error_kind(r.error());
            const bool down = kind == http::ClientErrorKind::Timeout ||
                              kind == http::ClientErrorKind::Connect || kind == http::ClientErrorKind::Dns ||
                              kind == http::ClientErrorKind::Closed;
            return refuse_ucm_tokens(down ? "ucm_unavailable" : "ucm_error", down ? 503 : 502,
                                     fmt::format("SSO user {}: Unified CM {}:{} token request failed: {}",
                                                 uid, node_name, port, r.error().message));
        }
        if (r->status != 200) {
            // The OAuth error code only (RFC 6749 5.2): the rest of a body is Unified CM's to word.
            std::string code = "-";
            auto j = nlohmann::json::parse(r->body, nullptr, false);
            if (j.is_object() && j.contains("error") && j["error"].is_string()) {
                code = j["error"].get<std::string>();
                if (code.size() > 64 ||
                    code.find_first_not_of("abcdefghijklmnopqrstuvwxyz_") != std::string::npos)
                    code = "(unreadable)";
            }
            const bool down = r->status >= 500;
            return refuse_ucm_tokens(
                down ? "ucm_unavailable" : "ucm_refused", down ? 503 : 502,
                fmt::format("SSO user {}: Unified CM {}:{} answered {} ({}) to the assertion grant", uid,
                            node_name, port, r->status, code));
        }
        auto j = nlohmann::json::parse(r->body, nullptr, false);
        auto str_field = [&](const char* k) {
            return j.is_object() && j.contains(k) && j[k].is_string() && !j[k].get<std::string>().empty();
        };
        if (!str_field("access_token") || !str_field("refresh_token") ||
            (j.contains("expires_in") && !j["expires_in"].is_number_unsigned()))
            return refuse_ucm_tokens(
                "ucm_bad_answer", 502,
                fmt::format(
                    "SSO user {}: Unified CM {}:{} answered 200 without an access and a refresh token", uid,
                    node_name, port));
        count(w_, "edgepair_saml_responses_total", "SAML Responses consumed, by result (the refusal reason)",
              {{"result", "ok"}});
        count(w_, kSsoTokensMetric, kSsoTokensHelp, {{"kind", "unified_cm"}});
        access_.set_reason("saml_ok");
        EP_INFO(kLog, "stream {}: SSO user {}: Unified CM {} issued OAuth tokens to client {}", s_->id(), uid,
                node_name, client_id);
        // The same shape as an edge token's answer, plus the refresh token; no X-Auth cookie (that is the
        // edge's token, and the edge keeps nothing of these).
        nlohmann::json answer{{"access_token", j["access_token"]},
                              {"token_type", "Bearer"},
                              {"refresh_token", j["refresh_token"]},
                              {"user", uid}};
        if (j.contains("expires_in")) answer["expires_in"] = j["expires_in"];
        if (j.contains("scope") && j["scope"].is_string()) answer["scope"] = j["scope"];
        respond(200, answer.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n", {},
                "application/json");
    });
}

void HttpStream::serve_proxy_checked() {
    http::ClientRequest req;
    req.method = method_;
    req.origin = http::Origin{path_.scheme, path_.host, path_.port};
    // What the allow list matched, nothing else (;params dropped): see request_gate.h.
    req.target = forward_target_;
    req.verify = upstream_verify_;
    for (auto& [k, v] : req_) {
        if (k.empty() || k[0] == ':' || !http::forwards(http::Hop::UpstreamRequest, k, v)) continue;
        if (drop_authorization_ && k == "authorization") continue;
        if (k == "cookie") {
            // The edge token is the edge's: no internal host ever sees it.
            if (auto rest = cookie_without_edge_token(v)) req.headers.add(k, *rest);
            continue;
        }
        req.headers.add(k, v);
    }
    // Host comes from the proxy path, never from the client's Host (which names edge-e): the Client adds it.
    EP_DEBUG(kLog, "stream {}: {} {}{}", s_->id(), method_, req.origin.str(),
             obs::redact_target(forward_target_));
    access_.set_upstream(fmt::format("{}:{}", path_.host, path_.port));
    x_ = w_.http().start(std::move(req), this);
    if (!x_) return respond(502, "upstream request could not be started\n");
    start_exchange();
}

void HttpStream::start_exchange() {
    if (!pending_body_.empty()) {
        const size_t n = pending_body_.size();
        bool ok = x_->write_body(pending_body_);
        pending_body_.clear();
        owed_ += n;
        if (ok) {
            release_owed();
        } else {
            req_blocked_ = true;
        }
    }
    if (req_ended_ && x_) x_->end_body();
}

void HttpStream::release_owed() {
    if (owed_ && s_) s_->consumed(owed_);
    owed_ = 0;
}

void HttpStream::on_data(link::LinkStream& s, const char* data, size_t len) {
    access_.add_in(len);
    if (collecting_form_) {
        s.consumed(len);
        if (form_.size() + len > 256 * 1024) {
            collecting_form_ = false;
            form_.clear();
            access_.set_reason("body_too_large");
            return respond(413, "SAML response too large\n");
        }
        form_.append(data, len);
        return;
    }
    if (responded_) {
        s.consumed(len); // the answer is out; the rest of the request is not wanted
        return;
    }
    if (!x_) {
        // Held, not consumed: the stream window (256 KiB) bounds this while the credentials are checked.
        pending_body_.append(data, len);
        return;
    }
    bool ok = x_->write_body(std::string_view(data, len));
    if (req_blocked_ || !ok) {
        owed_ += len;
        req_blocked_ = true;
    } else {
        s.consumed(len);
    }
}

void HttpStream::on_end(link::LinkStream&) {
    req_ended_ = true;
    if (collecting_form_) return consume_assertion();
    if (x_ && !responded_) x_->end_body();
}

void HttpStream::on_request_writable() {
    req_blocked_ = false;
    release_owed();
}

void HttpStream::on_writable(link::LinkStream&) {
    if (resp_paused_ && x_) {
        resp_paused_ = false;
        x_->resume_response();
    }
}

void HttpStream::on_close(link::LinkStream&, const core::Failure& failure) {
    s_ = nullptr;
    if (x_) {
        // The client (or the link) is gone: stop talking to the node; the connection is not pooled.
        x_->cancel();
        x_ = nullptr;
        count(w_, "edgepair_http_client_gone_total", "Proxied HTTP requests abandoned by the client side",
              {{"side", "edge-c"}, {"kind", std::string(core::label(failure.kind))}});
    }
    if (failure) EP_DEBUG(kLog, "stream closed: {}", failure.str());
    if (!recorded_) {
        access_.set_reason("client_gone");
        record(0);
    }
    destroy_later();
}

void HttpStream::on_response_head(const http::ResponseHead& head) {
    if (!s_) return;
    link::Headers out;
    out.reserve(head.headers.size() + 2);
    out.emplace_back(":status", std::to_string(head.status));
    http::ConnectionTokens listed; // names the upstream's Connection field makes hop-by-hop
    for (auto v : head.headers.find_all("connection"))
        listed.add_field_value(v);
    for (const auto& f : head.headers)
        if (http::forwards(http::Hop::UpstreamResponse, f.name, f.value, &listed))
            out.emplace_back(f.name, f.value);
    // edge-e names the node in its own access line too (stripped before the client, like every x-edge-*).
    out.emplace_back(std::string(obs::kUpstreamHeader), fmt::format("{}:{}", path_.host, path_.port));
    head_sent_ = true;
    s_->send_headers(out);
    record(head.status);
}

void HttpStream::on_response_body(std::string_view data) {
    if (!s_) return;
    access_.add_out(data.size());
    if (!s_->write(data) && x_ && !resp_paused_) {
        resp_paused_ = true;
        x_->pause_response();
    }
}

void HttpStream::on_response_end() {
    x_ = nullptr;
    responded_ = true;
    release_owed();
    if (s_) s_->end();
}

void HttpStream::on_error(const http::ClientError& err) {
    x_ = nullptr;
    access_.set_reason(http::kind_name(err.kind));
    count(w_, "edgepair_http_upstream_errors_total", "Proxied HTTP requests that failed upstream",
          {{"side", "edge-c"}, {"kind", std::string(http::kind_name(err.kind))}});
    EP_INFO(kLog, "{} {}://{}:{}{}: {}: {}", method_, path_.scheme, path_.host, path_.port, path_.path,
            http::kind_name(err.kind), err.message);
    if (!s_) return;
    if (!head_sent_) {
        int status = http::http_status_for(err.kind);
        if (status == 500) status = 502;
        std::string body = status == 504 ? "upstream timed out\n"
                                         : fmt::format("upstream {}:{}: {}\n", path_.host, path_.port,
                                                       http::kind_name(err.kind));
        return respond(status, body);
    }
    // Half a response is already with the client: only a reset tells it the body is truncated.
    responded_ = true;
    release_owed();
    s_->reset(link::kInternalError);
    s_ = nullptr;
    destroy_later();
}

void HttpStream::respond(int status, std::string_view body, const link::Headers& extra,
                         std::string_view content_type) {
    responded_ = true;
    if (x_) {
        x_->cancel();
        x_ = nullptr;
    }
    if (!pending_body_.empty() && s_) s_->consumed(pending_body_.size());
    pending_body_.clear();
    release_owed();
    record(status);
    if (!s_) return;
    link::Headers h{{":status", std::to_string(status)},
                    {"content-type", std::string(content_type)},
                    {"content-length", std::to_string(body.size())},
                    {"cache-control", "no-store"}};
    for (auto& e : extra)
        h.push_back(e);
    const bool head_only = method_ == "HEAD";
    if (!head_only) access_.add_out(body.size());
    if (!s_->send_headers(h, head_only || body.empty())) return;
    if (!head_only && !body.empty() && s_) {
        s_->write(body);
        if (s_) s_->end();
    }
}

void HttpStream::record(int status) {
    if (recorded_) return;
    recorded_ = true;
    access_.set_status(status);
    count(w_, "edgepair_http_requests_total", "HTTP requests served by edge-c",
          {{"side", "edge-c"}, {"kind", kind_}, {"status", status ? std::to_string(status) : "aborted"}});
}

void HttpStream::destroy_later() {
    if (dying_) return;
    dying_ = true;
    *alive_ = false;
    access_.finish();
    // Not inline: this may run inside a LinkStream or Exchange callback that still holds `this`.
    w_.retire(this);
}

} // namespace

void serve_http_stream(CWorker& w, link::LinkStream* s, const link::Headers& headers) {
    auto* h = w.own(std::make_unique<HttpStream>(w, s, headers));
    s->set_handler(h);
    h->start();
}

} // namespace edgepair::edge_c
