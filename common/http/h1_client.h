#pragma once
// HTTP/1.1 client for edge-c's upstream side (Unified CM, IM&P, Unity Connection): per-origin keep-alive
// pools, TLS with per-request verification, streamed bodies in both directions with backpressure, and
// timeouts that are reported apart from other failures (504 versus 502 for the proxy). One Client per
// worker loop; nothing here is thread-safe.
//
// Callbacks are never made from inside start()/fetch(), and an Exchange stays valid until its handler has
// seen on_response_end() or on_error(), or until cancel() returns; after that the pointer must be dropped.
// Destroying the Client drops every exchange without calling its handler; do not destroy it from inside one
// of its own callbacks (post the destruction to the loop instead).
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/core/loop.h"
#include "common/core/result.h"
#include "common/http/h1_parser.h"
#include "common/net/dns.h"
#include "common/net/tls_context.h"

struct event;

namespace edgepair::obs {
class Counter;
}

namespace edgepair::http {

class ExchangeImpl;
class FetchHandler;

struct Origin {
    std::string scheme; // "http" or "https"
    std::string host;   // DNS name or IP literal (IPv6 with or without brackets)
    uint16_t port = 0;  // 0 = the scheme's default
    bool tls() const { return scheme == "https"; }
    uint16_t effective_port() const { return port ? port : (tls() ? 443 : 80); }
    std::string str() const; // "https://cucm1.example.com:8443"
};

struct ClientRequest {
    std::string method = "GET";
    Origin origin;
    std::string target = "/"; // origin-form ("/path?query") or "*"
    Headers headers;
    std::string body;   // fetch() only; start() takes the body through Exchange::write_body()
    bool verify = true; // https: verify the chain and that the certificate names origin.host
};

struct ClientResponse {
    int status = 0;
    std::string reason;
    Headers headers;
    std::string body;
};

enum class ClientErrorKind {
    Timeout,      // connect / response head / body idle: the proxy answers 504
    Dns,          // name did not resolve
    Connect,      // refused, unreachable, reset while connecting
    Tls,          // handshake failure other than verification
    TlsVerify,    // certificate chain or name rejected
    Protocol,     // malformed response, or a request body that contradicts its Content-Length
    Closed,       // upstream closed or reset the connection mid-exchange
    BodyTooLarge, // fetch(): response body above ClientOptions::max_body
    Cancelled,
    Invalid, // bad request or missing TLS context: our side
};

std::string_view kind_name(ClientErrorKind k);
// 504 for timeouts, 502 for every other upstream failure, 500 for Invalid.
int http_status_for(ClientErrorKind k);

struct ClientError {
    ClientErrorKind kind = ClientErrorKind::Closed;
    std::string message;
};

// fetch() reports failures as Error{"<kind>: <message>"} (Result carries only a message); this reads the
// kind back.
ClientErrorKind error_kind(const Error& e);

struct ClientStats {
    uint64_t requests = 0;
    uint64_t connections_opened = 0; // TCP connections started (each attempt at each address)
    uint64_t connections_reused = 0; // requests served on a pooled connection
    uint64_t retries = 0;            // stale pooled connection, replayed on a new one
    uint64_t timeouts = 0;
    uint64_t errors = 0; // every on_error, timeouts included
    uint64_t idle_closed = 0;
};

// Optional process-wide counters (obs::Registry-owned); any may be null.
struct ClientMetrics {
    obs::Counter* requests = nullptr;
    obs::Counter* errors = nullptr;
    obs::Counter* timeouts = nullptr;
    obs::Counter* connections_opened = nullptr;
    obs::Counter* connections_reused = nullptr;
};

struct ClientOptions {
    std::shared_ptr<net::TlsClientContext> tls_verify;   // used when ClientRequest::verify
    std::shared_ptr<net::TlsClientContext> tls_noverify; // used otherwise
    uint64_t connect_timeout_ms = 5000;                  // DNS + TCP + TLS handshake
    uint64_t response_timeout_ms = 30000;                // request fully sent -> response head
    uint64_t body_idle_timeout_ms = 30000;               // between response body bytes (not while paused)
    uint64_t pool_idle_timeout_ms = 60000;               // pooled connection unused this long is closed
    size_t max_idle_per_origin = 8;
    size_t max_body = 16 * 1024 * 1024; // fetch() only
    size_t write_high_watermark = 256 * 1024;
    size_t replay_limit = 64 * 1024; // request bytes kept to retry on a stale pooled connection
    ClientMetrics* metrics = nullptr;
};

class ExchangeHandler {
  public:
    virtual ~ExchangeHandler() = default;
    virtual void on_response_head(const ResponseHead& head) = 0; // final (non-1xx) head only
    virtual void on_response_body(std::string_view data) = 0;
    virtual void on_response_end() = 0;
    virtual void on_error(const ClientError& err) = 0;
    // The upstream took the queued request bytes (fell below half the high watermark) after write_body()
    // returned false.
    virtual void on_request_writable() {}
};

class Exchange {
  public:
    virtual ~Exchange() = default;
    // Queue request body bytes. Returns false when the queue is above the high watermark: wait for
    // on_request_writable(). Chunked framing is added unless the request carried a Content-Length.
    virtual bool write_body(std::string_view data) = 0;
    // The request body is complete. If no body byte was written and no Content-Length was given, the
    // request goes out without a body (Content-Length: 0 for POST/PUT/PATCH).
    virtual void end_body() = 0;
    virtual void pause_response() = 0;
    virtual void resume_response() = 0;
    // Abandon the exchange: no further handler call; the upstream connection is closed, not pooled.
    virtual void cancel() = 0;
};

class Client {
  public:
    using FetchCallback = std::function<void(Result<ClientResponse>)>;

