#include "edge-e/http_gate.h"

#include <cctype>

#include "common/http/b64_domain.h"
#include "common/http/rate_limit.h"
#include "common/http/url_path.h"
#include "common/obs/log.h"

namespace edgepair::edge_e {

bool hop_by_hop(std::string_view name) {
    static constexpr std::string_view names[] = {"connection",
                                                 "keep-alive",
                                                 "proxy-connection",
                                                 "te",
                                                 "trailer",
                                                 "transfer-encoding",
                                                 "upgrade",
                                                 "proxy-authenticate",
                                                 "proxy-authorization",
                                                 "host",
                                                 "http2-settings"};
    for (auto n : names)
        if (http::iequals(n, name)) return true;
    // edge-c trusts these from edge-e only: a client must never be able to set them.
    return name.size() >= 2 && (name.substr(0, 2) == "x-" || name.substr(0, 2) == "X-") &&
           (http::iequals(name.substr(0, 7), "x-edge-") || http::iequals(name, "x-client-addr") ||
            http::iequals(name.substr(0, 7), "x-link-") || http::iequals(name, "x-tunnel"));
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

void count_reject(WorkerState& ws, const std::string& reason) {
    ws.app()
        .metrics()
        .counter("edgepair_http_rejected_requests_total", "Client HTTP requests refused before the link",
                 {{"reason", reason}})
        .inc();
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

GateResult gate_request(WorkerState& ws, const http::RequestHead& req, const net::SockAddr& peer) {
    ws.app().counters().http_requests->inc();
    const auto gen = ws.gen();
    const auto& cfg = gen->cfg;

    // Before any parsing: a client over its budget costs a table lookup, not a path normalisation.
    if (gen->rate_limiter) {
        auto key = http::client_rate_key(peer);
        auto now = ws.worker().loop().now_ms();
        auto v = gen->rate_limiter->take(key, now);
        if (v == http::KeyedRateLimiter::Verdict::Limited) {
            count_reject(ws, "rate_limited");
            ws.app().counters().http_rate_limited->inc();
            EP_DEBUG("https", "{}: {} {} refused: over the request rate of {}", peer.str(), req.method,
                     req.target, key);
            auto g = refuse(429, "too many requests");
            g.retry_after_s = gen->rate_limiter->retry_after_s(key, now);
            return g;
        }
        if (v == http::KeyedRateLimiter::Verdict::Untracked) ws.app().counters().http_rate_untracked->inc();
    }

    auto path = http::parse_mra_path(req.target);
    if (!path) {
        count_reject(ws, std::string(http::error_label(path.error())));
        EP_INFO("https", "{}: {} {} ({}) refused: {}", peer.str(), req.method, req.target, proto(req),
                path.error().message);
        return refuse(400, "invalid request path");
    }
    auto snap = ws.snapshot();
    if (!snap) return refuse(503, "no configuration from edge-c yet");
    const mra::Domain* dom = snap->find_domain(path->domain);
    if (!dom) {
        count_reject(ws, "unknown_domain");
        return refuse(404, "unknown domain");
    }
    if (path->kind == http::MraKind::Other) {
        count_reject(ws, "unknown_service");
        return refuse(404, "unknown service");
    }
    if (path->kind == http::MraKind::Proxy) {
        // First gate: nothing that the allow list does not name reaches the link (edge-c checks again).
        std::string deployment = snap->resolve_deployment(dom->deployment);
        mra::RequestTarget t{path->scheme == "http" ? mra::Scheme::Http : mra::Scheme::Https,
                             path->host,
                             path->port,
                             path->match_path,
                             req.method,
                             deployment};
        auto m = snap->allow_list.match(t);
        if (!m.allowed) {
            ws.app()
                .metrics()
                .counter("edgepair_http_blocked_total", "Requests refused by the HTTP allow list",
                         {{"side", "edge-e"}})
                .inc();
            EP_INFO("https", "{}: {} {}://{}:{}{} ({}) blocked by the allow list: {}", peer.str(), req.method,
                    path->scheme, path->host, path->port, path->path, proto(req), m.reason);
            return refuse(403, "blocked by the HTTP allow list");
        }
    }
    GateResult g;
    g.link = ws.pick_link();
    if (!g.link) return refuse(503, "traversal link to edge-c is down");

    auto& h = g.headers;
    h.reserve(req.headers.size() + 9);
    h.emplace_back(":method", req.method);
    h.emplace_back(":path", req.target);
    h.emplace_back(":scheme", "https");
    if (auto* host = req.headers.find("host")) h.emplace_back(":authority", *host);
    for (auto& f : req.headers) {
        if (hop_by_hop(f.name)) continue;
        std::string name = f.name;
        for (auto& c : name)
            c = char(std::tolower(static_cast<unsigned char>(c)));
        h.emplace_back(std::move(name), f.value);
    }
    h.emplace_back("x-client-addr", peer.str());
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
