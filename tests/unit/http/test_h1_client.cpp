// http::Client against a real nginx (plain and TLS) and a scripted in-process server for the cases nginx
// cannot produce (stale keep-alive connections, silence, exact request bytes).
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <fstream>
#include <map>
#include <netinet/in.h>
#include <optional>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include "common/core/loop.h"
#include "common/http/h1_client.h"
#include "common/net/connection.h"
#include "common/net/dns.h"
#include "common/net/listener.h"
#include "common/net/tls_context.h"

using namespace edgepair;
using http::ClientErrorKind;

namespace {

constexpr const char* kNginx = "/usr/sbin/nginx";

int run(const std::string& cmd) {
    return std::system((cmd + " >/dev/null 2>&1").c_str());
}

uint16_t free_tcp_port() {
    int t = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ::bind(t, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::getsockname(t, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(t);
    return ntohs(a.sin_port);
}

bool tcp_accepts(const char* ip, uint16_t port) {
    int t = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    inet_pton(AF_INET, ip, &a.sin_addr);
    a.sin_port = htons(port);
    bool ok = ::connect(t, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(t);
    return ok;
}

void write_file(const std::string& path, const std::string& data) {
    std::ofstream f(path, std::ios::binary);
    f << data;
}

std::string big_body() {
    std::string s(5 * 1024 * 1024, '\0');
    for (size_t i = 0; i < s.size(); ++i)
        s[i] = char('a' + (i * 7 + i / 4096) % 26);
    return s;
}

// One nginx with a plain port, a TLS port (CA "ca" signed, SAN localhost + 127.0.0.1, also listening on
// 127.0.0.2) and a second TLS port whose certificate names only other.example.com. Shared by all tests.
struct NginxFixture {
    std::string dir;
    uint16_t plain = 0, tls = 0, tls_other = 0;
    pid_t pid = -1;
    bool ok = false;
    bool have_127_0_0_2 = false;
    std::string why;

    NginxFixture() {
        if (::access(kNginx, X_OK) != 0) {
            why = "nginx not installed";
            return;
        }
        char tmpl[] = "/tmp/ep_h1c_XXXXXX";
        if (!::mkdtemp(tmpl)) return;
        dir = tmpl;
        if (!make_pki()) {
            why = "openssl could not build the test PKI";
            return;
        }
        ::mkdir((dir + "/www").c_str(), 0755);
        write_file(dir + "/www/small.txt", "hello from nginx\n");
        write_file(dir + "/www/big.bin", big_body());
        plain = free_tcp_port();
        tls = free_tcp_port();
        tls_other = free_tcp_port();
        have_127_0_0_2 = can_bind("127.0.0.2");
        start();
    }

    bool can_bind(const char* ip) {
        int t = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        inet_pton(AF_INET, ip, &a.sin_addr);
        bool r = ::bind(t, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
        ::close(t);
        return r;
    }

    bool make_pki() {
        std::string d = dir;
        auto ec = [](const std::string& key) {
            return "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out " + key;
        };
        write_file(d + "/srv.ext", "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:127.0.0.1\n"
                                   "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n");
        write_file(d + "/other.ext", "subjectAltName=DNS:other.example.com\n"
                                     "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n");
        const std::vector<std::string> cmds = {
            ec(d + "/ca.key"),
            "openssl req -x509 -new -key " + d + "/ca.key -out " + d +
                "/ca.pem -days 2 -subj /CN=edgepair-test-ca",
            ec(d + "/wrongca.key"),
            "openssl req -x509 -new -key " + d + "/wrongca.key -out " + d +
                "/wrongca.pem -days 2 -subj /CN=edgepair-wrong-ca",
            ec(d + "/srv.key"),
            "openssl req -new -key " + d + "/srv.key -out " + d + "/srv.csr -subj /CN=localhost",
            "openssl x509 -req -in " + d + "/srv.csr -CA " + d + "/ca.pem -CAkey " + d +
                "/ca.key -CAcreateserial -out " + d + "/srv.pem -days 2 -extfile " + d + "/srv.ext",
            ec(d + "/other.key"),
            "openssl req -new -key " + d + "/other.key -out " + d + "/other.csr -subj /CN=other.example.com",
            "openssl x509 -req -in " + d + "/other.csr -CA " + d + "/ca.pem -CAkey " + d +
                "/ca.key -CAcreateserial -out " + d + "/other.pem -days 2 -extfile " + d + "/other.ext",
        };
        for (auto& c : cmds)
            if (run(c) != 0) return false;
        return true;
    }

    void start() {
        std::string d = dir;
        std::string conf = "daemon off;\nmaster_process off;\nworker_processes 1;\n";
        conf += "error_log " + d + "/error.log warn;\npid " + d + "/nginx.pid;\n";
        conf += "events { worker_connections 128; }\n";
        conf += "http {\n  access_log off;\n  default_type application/octet-stream;\n";
        conf += "  keepalive_timeout 30s;\n";
        for (auto t : {"client_body", "proxy", "fastcgi", "uwsgi", "scgi"})
            conf += std::string("  ") + t + "_temp_path " + d + "/" + t + "_temp;\n";
        conf += "  server {\n";
        conf += "    listen 127.0.0.1:" + std::to_string(plain) + ";\n";
        conf += "    listen 127.0.0.1:" + std::to_string(tls) + " ssl;\n";
        if (have_127_0_0_2) conf += "    listen 127.0.0.2:" + std::to_string(tls) + " ssl;\n";
        conf += "    ssl_certificate " + d + "/srv.pem;\n    ssl_certificate_key " + d + "/srv.key;\n";
        conf += "    root " + d + "/www;\n";
        // nginx cannot echo; proxying to itself makes it read the body and hand it back in a header.
        conf +=
            "    location = /echo {\n      client_max_body_size 10m;\n      client_body_buffer_size 64k;\n";
        conf += "      proxy_pass http://127.0.0.1:" + std::to_string(plain) + "/echo_back;\n";
        conf += "      proxy_pass_request_body off;\n      proxy_set_header Content-Length \"\";\n";
        conf += "      proxy_set_header X-Body $request_body;\n";
        conf += "      proxy_set_header X-Method $request_method;\n    }\n";
        conf += "    location = /echo_back { return 200 \"$http_x_method:$http_x_body\"; }\n";
        conf += "  }\n";
        conf += "  server {\n    listen 127.0.0.1:" + std::to_string(tls_other) + " ssl;\n";
        conf += "    ssl_certificate " + d + "/other.pem;\n    ssl_certificate_key " + d + "/other.key;\n";
        conf += "    root " + d + "/www;\n  }\n}\n";
        write_file(d + "/nginx.conf", conf);

        pid = ::fork();
        if (pid == 0) {
            int devnull = ::open("/dev/null", O_RDWR);
            ::dup2(devnull, 1);
            ::dup2(devnull, 2);
            std::string c = d + "/nginx.conf", e = d + "/error.log";
            ::execl(kNginx, kNginx, "-p", d.c_str(), "-c", c.c_str(), "-e", e.c_str(), nullptr);
            ::_exit(127);
        }
        for (int i = 0; i < 100; ++i) {
            if (tcp_accepts("127.0.0.1", plain) && tcp_accepts("127.0.0.1", tls) &&
                tcp_accepts("127.0.0.1", tls_other)) {
                ok = true;
                return;
            }
            int st = 0;
            if (::waitpid(pid, &st, WNOHANG) == pid) {
                pid = -1;
                why = "nginx exited at start-up (see " + d + "/error.log)";
                return;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        why = "nginx did not start listening";
    }

    ~NginxFixture() {
        if (pid > 0) {
            ::kill(pid, SIGTERM);
            int st = 0;
            ::waitpid(pid, &st, 0);
        }
        if (!dir.empty() && ok) run("rm -rf '" + dir + "'");
    }
};

NginxFixture& nginx() {
    static NginxFixture f;
    return f;
}

#define REQUIRE_NGINX()                                                                                      \
    do {                                                                                                     \
        if (!nginx().ok) {                                                                                   \
            WARN("skipping: " << nginx().why);                                                               \
            return;                                                                                          \
        }                                                                                                    \
    } while (0)

std::shared_ptr<net::TlsClientContext> tls_ctx(const std::string& ca, bool verify) {
    net::TlsClientOptions o;
    o.trusted_cas = ca;
    o.verify = verify;
    auto r = net::TlsClientContext::create(o);
    REQUIRE(r.ok());
    return *r;
}

// Loop + resolver + client, and a bounded run: every test stops within `limit_ms` whatever happens.
struct Rig {
    core::Loop loop;
    std::unique_ptr<net::Resolver> resolver;
    std::unique_ptr<http::Client> client;

    explicit Rig(http::ClientOptions o = {}) {
        net::ResolverOptions ro;
        ro.servers = {"127.0.0.1:9"}; // nothing answers there: only numeric hosts and /etc/hosts resolve
        ro.timeout_ms = 200;
        ro.tries = 1;
        auto r = net::Resolver::create(loop, ro);
        REQUIRE(r.ok());
        resolver = std::move(*r);
        if (!o.tls_verify && nginx().ok) o.tls_verify = tls_ctx(nginx().dir + "/ca.pem", true);
        if (!o.tls_noverify) o.tls_noverify = tls_ctx("", false);
        client = std::make_unique<http::Client>(loop, *resolver, o);
    }

    void run_until(const std::function<bool()>& done, uint64_t limit_ms = 8000) {
        core::Timer guard(loop, [&] { loop.stop(); });
        guard.arm(limit_ms);
        core::Timer ticker(loop, [&] {
            if (done())
                loop.stop();
            else
                ticker.arm(2);
        });
        ticker.arm(0);
        loop.run();
    }

    Result<http::ClientResponse> fetch(http::ClientRequest req, uint64_t limit_ms = 8000) {
        std::optional<Result<http::ClientResponse>> out;
        client->fetch(std::move(req), [&](Result<http::ClientResponse> r) { out = std::move(r); });
        run_until([&] { return out.has_value(); }, limit_ms);
        if (!out) return make_error("test: no answer within the time limit");
        return std::move(*out);
    }
};

http::ClientRequest get(const std::string& scheme, const std::string& host, uint16_t port,
                        const std::string& target, bool verify = true) {
    http::ClientRequest r;
    r.method = "GET";
    r.origin = http::Origin{scheme, host, port};
    r.target = target;
    r.verify = verify;
    return r;
}

struct Collect : http::ExchangeHandler {
    http::ResponseHead head;
    std::string body;
    int body_events = 0;
    bool ended = false;
    std::optional<http::ClientError> err;
    int writable_calls = 0;
    std::function<void(std::string_view)> on_body;
    void on_response_head(const http::ResponseHead& h) override { head = h; }
    void on_response_body(std::string_view d) override {
        ++body_events;
        body.append(d);
        if (on_body) on_body(d);
    }
    void on_response_end() override { ended = true; }
    void on_error(const http::ClientError& e) override { err = e; }
    void on_request_writable() override { ++writable_calls; }
    bool done() const { return ended || err.has_value(); }
};

// A plain HTTP/1.1 server on the test's loop whose answers are scripted per (connection, request).
struct ScriptedServer {
    struct Peer {
        std::unique_ptr<net::Connection> conn;
        http::H1Parser parser{http::H1Parser::Kind::Request};
        std::string raw;
        int requests = 0;
    };
    // Returns the bytes to answer with, or nullopt to drop the connection without answering.
    using Script = std::function<std::optional<std::string>(int conn, int req, const std::string& raw)>;

    core::Loop& loop;
    Script script;
    std::unique_ptr<net::Listener> listener;
    std::map<int, std::unique_ptr<Peer>> peers;
    std::vector<std::unique_ptr<Peer>> graveyard; // closed peers: freed with the server, never mid-callback
    std::vector<std::string> requests;            // raw bytes of every complete request
    int accepted = 0;

    ScriptedServer(core::Loop& l, Script s) : loop(l), script(std::move(s)) {
        auto addr = net::numeric_addr("127.0.0.1", 0);
        REQUIRE(addr.ok());
        auto r =
            net::Listener::open(loop, *addr, false, [this](int fd, const net::SockAddr&) { accept(fd); });
        REQUIRE(r.ok());
        listener = std::move(*r);
    }
    uint16_t port() const { return listener->address().port(); }

    void accept(int fd) {
        int id = accepted++;
        auto p = std::make_unique<Peer>();
        Peer* raw = p.get();
        p->conn = std::make_unique<net::Connection>(loop, fd, nullptr, true);
        net::Connection::Callbacks cb;
        cb.on_data = [this, raw, id](const char* d, size_t n) { on_data(*raw, id, d, n); };
        cb.on_close = [this, id](std::string_view) {
            auto it = peers.find(id);
            if (it != peers.end()) {
                graveyard.push_back(std::move(it->second));
                peers.erase(it);
            }
        };
        p->conn->set_callbacks(std::move(cb));
        peers[id] = std::move(p);
        raw->conn->start();
    }

    void on_data(Peer& p, int id, const char* d, size_t n) {
        p.raw.append(d, n);
        for (;;) {
            auto r = p.parser.feed(d, n);
            d += r.consumed;
            n -= r.consumed;
            switch (r.status) {
            case http::H1Parser::Status::Error:
                return p.conn->abort("bad request");
            case http::H1Parser::Status::NeedMore:
                return;
            case http::H1Parser::Status::MessageComplete: {
                requests.push_back(p.raw);
                auto answer = script(id, p.requests++, p.raw);
                p.raw.clear();
                if (!answer) return p.conn->abort("scripted drop");
                p.conn->write(*answer);
                break;
            }
            default:
                break;
            }
        }
    }
};

const std::string kOk = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

} // namespace

TEST_CASE("GET over plain HTTP, then keep-alive reuse", "[h1_client]") {
    REQUIRE_NGINX();
    Rig rig;
    auto r1 = rig.fetch(get("http", "127.0.0.1", nginx().plain, "/small.txt"));
    REQUIRE(r1.ok());
    CHECK(r1->status == 200);
    CHECK(r1->body == "hello from nginx\n");
    CHECK(rig.client->idle_connections() == 1);

    auto r2 = rig.fetch(get("http", "127.0.0.1", nginx().plain, "/small.txt"));
    REQUIRE(r2.ok());
    CHECK(r2->body == "hello from nginx\n");
    auto head = get("http", "127.0.0.1", nginx().plain, "/small.txt");
    head.method = "HEAD";
    auto r3 = rig.fetch(head);
    REQUIRE(r3.ok());
    CHECK(r3->status == 200);
    CHECK(r3->body.empty());
    REQUIRE(r3->headers.find("content-length"));
    CHECK(*r3->headers.find("content-length") == "17");

    auto missing = rig.fetch(get("http", "127.0.0.1", nginx().plain, "/nope"));
    REQUIRE(missing.ok());
    CHECK(missing->status == 404);

    CHECK(rig.client->stats().connections_opened == 1);
    CHECK(rig.client->stats().connections_reused == 3);
    CHECK(rig.client->stats().requests == 4);
}

TEST_CASE("5 MiB streamed with pause/resume backpressure", "[h1_client]") {
    REQUIRE_NGINX();
    Rig rig;
    Collect h;
    http::Exchange* x = nullptr;
    int pauses = 0;
    core::Timer resume(rig.loop, [&] { x->resume_response(); });
    h.on_body = [&](std::string_view) {
        // Pause every 64th chunk for a moment: the rest of the chunk must be held, not lost.
        if (h.body_events % 64 == 1) {
            ++pauses;
            x->pause_response();
            resume.arm(5);
        }
    };
    x = rig.client->start(get("http", "127.0.0.1", nginx().plain, "/big.bin"), &h);
    x->end_body();
    rig.run_until([&] { return h.done(); });
    INFO("error: " << (h.err ? h.err->message : "none") << " body " << h.body.size() << " events "
                   << h.body_events << " pauses " << pauses);
    REQUIRE(h.ended);
    CHECK(h.head.status == 200);
    CHECK(h.body.size() == 5u * 1024 * 1024);
    CHECK(h.body == big_body());
    CHECK(pauses > 1);
    CHECK(rig.client->idle_connections() == 1);

    SECTION("fetch() refuses a body above max_body") {
        http::ClientOptions o;
        o.max_body = 1024 * 1024;
        Rig small(o);
        auto r = small.fetch(get("http", "127.0.0.1", nginx().plain, "/big.bin"));
        REQUIRE_FALSE(r.ok());
        CHECK(http::error_kind(r.error()) == ClientErrorKind::BodyTooLarge);
        CHECK(small.client->idle_connections() == 0); // abandoned mid-body: not reusable
    }
}

TEST_CASE("cancel() mid-body closes the upstream connection without further callbacks", "[h1_client]") {
    REQUIRE_NGINX();
    Rig rig;
    Collect h;
    http::Exchange* x = nullptr;
    bool cancelled = false;
    h.on_body = [&](std::string_view) {
        if (!cancelled) {
            cancelled = true;
            x->cancel();
        }
    };
    x = rig.client->start(get("http", "127.0.0.1", nginx().plain, "/big.bin"), &h);
    x->end_body();
    rig.run_until([&] { return cancelled; });
    rig.run_until([] { return false; }, 100); // anything that would still arrive
    CHECK(cancelled);
    CHECK(h.body_events == 1);
    CHECK_FALSE(h.done());
    CHECK(rig.client->idle_connections() == 0);
    CHECK(rig.client->active_exchanges() == 0);
}

TEST_CASE("POST bodies reach nginx: Content-Length and chunked", "[h1_client]") {
    REQUIRE_NGINX();
    Rig rig;
    http::ClientRequest req = get("http", "127.0.0.1", nginx().plain, "/echo");
    req.method = "POST";
    req.body = "name=cucm1&role=publisher";
    auto r = rig.fetch(req);
    REQUIRE(r.ok());
    CHECK(r->status == 200);
    CHECK(r->body == "POST:name=cucm1&role=publisher");

    // Streaming without a Content-Length: chunked upstream.
    Collect h;
    auto* x = rig.client->start(get("http", "127.0.0.1", nginx().plain, "/echo"), &h);
    x->write_body("part1-");
    x->write_body("part2-");
    x->write_body("part3");
    x->end_body();
    rig.run_until([&] { return h.done(); });
    REQUIRE(h.ended);
    CHECK(h.head.status == 200);
    CHECK(h.body == "GET:part1-part2-part3");
    CHECK(rig.client->stats().connections_opened == 1);
}

TEST_CASE("request head: Host added, hop-by-hop fields stripped, framing chosen", "[h1_client]") {
    Rig rig;
    ScriptedServer srv(rig.loop,
                       [](int, int, const std::string&) { return std::optional<std::string>(kOk); });
    http::ClientRequest req = get("http", "127.0.0.1", srv.port(), "/a?b=c");
    req.method = "PUT";
    req.headers.add("Connection", "close, X-Secret");
    req.headers.add("X-Secret", "1");
    req.headers.add("Keep-Alive", "timeout=5");
    req.headers.add("Proxy-Authorization", "Basic Zm9vOmJhcg==");
    req.headers.add("Transfer-Encoding", "gzip, chunked");
    req.headers.add("TE", "trailers");
    req.headers.add("Upgrade", "h2c");
    req.headers.add("X-Keep", "yes");
    Collect h;
    auto* x = rig.client->start(req, &h);
    x->write_body("0123456789");
    x->end_body();
    rig.run_until([&] { return h.done(); });
    REQUIRE(h.ended);
    REQUIRE(srv.requests.size() == 1);
    const std::string& raw = srv.requests[0];
    CHECK(raw.rfind("PUT /a?b=c HTTP/1.1\r\n", 0) == 0);
    CHECK(raw.find("Host: 127.0.0.1:" + std::to_string(srv.port()) + "\r\n") != std::string::npos);
    CHECK(raw.find("X-Keep: yes\r\n") != std::string::npos);
    CHECK(raw.find("Transfer-Encoding: chunked\r\n") != std::string::npos);
    CHECK(raw.find("gzip") == std::string::npos);
    for (auto gone : {"Connection:", "X-Secret", "Keep-Alive", "Proxy-Authorization", "TE:", "Upgrade"})
        CHECK(raw.find(gone) == std::string::npos);
    CHECK(raw.find("\r\n\r\na\r\n0123456789\r\n0\r\n\r\n") != std::string::npos);

    // Known length passes through; no body and no length on POST gets Content-Length: 0.
    http::ClientRequest r2 = get("http", "localhost", srv.port(), "/len");
    r2.method = "POST";
    r2.headers.add("Content-Length", "4");
    Collect h2;
    auto* x2 = rig.client->start(r2, &h2);
    x2->write_body("ab");
    x2->write_body("cd");
    x2->end_body();
    http::ClientRequest r3 = get("http", "127.0.0.1", srv.port(), "/empty");
    r3.method = "POST";
    Collect h3;
    rig.client->start(r3, &h3)->end_body();
    rig.run_until([&] { return h2.done() && h3.done(); });
    REQUIRE(h2.ended);
    REQUIRE(h3.ended);
    REQUIRE(srv.requests.size() == 3);
    std::string len_req, empty_req;
    for (auto& q : srv.requests) {
        if (q.rfind("POST /len", 0) == 0) len_req = q;
        if (q.rfind("POST /empty", 0) == 0) empty_req = q;
    }
    CHECK(len_req.find("Host: localhost:" + std::to_string(srv.port()) + "\r\n") != std::string::npos);
    CHECK(len_req.find("Content-Length: 4\r\n") != std::string::npos);
    CHECK(len_req.find("chunked") == std::string::npos);
    CHECK(len_req.substr(len_req.size() - 8) == "\r\n\r\nabcd");
    CHECK(empty_req.find("Content-Length: 0\r\n") != std::string::npos);

    // A body longer than its declared length is refused, asynchronously.
    http::ClientRequest r4 = get("http", "127.0.0.1", srv.port(), "/over");
    r4.method = "POST";
    r4.headers.add("Content-Length", "1");
    Collect h4;
    auto* x4 = rig.client->start(r4, &h4);
    x4->write_body("too long");
    CHECK_FALSE(h4.done());
    rig.run_until([&] { return h4.done(); });
    REQUIRE(h4.err);
    CHECK(h4.err->kind == ClientErrorKind::Protocol);
}

TEST_CASE("a stale pooled connection is retried once on a new one", "[h1_client]") {
    Rig rig;
    // Connection 0 answers its first request, then drops the second without answering (the race where the
    // server closes an idle connection just as we reuse it).
    ScriptedServer srv(rig.loop, [](int conn, int req, const std::string&) -> std::optional<std::string> {
        if (conn == 0 && req == 1) return std::nullopt;
        return kOk;
    });
    auto r1 = rig.fetch(get("http", "127.0.0.1", srv.port(), "/one"));
    REQUIRE(r1.ok());
    auto r2 = rig.fetch(get("http", "127.0.0.1", srv.port(), "/two"));
    REQUIRE(r2.ok());
    CHECK(r2->body == "ok");
    CHECK(rig.client->stats().retries == 1);
    CHECK(rig.client->stats().connections_opened == 2);

    // Not for POST: the request may have had effects.
    ScriptedServer srv2(rig.loop, [](int conn, int req, const std::string&) -> std::optional<std::string> {
        if (conn == 0 && req == 1) return std::nullopt;
        return kOk;
    });
    REQUIRE(rig.fetch(get("http", "127.0.0.1", srv2.port(), "/one")).ok());
    auto post = get("http", "127.0.0.1", srv2.port(), "/two");
    post.method = "POST";
    post.body = "x";
    auto r3 = rig.fetch(post);
    REQUIRE_FALSE(r3.ok());
    CHECK(http::error_kind(r3.error()) == ClientErrorKind::Closed);
    CHECK(rig.client->stats().retries == 1);
}

TEST_CASE("idle pooled connections expire", "[h1_client]") {
    http::ClientOptions o;
    o.pool_idle_timeout_ms = 150;
    o.max_idle_per_origin = 1;
    Rig rig(o);
    ScriptedServer srv(rig.loop,
                       [](int, int, const std::string&) { return std::optional<std::string>(kOk); });
    // Two concurrent requests need two connections; only one may stay idle.
    std::optional<Result<http::ClientResponse>> a, b;
    rig.client->fetch(get("http", "127.0.0.1", srv.port(), "/a"), [&](auto r) { a = std::move(r); });
    rig.client->fetch(get("http", "127.0.0.1", srv.port(), "/b"), [&](auto r) { b = std::move(r); });
    rig.run_until([&] { return a && b; });
    REQUIRE(a->ok());
    REQUIRE(b->ok());
    CHECK(rig.client->stats().connections_opened == 2);
    CHECK(rig.client->idle_connections() == 1);
    rig.run_until([&] { return rig.client->idle_connections() == 0; }, 2000);
    CHECK(rig.client->idle_connections() == 0);
    CHECK(rig.client->stats().idle_closed == 1);
}

TEST_CASE("the pool reuses its most recent connection: a burst's surplus expires under steady use",
          "[h1_client]") {
    // edge-c's default cap (http.upstream_idle_per_origin) is high because this holds: what recent load did
    // not need ages out, so the cap bounds the peak and not what is kept at rest.
    http::ClientOptions o;
    o.pool_idle_timeout_ms = 300;
    o.max_idle_per_origin = 8;
    Rig rig(o);
    ScriptedServer srv(rig.loop,
                       [](int, int, const std::string&) { return std::optional<std::string>(kOk); });
    std::optional<Result<http::ClientResponse>> r[3];
    for (int i = 0; i < 3; ++i)
        rig.client->fetch(get("http", "127.0.0.1", srv.port(), "/burst"),
                          [&r, i](auto x) { r[i] = std::move(x); });
    rig.run_until([&] { return r[0] && r[1] && r[2]; });
    for (auto& x : r)
        REQUIRE(x->ok());
    REQUIRE(rig.client->stats().connections_opened == 3);
    CHECK(rig.client->idle_connections() == 3);
    // One request every 40 ms for 1 s: always the same (most recent) connection, the two others expire.
    for (int i = 0; i < 25; ++i) {
        REQUIRE(rig.fetch(get("http", "127.0.0.1", srv.port(), "/steady")).ok());
        rig.run_until([] { return false; }, 40);
    }
    CHECK(rig.client->stats().connections_opened == 3);
    CHECK(rig.client->stats().idle_closed == 2);
    CHECK(rig.client->idle_connections() == 1);
}

TEST_CASE("TLS: verified by name and by IP", "[h1_client]") {
    REQUIRE_NGINX();
    Rig rig;
    auto r1 = rig.fetch(get("https", "localhost", nginx().tls, "/small.txt"));
    REQUIRE(r1.ok());
    CHECK(r1->body == "hello from nginx\n");
    auto r2 = rig.fetch(get("https", "127.0.0.1", nginx().tls, "/small.txt"));
    REQUIRE(r2.ok());
    CHECK(r2->status == 200);
    // Pools are per origin: "localhost" and "127.0.0.1" are different origins.
    CHECK(rig.client->stats().connections_opened >= 2);
    auto r3 = rig.fetch(get("https", "127.0.0.1", nginx().tls, "/big.bin"));
    REQUIRE(r3.ok());
    CHECK(r3->body.size() == 5u * 1024 * 1024);
    CHECK(rig.client->stats().connections_reused >= 1);
}

TEST_CASE("TLS verification failures are reported as such", "[h1_client]") {
    REQUIRE_NGINX();
    SECTION("wrong CA") {
        http::ClientOptions o;
        o.tls_verify = tls_ctx(nginx().dir + "/wrongca.pem", true);
        Rig rig(o);
        auto r = rig.fetch(get("https", "localhost", nginx().tls, "/small.txt"));
        REQUIRE_FALSE(r.ok());
        CHECK(http::error_kind(r.error()) == ClientErrorKind::TlsVerify);
        CHECK_THAT(r.error().message, Catch::Contains("certificate verify failed"));
        CHECK_THAT(r.error().message, Catch::Contains("unable to get local issuer certificate"));
        CHECK(http::http_status_for(http::error_kind(r.error())) == 502);

        // verify=false uses the non-verifying context and succeeds.
        auto ok = rig.fetch(get("https", "localhost", nginx().tls, "/small.txt", false));
        REQUIRE(ok.ok());
        CHECK(ok->status == 200);
    }
    SECTION("host name not in the certificate") {
        Rig rig;
        auto r = rig.fetch(get("https", "localhost", nginx().tls_other, "/small.txt"));
        REQUIRE_FALSE(r.ok());
        CHECK(http::error_kind(r.error()) == ClientErrorKind::TlsVerify);
        CHECK_THAT(r.error().message, Catch::Contains("hostname mismatch"));
    }
    SECTION("IP address not in the certificate") {
        if (!nginx().have_127_0_0_2) {
            WARN("127.0.0.2 not bindable here; skipping");
            return;
        }
        Rig rig;
        auto r = rig.fetch(get("https", "127.0.0.2", nginx().tls, "/small.txt"));
        REQUIRE_FALSE(r.ok());
        CHECK(http::error_kind(r.error()) == ClientErrorKind::TlsVerify);
        CHECK_THAT(r.error().message, Catch::Contains("mismatch"));
    }
}

TEST_CASE("connect failures, DNS failures and timeouts have distinct kinds", "[h1_client]") {
    SECTION("connection refused") {
        Rig rig;
        auto r = rig.fetch(get("http", "127.0.0.1", free_tcp_port(), "/"));
        REQUIRE_FALSE(r.ok());
        CHECK(http::error_kind(r.error()) == ClientErrorKind::Connect);
        CHECK_THAT(r.error().message, Catch::Contains("refused"));
    }
    SECTION("name does not resolve") {
        Rig rig;
        auto r = rig.fetch(get("https", "cucm9.example.invalid", 8443, "/"));
        REQUIRE_FALSE(r.ok());
        CHECK(http::error_kind(r.error()) == ClientErrorKind::Dns);
        CHECK_THAT(r.error().message, Catch::Contains("cucm9.example.invalid"));
    }
    // A listener that never accepts or answers: the kernel completes the TCP handshake from the backlog.
    int silent = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    REQUIRE(::bind(silent, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(silent, 16) == 0);
    ::getsockname(silent, reinterpret_cast<sockaddr*>(&a), &len);
    uint16_t port = ntohs(a.sin_port);
    SECTION("no response head") {
        http::ClientOptions o;
        o.response_timeout_ms = 300;
        Rig rig(o);
        auto t0 = std::chrono::steady_clock::now();
        auto r = rig.fetch(get("http", "127.0.0.1", port, "/slow"));
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
                      .count();
        REQUIRE_FALSE(r.ok());
        CHECK(http::error_kind(r.error()) == ClientErrorKind::Timeout);
        CHECK(http::http_status_for(ClientErrorKind::Timeout) == 504);
        CHECK_THAT(r.error().message, Catch::Contains("no response head"));
        CHECK(ms >= 250);
        CHECK(ms < 3000);
        CHECK(rig.client->stats().timeouts == 1);
    }
    SECTION("TLS handshake never completes") {
        http::ClientOptions o;
        o.connect_timeout_ms = 300;
        Rig rig(o);
        auto r = rig.fetch(get("https", "127.0.0.1", port, "/", false));
        REQUIRE_FALSE(r.ok());
        CHECK(http::error_kind(r.error()) == ClientErrorKind::Timeout);
        CHECK_THAT(r.error().message, Catch::Contains("connecting"));
    }
    ::close(silent);
}

TEST_CASE("response body idle timeout", "[h1_client]") {
    http::ClientOptions o;
    o.body_idle_timeout_ms = 200;
    Rig rig(o);
    // Promises 100 bytes, sends 5, then goes quiet.
    ScriptedServer srv(rig.loop, [](int, int, const std::string&) {
        return std::optional<std::string>("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello");
    });
    Collect h;
    rig.client->start(get("http", "127.0.0.1", srv.port(), "/stall"), &h)->end_body();
    rig.run_until([&] { return h.done(); });
    REQUIRE(h.err);
    CHECK(h.err->kind == ClientErrorKind::Timeout);
    CHECK(h.head.status == 200);
    CHECK(h.body == "hello");
    CHECK_THAT(h.err->message, Catch::Contains("stalled"));
}

TEST_CASE("invalid requests fail asynchronously", "[h1_client]") {
    Rig rig;
    Collect h;
    http::ClientRequest bad = get("ftp", "127.0.0.1", 21, "/");
    auto* x = rig.client->start(bad, &h);
    x->end_body();
    CHECK_FALSE(h.done()); // never from inside start()
    rig.run_until([&] { return h.done(); });
    REQUIRE(h.err);
    CHECK(h.err->kind == ClientErrorKind::Invalid);

    Collect h2;
    http::ClientRequest inj = get("http", "127.0.0.1", 80, "/");
    inj.headers.add("X-Bad", "a\r\nInjected: 1");
    rig.client->start(inj, &h2)->end_body();
    rig.run_until([&] { return h2.done(); });
    REQUIRE(h2.err);
    CHECK(h2.err->kind == ClientErrorKind::Invalid);
}

TEST_CASE("request body backpressure: write_body() false, then on_request_writable()", "[h1_client]") {
    http::ClientOptions o;
    o.write_high_watermark = 16 * 1024;
    Rig rig(o);
    size_t body_seen = 0;
    ScriptedServer srv(rig.loop, [&](int, int, const std::string& raw) {
        body_seen = raw.size() - raw.find("\r\n\r\n") - 4;
        return std::optional<std::string>(kOk);
    });
    struct Uploader : Collect {
        http::Exchange* x = nullptr;
        size_t sent = 0, total = 4 * 1024 * 1024;
        int refusals = 0;
        void pump() {
            const std::string piece(64 * 1024, 'u');
            while (sent < total) {
                sent += piece.size();
                if (!x->write_body(piece)) {
                    ++refusals;
                    if (sent < total) return; // wait for on_request_writable()
                }
            }
            x->end_body();
        }
        void on_request_writable() override {
            Collect::on_request_writable();
            pump();
        }
    } h;
    http::ClientRequest req = get("http", "127.0.0.1", srv.port(), "/upload");
    req.method = "POST";
    req.headers.add("Content-Length", std::to_string(h.total));
    h.x = rig.client->start(req, &h);
    h.pump();
    rig.run_until([&] { return h.done(); });
    REQUIRE(h.ended);
    CHECK(h.sent == h.total);
    CHECK(h.refusals > 1);
    CHECK(h.writable_calls >= h.refusals - 1);
    CHECK(body_seen == h.total);
}
