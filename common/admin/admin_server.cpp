#include "common/admin/admin_server.h"

#include <fmt/format.h>

#include <cctype>
#include <optional>

#include "common/http/b64_domain.h"
#include "common/http/h1_parser.h"
#include "common/net/connection.h"
#include "common/obs/log.h"

namespace edgepair::admin {

namespace {
constexpr size_t kMaxAdminBody = 4 * 1024 * 1024; // a rules CSV upload fits; anything bigger is a mistake
// The status page is one HTML document and one same-origin stylesheet; nothing else may load or run.
constexpr const char* kContentSecurityPolicy = "default-src 'none'; style-src 'self'; img-src 'none'; "
                                               "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

// "Basic <base64 user:password>" -> {user, password}; nullopt when malformed.
std::optional<std::pair<std::string, std::string>> basic_credentials(std::string_view header) {
    constexpr std::string_view kScheme = "basic ";
    if (header.size() <= kScheme.size()) return std::nullopt;
    for (size_t i = 0; i < kScheme.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(header[i])) != kScheme[i]) return std::nullopt;
    auto rest = header.substr(kScheme.size());
    while (!rest.empty() && rest.front() == ' ')
        rest.remove_prefix(1);
    auto decoded = http::base64_decode_strict(rest);
    if (!decoded) return std::nullopt;
    auto colon = decoded->find(':');
    if (colon == std::string::npos) return std::nullopt;
    return std::make_pair(decoded->substr(0, colon), decoded->substr(colon + 1));
}

const char* status_text(int s) {
    switch (s) {
    case 200:
        return "OK";
    case 202:
        return "Accepted";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 413:
        return "Payload Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Status";
    }
}
} // namespace

Response text(int status, std::string body) {
    return Response{status, "text/plain; charset=utf-8", std::move(body)};
}
Response json(int status, std::string body) {
    return Response{status, "application/json", std::move(body)};
}

struct Server::Client {
    Server* server;
    std::unique_ptr<net::Connection> conn;
    http::H1Parser parser{http::H1Parser::Kind::Request};
    std::string inbuf;
    Request req;

    void on_data(const char* data, size_t len) {
        inbuf.append(data, len);
        size_t off = 0;
        while (true) {
            auto r = parser.feed(inbuf.data() + off, inbuf.size() - off);
            off += r.consumed;
            if (r.status == http::H1Parser::Status::Error) {
                auto& e = parser.error();
                respond(Response{e.status ? e.status : 400, "text/plain", std::string(e.name()) + "\n"},
                        false);
                return;
            }
            if (r.status == http::H1Parser::Status::HeadersComplete) {
                auto& h = parser.request();
                req = Request{};
                req.method = h.method;
                auto q = h.target.find('?');
                req.path = h.target.substr(0, q);
                if (q != std::string::npos) req.query = h.target.substr(q + 1);
                if (auto* a = h.headers.find("authorization")) req.authorization = *a;
                continue;
            }
            if (r.status == http::H1Parser::Status::Body) {
                if (req.body.size() + r.body.size() > kMaxAdminBody) {
                    respond(text(413, "body too large\n"), false);
                    return;
                }
                req.body.append(r.body);
                continue;
            }
            if (r.status == http::H1Parser::Status::MessageComplete) {
                bool ka = parser.keep_alive();
                respond(server->dispatch(req), ka);
                if (!ka) return;
                continue;
            }
            break; // NeedMore
        }
        inbuf.erase(0, off);
    }

    void respond(const Response& resp, bool keep_alive) {
        std::string extra;
        if (resp.status == 401)
            extra =
                fmt::format("WWW-Authenticate: Basic realm=\"{}\", charset=\"UTF-8\"\r\n", server->realm_);
        // Every answer, not only the page: a browser that is pointed at /status or /alarms must not sniff
        // them into something active, frame them, or load anything on their behalf.
        conn->write(
            fmt::format("HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: "
                        "no-store\r\nX-Content-Type-Options: nosniff\r\nContent-Security-Policy: {}\r\n"
                        "Referrer-Policy: no-referrer\r\nX-Frame-Options: DENY\r\n{}{}\r\n",
                        resp.status, status_text(resp.status), resp.content_type, resp.body.size(),
                        kContentSecurityPolicy, extra, keep_alive ? "" : "Connection: close\r\n"));
        conn->write(resp.body);
        if (!keep_alive) conn->close();
    }
};

Result<std::unique_ptr<Server>> Server::open(core::Loop& loop, const net::SockAddr& addr) {
    std::unique_ptr<Server> self(new Server(loop));
    Server* s = self.get();
    auto l = net::Listener::open(loop, addr, false, [s](int fd, const net::SockAddr&) {
        auto c = std::make_unique<Client>();
        Client* cp = c.get();
        cp->server = s;
        cp->conn = std::make_unique<net::Connection>(s->loop_, fd, nullptr, true);
        cp->conn->set_callbacks({nullptr, [cp](const char* d, size_t n) { cp->on_data(d, n); },
                                 [s, cp](std::string_view) { s->clients_.erase(cp); }, nullptr});
        cp->conn->set_idle_timeout(30000);
        s->clients_.emplace(cp, std::move(c));
        cp->conn->start();
    });
    if (!l) return make_error("admin.listen: " + l.error().message);
    self->listener_ = std::move(*l);
    return self;
}

Server::Server(core::Loop& loop) : loop_(loop) {}
Server::~Server() = default;

const net::SockAddr& Server::address() const {
    return listener_->address();
}

Response Server::dispatch(const Request& req) const {
    if (check_ && req.path != "/health") {
        auto cred = basic_credentials(req.authorization);
        if (!cred || !check_(cred->first, cred->second)) {
            if (!req.authorization.empty())
                EP_WARN("admin", "{} {}: credentials refused", req.method, req.path);
            return text(401, "credentials required\n");
        }
    }
    auto it = routes_.find(req.path);
    if (it == routes_.end()) return text(404, "not found\n");
    return it->second(req);
}

} // namespace edgepair::admin

#include "common/obs/metrics.h"

namespace edgepair::admin {

std::string counters_json(const obs::Registry& metrics, const std::string& family) {
    std::string out;
    for (auto& [labels, n] : metrics.counter_values(family)) {
        std::string key;
        for (auto& [k, v] : labels)
            key += (key.empty() ? "" : "/") + v;
        out += fmt::format("{}{}:{}", out.empty() ? "" : ",", json_str(key), n);
    }
    return "{" + out + "}";
}

void install_standard_routes(Server& server, const obs::Registry& metrics, std::function<std::string()> ready,
                             std::function<std::string()> status) {
    auto get_only = [](Server::Handler h) {
        return [h = std::move(h)](const Request& r) -> Response {
            if (r.method != "GET" && r.method != "HEAD") return text(405, "method not allowed\n");
            return h(r);
        };
    };
    server.route("/health", get_only([](const Request&) { return text(200, "ok\n"); }));
    server.route("/ready", get_only([ready](const Request&) {
                     std::string why = ready();
                     return why.empty() ? text(200, "ready\n") : text(503, "not ready: " + why + "\n");
                 }));
    server.route("/status", get_only([status](const Request&) { return json(200, status()); }));
    server.route("/metrics", get_only([&metrics](const Request&) {
                     return Response{200, "text/plain; version=0.0.4; charset=utf-8", metrics.render()};
                 }));
}

} // namespace edgepair::admin
