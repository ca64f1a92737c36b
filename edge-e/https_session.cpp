#include "edge-e/sessions.h"

#include <fmt/format.h>

#include "common/http/h1_parser.h"
#include "common/obs/log.h"

namespace edgepair::edge_e {

namespace {

// HTTPS client session on 8443: TLS with the SNI-selected certificate, then HTTP/1.1 requests.
class HttpsSession final : public ClientSession {
  public:
    HttpsSession(WorkerState& ws, int fd, SSL* ssl)
        : ws_(ws), conn_(std::make_unique<net::Connection>(ws.worker().loop(), fd, ssl, true)) {
        auto& lim = ws.gen()->cfg.limits;
        http::H1Limits limits;
        limits.max_header_bytes = lim.max_header_bytes;
        parser_ = std::make_unique<http::H1Parser>(http::H1Parser::Kind::Request, limits);
        conn_->set_callbacks({[this] { on_ready(); }, [this](const char* d, size_t n) { on_data(d, n); },
                              [this](std::string_view why) { on_close(why); }, nullptr});
        // A client that never finishes the handshake or goes quiet must not hold a slot forever.
        conn_->set_idle_timeout(uint64_t(lim.client_idle_timeout.count()));
        conn_->start();
    }

  private:
    void on_ready() { handshake_done_ = true; }

    void on_data(const char* data, size_t len) {
        inbuf_.append(data, len);
        size_t off = 0;
        while (!closing_) {
            auto r = parser_->feed(inbuf_.data() + off, inbuf_.size() - off);
            off += r.consumed;
            if (r.status == http::H1Parser::Status::Error) {
                auto& e = parser_->error();
                ws_.app()
                    .metrics()
                    .counter("edgepair_http_parse_errors_total", "Malformed HTTP requests",
                             {{"reason", std::string(e.name())}})
                    .inc();
                EP_INFO("https", "{}: malformed request: {} ({})", conn_->peer().str(), e.name(), e.detail);
                respond(e.status ? e.status : 400, std::string(e.name()), false);
                break;
            }
            if (r.status == http::H1Parser::Status::MessageComplete) {
                ws_.app().counters().http_requests->inc();
                // Every request goes through the traversal link; until edge-c has dialled in, there is
                // nothing behind this edge to answer it.
                respond(503, "traversal link to edge-c is down", parser_->keep_alive());
                continue;
            }
            if (r.status == http::H1Parser::Status::NeedMore) break;
        }
        inbuf_.erase(0, off);
    }

    void respond(int status, const std::string& msg, bool keep_alive) {
        std::string body = msg + "\n";
        conn_->write(
            fmt::format("HTTP/1.1 {} {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{}\r\n{}",
                        status, status == 503 ? "Service Unavailable" : "Bad Request", body.size(),
                        keep_alive ? "" : "Connection: close\r\n", body));
        if (!keep_alive) {
            closing_ = true;
            conn_->close();
        }
    }

    void on_close(std::string_view why) {
        if (!handshake_done_) {
            ws_.app().counters().tls_handshake_failures->inc();
            EP_DEBUG("https", "{}: {}", conn_->peer().str(), why);
        }
        ws_.remove(this);
    }

    WorkerState& ws_;
    std::unique_ptr<net::Connection> conn_;
    std::unique_ptr<http::H1Parser> parser_;
    std::string inbuf_;
    bool handshake_done_ = false;
    bool closing_ = false;
};

} // namespace

std::unique_ptr<ClientSession> make_https_session(WorkerState& ws, int fd, SSL* ssl) {
    return std::make_unique<HttpsSession>(ws, fd, ssl);
}

} // namespace edgepair::edge_e