    Client(core::Loop& loop, net::Resolver& resolver, ClientOptions opts = {});
    ~Client();
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    // Streaming: the request head is sent when the body's framing is known (first write_body() or
    // end_body()); the connection is set up meanwhile. `h` must outlive the exchange.
    Exchange* start(ClientRequest head, ExchangeHandler* h);
    // Buffered convenience: sends `req.body` (Content-Length framing), collects the response up to
    // options().max_body.
    void fetch(ClientRequest req, FetchCallback cb);

    const ClientStats& stats() const { return stats_; }
    const ClientOptions& options() const { return opts_; }
    size_t idle_connections() const;
    size_t active_exchanges() const { return exchanges_.size(); }
    // Closes every pooled idle connection (e.g. on reload, when the TLS contexts change).
    void close_idle();
    // Replace TLS contexts for new connections; pooled ones made with the old contexts are closed.
    void set_tls(std::shared_ptr<net::TlsClientContext> verify,
                 std::shared_ptr<net::TlsClientContext> noverify);
    // For exchanges started from now on (reload of http.upstream_timeout).
    void set_response_timeout(uint64_t ms) { opts_.response_timeout_ms = ms; }
    // Takes effect as connections come back to the pool; those already idle keep their timer.
    void set_pool(size_t max_idle_per_origin, uint64_t idle_timeout_ms) {
        opts_.max_idle_per_origin = max_idle_per_origin;
        opts_.pool_idle_timeout_ms = idle_timeout_ms;
    }

  private:
    friend class ExchangeImpl;
    friend class FetchHandler;
    struct Conn;
    void release(std::unique_ptr<Conn> c, bool reusable);
    std::unique_ptr<Conn> take_idle(const std::string& key);
    void drop_conn(std::unique_ptr<Conn> c, bool graceful);
    void on_idle_close(Conn* c);
    void retire(ExchangeImpl* x);
    void retire_fetch(FetchHandler* f);
    void wire(Conn* c);
    void schedule_reap();
    static void on_reap(int, short, void* arg);
    void count(uint64_t ClientStats::*field, obs::Counter* ClientMetrics::*metric);

    core::Loop& loop_;
    net::Resolver& resolver_;
    ClientOptions opts_;
    ClientStats stats_;
    std::unordered_map<std::string, std::vector<std::unique_ptr<Conn>>> idle_; // back = most recent
    std::vector<std::unique_ptr<Conn>> closing_;                               // graceful closes in progress
    std::unordered_map<ExchangeImpl*, std::unique_ptr<ExchangeImpl>> exchanges_;
    // Objects finished inside their own callbacks are freed on the next loop turn.
    std::vector<std::unique_ptr<ExchangeImpl>> dead_exchanges_;
    std::vector<std::unique_ptr<Conn>> dead_conns_;
    std::unordered_map<FetchHandler*, std::unique_ptr<FetchHandler>> fetches_;
    std::vector<std::unique_ptr<FetchHandler>> dead_fetches_;
    event* reap_ev_ = nullptr;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

} // namespace edgepair::http
