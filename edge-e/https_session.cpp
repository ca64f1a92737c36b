#include <fmt/format.h>

#include "common/http/b64_domain.h"
#include "common/http/h1_parser.h"
#include "common/http/url_path.h"
#include "common/obs/log.h"
#include "edge-e/sessions.h"

namespace edgepair::edge_e {

namespace {

// Request pipeline on 8443, one request at a time per connection (nginx phases, kept small):
//   parse -> normalise the MRA path -> domain known? -> allow-list gate (proxy paths) -> link stream
//   -> response relayed back with HTTP/1.1 framing.
// edge-c answers get_edge_config / get_edge_sso (it checks credentials against Unified CM) and proxies the
// rest; edge-e only decides what may enter and never buffers a whole body.

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

class HttpsSession final : public ClientSession, public link::StreamHandler {
  public:
    HttpsSession(WorkerState& ws, int fd, SSL* ssl)
        : ws_(ws), conn_(std::make_unique<net::Connection>(ws.worker().loop(), fd, ssl, true)) {
        auto& lim = ws.gen()->cfg.limits;
        http::H1Limits limits;
        limits.max_header_bytes = lim.max_header_bytes;
        limits.max_body = lim.max_body_bytes;
        parser_ = std::make_unique<http::H1Parser>(http::H1Parser::Kind::Request, limits);
        conn_->set_callbacks(
            {[this] { handshake_done_ = true; }, [this](const char* d, size_t n) { on_data(d, n); },
             [this](std::string_view why) { on_conn_close(why); }, [this] { on_client_drained(); }});
        // A client that never finishes the handshake or goes quiet must not hold a slot forever.
        conn_->set_idle_timeout(uint64_t(lim.client_idle_timeout.count()));
        conn_->start();
    }

    ~HttpsSession() override {
        if (stream_) stream_->reset(link::kCancel);
    }

  private:
    // ---- client side ----

    void on_data(const char* data, size_t len) {
        inbuf_.append(data, len);
        pump();
    }

    // Parses what is buffered; stops while a request is in flight (its response decides keep-alive) or
    // while the link stream pushes back.
    void pump() {
        size_t off = 0;
        while (!closing_ && !body_paused_ && !(in_flight_ && request_done_)) {
            auto r = parser_->feed(inbuf_.data() + off, inbuf_.size() - off);
            off += r.consumed;
            if (r.status == http::H1Parser::Status::Error) {
                auto& e = parser_->error();
                count_reject(std::string(e.name()));
                EP_INFO("https", "{}: malformed request: {} ({})", conn_->peer().str(), e.name(), e.detail);
                if (in_flight_ && response_started_) {
                    conn_->close();
                    closing_ = true;
                } else {
                    if (stream_) {
                        stream_->reset(link::kCancel);
                        stream_ = nullptr;
                    }
                    respond_local(e.status ? e.status : 400, std::string(e.name()), false);
                }
                break;
            }
            if (r.status == http::H1Parser::Status::HeadersComplete) {
                on_request_head();
                continue;
            }
            if (r.status == http::H1Parser::Status::Body) {
                if (stream_ && !stream_->write(r.body)) body_paused_ = true; // resumed by on_writable
                continue;
            }
            if (r.status == http::H1Parser::Status::MessageComplete) {
                request_done_ = true;
                if (stream_) stream_->end();
                if (!in_flight_) request_finished(); // answered locally: ready for the next one
                continue;
            }
            break; // NeedMore
        }
        inbuf_.erase(0, off);
    }

