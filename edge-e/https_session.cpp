#include <fmt/format.h>

#include "common/http/h1_parser.h"
#include "common/net/tls_context.h"
#include "common/obs/log.h"
#include "edge-e/h2_session.h"
#include "edge-e/http_gate.h"
#include "edge-e/sessions.h"

namespace edgepair::edge_e {

namespace {

// The 8443 connection: TLS, then HTTP/2 when ALPN chose h2 (edge-e/h2_session.cpp), else HTTP/1.1 here,
// one request at a time per connection: parse -> the request gate (edge-e/http_gate.h) -> link stream ->
// response relayed back with HTTP/1.1 framing. edge-c answers get_edge_config / get_edge_sso (it checks
// credentials against Unified CM) and proxies the rest; edge-e only decides what may enter and never
// buffers a whole body.

class HttpsSession final : public ClientSession, public link::StreamHandler {
  public:
    HttpsSession(WorkerState& ws, int fd, SSL* ssl)
        : ws_(ws), conn_(std::make_unique<net::Connection>(ws.worker().loop(), fd, ssl, true)) {
        auto& lim = ws.gen()->cfg.limits;
        http::H1Limits limits;
        limits.max_header_bytes = lim.max_header_bytes;
        limits.max_body = lim.max_body_bytes;
        parser_ = std::make_unique<http::H1Parser>(http::H1Parser::Kind::Request, limits);
        conn_->set_callbacks({[this] { on_handshake(); }, [this](const char* d, size_t n) { on_data(d, n); },
                              [this](std::string_view why) { on_conn_close(why); },
                              [this] { on_client_drained(); }});
        response_timer_ =
            std::make_unique<core::Timer>(ws.worker().loop(), [this] { on_response_timeout(); });
        // A client that never finishes the handshake or goes quiet must not hold a slot forever.
        conn_->set_idle_timeout(uint64_t(lim.client_idle_timeout.count()));
        conn_->start();
    }

    ~HttpsSession() override {
        if (stream_) stream_->reset(link::kCancel);
    }

  private:
    // ---- client side ----

    void on_handshake() {
        handshake_done_ = true;
        if (conn_->ssl() && net::alpn_of(conn_->ssl()) == "h2") h2_ = make_h2_session(ws_, *conn_);
    }

    void on_data(const char* data, size_t len) {
        if (h2_) return h2_->on_data(data, len);
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
                count_reject(ws_, std::string(e.name()));
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
                if (stream_) {
                    stream_->end();
                    // From here on only edge-c can be slow: a long upload is not a late answer.
                    if (!response_started_)
                        response_timer_->arm(uint64_t(ws_.gen()->cfg.http.response_timeout.count()));
                }
                if (!in_flight_) request_finished(); // answered locally: ready for the next one
                continue;
            }
            break; // NeedMore
        }
        inbuf_.erase(0, off);
    }

    void on_request_head() {
        const auto& req = parser_->request();
        request_done_ = false;
        response_started_ = false;
        head_request_ = req.method == "HEAD";
        keep_alive_ = parser_->keep_alive();

        auto g = gate_request(ws_, req, conn_->peer());
        if (g.status) return reject_request(g.status, g.message, g.retry_after_s);
        bool no_body = parser_->body_mode() == http::H1Parser::BodyMode::None;
        in_flight_ = true;
        stream_ = g.link->open_stream(link::StreamKind::Http, g.headers, this, no_body);
        if (!stream_) {
            in_flight_ = false;
            return reject_request(503, "traversal link to edge-c is down");
        }
    }

    // edge-c did not answer within http.response_timeout: give up on the link stream and say so.
    void on_response_timeout() {
        if (!stream_ || response_started_) return;
        stream_->reset(link::kCancel);
        stream_ = nullptr;
        ws_.app()
            .metrics()
            .counter("edgepair_http_link_timeouts_total",
                     "Requests edge-c did not answer within http.response_timeout")
            .inc();
        EP_INFO("https", "{}: no answer from edge-c within the response timeout", conn_->peer().str());
        keep_alive_ = keep_alive_ && request_done_;
        respond_local(504, "edge-c did not answer in time", keep_alive_);
        if (!closing_) request_finished();
    }

    // Answers locally; the request body (if any) is still parsed and discarded so keep-alive stays in sync.
    void reject_request(int status, const std::string& msg, uint64_t retry_after_s = 0) {
        ws_.app().counters().http_rejected->inc();
        respond_local(status, msg, keep_alive_, retry_after_s);
    }

    void respond_local(int status, const std::string& msg, bool keep_alive, uint64_t retry_after_s = 0) {
        std::string body = msg + "\n";
        std::string extra = status == 401 ? "WWW-Authenticate: Basic realm=\"edgepair\"\r\n" : "";
        if (status == 429) extra += fmt::format("Retry-After: {}\r\n", retry_after_s ? retry_after_s : 1);
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
        if (h2_) return h2_->on_drained();
        // The client reads again: reopen the link stream's window for what we had held back.
        if (stream_ && held_ > 0) {
            stream_->consumed(held_);
            held_ = 0;
        }
    }

    void on_conn_close(std::string_view why) {
        if (h2_) h2_->on_conn_close(why);
        response_timer_->cancel();
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

    // ---- link stream side ----

    void on_headers(link::LinkStream&, const link::Headers& headers) override {
        int status = 502;
        auto st = link::header_value(headers, ":status");
        if (!st.empty()) status = std::atoi(std::string(st).c_str());
        if (status < 200) return; // interim responses are not relayed (HTTP/1.1 clients did not ask for them)
        response_timer_->cancel();
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
        response_timer_->cancel();
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
    std::unique_ptr<H2Session> h2_; // after conn_: destroyed first, while the connection still exists
    std::unique_ptr<core::Timer> response_timer_;
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
