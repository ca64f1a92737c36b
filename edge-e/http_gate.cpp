#include "edge-e/http_gate.h"

#include <cctype>

#include "common/http/header_policy.h"
#include "common/http/rate_limit.h"
#include "common/mra/edge_config.h"
#include "common/mra/request_gate.h"
#include "common/obs/access_log.h"
#include "common/obs/log.h"

namespace edgepair::edge_e {

bool hop_by_hop(std::string_view name) {
    return !http::forwards(http::Hop::ClientResponse, name);
}

const char* reason_phrase(int s) {
    switch (s) {
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 413:
        return "Payload Too Large";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Status";
    }
}

void count_reject(WorkerState& ws, std::string_view reason) {
    ws.counters().rejected(reason).inc();
}

namespace {

GateResult refuse(int status, std::string message) {
    GateResult g;
    g.status = status;
    g.message = std::move(message);
    return g;
}

const char* proto(const http::RequestHead& req) {
    return req.version_minor == 2 ? "HTTP/2" : "HTTP/1.1";
}

} // namespace

GateResult gate_request(WorkerState& ws, const http::RequestHead& req, const net::SockAddr& peer,
                        std::string_view peer_text) {
    ws.app().counters().http_requests->inc();
    const auto gen = ws.gen();
    const auto& cfg = gen->cfg;

    // The rate-limit hook runs before the gate: a client over its budget costs a table lookup, not a path
    // normalisation.
    mra::GateRequest gr;
    gr.method = req.method;
    gr.target = req.target;
    if (gen->rate_limiter) {
        auto key = http::client_rate_key(peer);
        auto now = ws.worker().loop().now_ms();
        auto v = gen->rate_limiter->take(key, now);
        if (v == http::KeyedRateLimiter::Verdict::Limited) {
            ws.app().counters().http_rate_limited->inc();
            gr.rate = mra::RateCheck{true, gen->rate_limiter->retry_after_s(key, now)};
        }
        if (v == http::KeyedRateLimiter::Verdict::Untracked) ws.app().counters().http_rate_untracked->inc();
    }
    gr.field_names.reserve(req.headers.size());
    for (const auto& f : req.headers)
        gr.field_names.emplace_back(f.name);

    auto id = ws.next_request_id();
    auto snap = ws.snapshot();
    auto verdict = mra::decide(snap.get(), gr);
    if (!verdict.passed()) {
        count_reject(ws, verdict.label);
        if (verdict.reason == mra::GateReason::Blocked) ws.counters().blocked(verdict.block_stage).inc();
        // The query is redacted here too: a refused request's query may carry a password as well.
        if (verdict.reason == mra::GateReason::RateLimited)
            EP_DEBUG("https", "{}: [{}] {} {} ({}) refused: {}", peer.str(), id, req.method,
                     obs::redact_target(req.target), proto(req), verdict.log);
        else
            EP_INFO("https", "{}: [{}] {} {} ({}) refused ({}): {}", peer.str(), id, req.method,
                    obs::redact_target(req.target), proto(req), verdict.label, verdict.log);
        auto g = refuse(verdict.status, verdict.message);
        g.request_id = std::move(id);
        g.reason = verdict.label;
        g.retry_after_s = verdict.retry_after_s;
        g.allow = std::move(verdict.allow);
        return g;
    }
    // Single sign-on as edge-e's own config has it (seeds/002: the same mode on both edges). With the
    // internal check off, edge-e "always responds true" to get_edge_sso for an SSO domain without asking
    // edge-c; every other get_edge_sso goes to edge-c (which answers false for a domain without SSO). A
    // domain whose mode is off has no SSO paths here.
    const auto sso = cfg.sso.mode_of(verdict.path.domain);
    if (verdict.path.kind == http::MraKind::EdgeSso && sso != config::SsoMode::Off &&
        !cfg.sso.check_internal_availability) {
        ws.app()
            .metrics()
            .counter("edgepair_edge_sso_answers_total", "get_edge_sso answers, by answer and reason",
                     {{"answer", "true"}, {"reason", "no_internal_check"}})
            .inc();
        GateResult g;
        g.request_id = std::move(id);
        g.status = 200;
        g.reason = "edge_sso_local";
        g.message = mra::build_edge_sso_xml(true);
        g.content_type = "text/xml; charset=utf-8";
        return g;
    }
    if ((verdict.path.kind == http::MraKind::SsoAuthorize || verdict.path.kind == http::MraKind::SsoFedlet) &&
        sso == config::SsoMode::Off) {
        count_reject(ws, "sso_off");
        EP_INFO("https", "{}: [{}] {} {} ({}) refused (sso_off): single sign-on is off for {}", peer.str(),
                id, req.method, obs::redact_target(req.target), proto(req), verdict.path.domain);
        auto g = refuse(404, "single sign-on is off for this domain");
        g.request_id = std::move(id);
        g.reason = "sso_off";
        return g;
    }

    GateResult g;
    g.request_id = id;
    // nullptr: no link up on this worker right now; the session waits for one (WorkerState::wait_for_link).
    g.link = ws.pick_link();

    auto& h = g.headers;
    h.reserve(req.headers.size() + 9);
    h.emplace_back(":method", req.method);
    h.emplace_back(":path", req.target);
    h.emplace_back(":scheme", "https");
    if (auto* host = req.headers.find("host")) h.emplace_back(":authority", *host);
    http::ConnectionTokens listed;
    for (auto v : req.headers.find_all("connection"))
        listed.add_field_value(v);
    for (auto& f : req.headers) {
        if (!http::forwards(http::Hop::ClientRequest, f.name, f.value, &listed)) {
            if (http::is_routing_override(f.name)) ws.counters().routing_removed->inc();
            continue;
        }
        std::string name = f.name;
        for (auto& c : name)
            c = char(std::tolower(static_cast<unsigned char>(c)));
        h.emplace_back(std::move(name), f.value);
    }
    h.emplace_back("x-client-addr", peer_text.empty() ? peer.str() : std::string(peer_text));
    h.emplace_back(std::string(obs::kRequestIdHeader), std::move(id));
    h.emplace_back("x-edge-host", cfg.node_name);
    h.emplace_back("x-edge-https-port",
                   std::to_string(cfg.listeners.https ? cfg.listeners.https->listen.port : 0));
    h.emplace_back("x-edge-sip-port",
                   std::to_string(cfg.listeners.sip_tls ? cfg.listeners.sip_tls->listen.port : 0));
    h.emplace_back("x-edge-xmpp-port",
                   std::to_string(cfg.listeners.xmpp ? cfg.listeners.xmpp->listen.port : 0));
    return g;
}

} // namespace edgepair::edge_e