    void on_request_head() {
        ws_.app().counters().http_requests->inc();
        const auto& req = parser_->request();
        request_done_ = false;
        response_started_ = false;
        head_request_ = req.method == "HEAD";
        keep_alive_ = parser_->keep_alive();

        auto path = http::parse_mra_path(req.target);
        if (!path) {
            std::string label(http::error_label(path.error()));
            count_reject(label);
            EP_INFO("https", "{}: {} {} refused: {}", conn_->peer().str(), req.method, req.target,
                    path.error().message);
            return reject_request(400, "invalid request path");
        }
        auto snap = ws_.snapshot();
        if (!snap) return reject_request(503, "no configuration from edge-c yet");
        const mra::Domain* dom = snap->find_domain(path->domain);
        if (!dom) {
            count_reject("unknown_domain");
            return reject_request(404, "unknown domain");
        }
        if (path->kind == http::MraKind::Other) {
            count_reject("unknown_service");
            return reject_request(404, "unknown service");
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
                ws_.app()
                    .metrics()
                    .counter("edgepair_http_blocked_total", "Requests refused by the HTTP allow list",
                             {{"side", "edge-e"}})
                    .inc();
                EP_INFO("https", "{}: {} {}://{}:{}{} blocked by the allow list: {}", conn_->peer().str(),
                        req.method, path->scheme, path->host, path->port, path->path, m.reason);
                return reject_request(403, "blocked by the HTTP allow list");
            }
        }
        link::LinkConn* lc = ws_.pick_link();
        if (!lc) return reject_request(503, "traversal link to edge-c is down");

        const auto& cfg = ws_.gen()->cfg;
        link::Headers h;
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
        h.emplace_back("x-client-addr", conn_->peer().str());
        h.emplace_back("x-edge-host", cfg.node_name);
        h.emplace_back("x-edge-https-port",
                       std::to_string(cfg.listeners.https ? cfg.listeners.https->listen.port : 0));
        h.emplace_back("x-edge-sip-port",
                       std::to_string(cfg.listeners.sip_tls ? cfg.listeners.sip_tls->listen.port : 0));
        h.emplace_back("x-edge-xmpp-port",
                       std::to_string(cfg.listeners.xmpp ? cfg.listeners.xmpp->listen.port : 0));
        bool no_body = parser_->body_mode() == http::H1Parser::BodyMode::None;
        in_flight_ = true;
        stream_ = lc->open_stream(link::StreamKind::Http, h, this, no_body);
        if (!stream_) {
            in_flight_ = false;
            return reject_request(503, "traversal link to edge-c is down");
        }
    }

    // Answers locally; the request body (if any) is still parsed and discarded so keep-alive stays in sync.
    void reject_request(int status, const std::string& msg) {
        ws_.app().counters().http_rejected->inc();
        respond_local(status, msg, keep_alive_);
    }

    void respond_local(int status, const std::string& msg, bool keep_alive) {
        std::string body = msg + "\n";
        std::string extra = status == 401 ? "WWW-Authenticate: Basic realm=\"edgepair\"\r\n" : "";
        conn_->write(
            fmt::format("HTTP/1.1 {} {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{}{}\r\n{}",
                        status, reason_phrase(status), body.size(), extra,
                        keep_alive ? "" : "Connection: close\r\n", head_request_ ? "" : body));
        if (!keep_alive) {
            closing_ = true;
            conn_->close();
        }
    }

    void request_finished() {
        in_flight_ = false;
        stream_ = nullptr;
        if (!keep_alive_) {
            closing_ = true;
            conn_->close();
            return;
        }
        // The next pipelined request may already be buffered.
        ws_.worker().loop().post([alive = std::weak_ptr<bool>(alive_), this] {
            if (!alive.expired() && !closing_) pump();
        });
    }

    void on_client_drained() {
        // The client reads again: reopen the link stream's window for what we had held back.
        if (stream_ && held_ > 0) {
            stream_->consumed(held_);
            held_ = 0;
        }
    }

    void on_conn_close(std::string_view why) {
        if (!handshake_done_) {
            ws_.app().counters().tls_handshake_failures->inc();
            EP_DEBUG("https", "{}: {}", conn_->peer().str(), why);
        }
        closing_ = true;
        if (stream_) {
            stream_->reset(link::kCancel);
            stream_ = nullptr;
        }
        ws_.remove(this);
    }

    void count_reject(const std::string& reason) {
        ws_.app()
            .metrics()
            .counter("edgepair_http_rejected_requests_total", "Client HTTP requests refused before the link",
                     {{"reason", reason}})
            .inc();
    }

    // ---- link stream side ----

    void on_headers(link::LinkStream&, const link::Headers& headers) override {
        int status = 502;
        auto st = link::header_value(headers, ":status");
        if (!st.empty()) status = std::atoi(std::string(st).c_str());
        if (status < 200) return; // interim responses are not relayed (HTTP/1.1 clients did not ask for them)
        std::string head = fmt::format("HTTP/1.1 {} {}\r\n", status, reason_phrase(status));
        bool has_length = false;
        for (auto& [k, v] : headers) {
            if (k.empty() || k[0] == ':' || hop_by_hop(k)) continue;
            if (k == "content-length") has_length = true;
            head += k;
            head += ": ";
            head += v;
            head += "\r\n";
        }
        bool bodyless = head_request_ || status == 204 || status == 304;
        chunked_ = !has_length && !bodyless;
        if (chunked_) head += "Transfer-Encoding: chunked\r\n";
        if (!keep_alive_) head += "Connection: close\r\n";
        head += "\r\n";
        conn_->write(head);
        response_started_ = true;
    }

    void on_data(link::LinkStream& s, const char* data, size_t len) override {
        if (!response_started_ || head_request_) {
            s.consumed(len);
            return;
        }
        if (chunked_) {
            conn_->write(fmt::format("{:x}\r\n", len));
            conn_->write(std::string_view(data, len));
            conn_->write("\r\n");
        } else {
            conn_->write(std::string_view(data, len));
        }
        // Flow control end to end: edge-c may send more only as fast as this client reads.
        if (conn_->above_high_watermark())
            held_ += len;
        else
            s.consumed(len);
    }

    void on_end(link::LinkStream&) override {
        if (chunked_ && response_started_ && !head_request_) conn_->write("0\r\n\r\n");
    }

    void on_writable(link::LinkStream&) override {
        if (!body_paused_) return;
        body_paused_ = false;
        pump();
    }

    void on_close(link::LinkStream&, std::string_view error) override {
        stream_ = nullptr;
        if (!error.empty()) {
            EP_INFO("https", "{}: link stream ended: {}", conn_->peer().str(), error);
            if (!response_started_) {
                ws_.app()
                    .metrics()
                    .counter("edgepair_http_link_errors_total", "Requests lost with their link stream")
                    .inc();
                keep_alive_ = keep_alive_ && request_done_;
                respond_local(502, "traversal link to edge-c failed", keep_alive_);
            } else {
                // The head is out: the only honest signal left is to cut the connection.
                closing_ = true;
                conn_->close();
                return;
            }
        }
        if (!request_done_) {
            // edge-c answered before the request body was complete: HTTP/1.1 cannot resync, so close.
            keep_alive_ = false;
        }
        request_finished();
    }

    WorkerState& ws_;
    std::unique_ptr<net::Connection> conn_;
    std::unique_ptr<http::H1Parser> parser_;
    std::string inbuf_;
    link::LinkStream* stream_ = nullptr;
    size_t held_ = 0;
    bool handshake_done_ = false;
    bool closing_ = false;
    bool in_flight_ = false;
    bool request_done_ = false;
    bool response_started_ = false;
    bool head_request_ = false;
    bool keep_alive_ = true;
    bool chunked_ = false;
    bool body_paused_ = false;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

} // namespace

std::unique_ptr<ClientSession> make_https_session(WorkerState& ws, int fd, SSL* ssl) {
    return std::make_unique<HttpsSession>(ws, fd, ssl);
}

} // namespace edgepair::edge_e
