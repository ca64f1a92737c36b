#include "common/http/h1_client.h"

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <fmt/format.h>

#include "common/http/header_policy.h"
#include "common/net/connection.h"
#include "common/net/listener.h"
#include "common/obs/access_log.h"
#include "common/obs/log.h"
#include "common/obs/metrics.h"

namespace edgepair::http {

namespace {
constexpr const char* kLog = "http.client";

bool is_idempotent(std::string_view m) {
    return m == "GET" || m == "HEAD" || m == "OPTIONS" || m == "TRACE" || m == "PUT" || m == "DELETE";
}

bool body_expected(std::string_view m) {
    return m == "POST" || m == "PUT" || m == "PATCH";
}

std::string bare_host(std::string_view h) {
    if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
    return std::string(h);
}

bool starts_with_ci(std::string_view s, std::string_view prefix) {
    return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

std::string host_header(const Origin& o) {
    std::string h = bare_host(o.host);
    if (h.find(':') != std::string::npos) h = "[" + h + "]";
    uint16_t def = o.tls() ? 443 : 80;
    if (o.port && o.port != def) h += ":" + std::to_string(o.port);
    return h;
}

bool parse_length(std::string_view v, uint64_t& out) {
    if (v.empty() || v.size() > 18) return false;
    uint64_t n = 0;
    for (char c : v) {
        if (c < '0' || c > '9') return false;
        n = n * 10 + uint64_t(c - '0');
    }
    out = n;
    return true;
}

} // namespace

std::string Origin::str() const {
    std::string h = bare_host(host);
    if (h.find(':') != std::string::npos) h = "[" + h + "]";
    return fmt::format("{}://{}:{}", scheme, h, effective_port());
}

std::string_view kind_name(ClientErrorKind k) {
    switch (k) {
    case ClientErrorKind::Timeout:
        return "timeout";
    case ClientErrorKind::Dns:
        return "dns";
    case ClientErrorKind::Connect:
        return "connect";
    case ClientErrorKind::Tls:
        return "tls";
    case ClientErrorKind::TlsVerify:
        return "tls-verify";
    case ClientErrorKind::Protocol:
        return "protocol";
    case ClientErrorKind::Closed:
        return "closed";
    case ClientErrorKind::BodyTooLarge:
        return "body-too-large";
    case ClientErrorKind::Cancelled:
        return "cancelled";
    case ClientErrorKind::Invalid:
        return "invalid";
    }
    return "closed";
}

int http_status_for(ClientErrorKind k) {
    if (k == ClientErrorKind::Timeout) return 504;
    if (k == ClientErrorKind::Invalid) return 500;
    return 502;
}

ClientErrorKind error_kind(const Error& e) {
    auto colon = e.message.find(": ");
    std::string_view head = std::string_view(e.message).substr(0, colon);
    for (int i = 0; i <= int(ClientErrorKind::Invalid); ++i) {
        auto k = ClientErrorKind(i);
        if (head == kind_name(k)) return k;
    }
    return ClientErrorKind::Closed;
}

// A pooled upstream connection. Its callbacks are wired once and dispatch on `owner`/`state`, so a
// connection can move between exchanges and the pool without replacing a std::function mid-call.
struct Client::Conn {
    enum class State { Active, Idle, Closing, Dead };
    std::unique_ptr<net::Connection> c;
    std::string key;
    ExchangeImpl* owner = nullptr;
    State state = State::Active;
    bool paused = false;
    bool reusable = true; // false once the upstream misbehaved on it
};

class ExchangeImpl final : public Exchange {
  public:
    ExchangeImpl(Client& cl, ClientRequest req, ExchangeHandler* h)
        : cl_(cl), req_(std::move(req)), h_(h), parser_(H1Parser::Kind::Response),
          timer_(cl.loop_, [this] { on_timer(); }), defer_(cl.loop_, [this] { on_deferred(); }) {
        parser_.set_request_method(req_.method);
        replay_limit_ = cl_.opts_.replay_limit;
    }

    ~ExchangeImpl() override { stop_connect_attempt(); }

    void begin();
    bool write_body(std::string_view data) override;
    void end_body() override;
    void pause_response() override;
    void resume_response() override;
    void cancel() override;

    void on_conn_ready();
    void on_conn_data(const char* p, size_t n);
    void on_conn_close(std::string_view why);
    void on_conn_drained();

  private:
    enum class TimerKind { None, Connect, Response, BodyIdle };

    void fail(ClientErrorKind kind, std::string msg);
    void fail_later(ClientErrorKind kind, std::string msg);
    void on_deferred();
    void on_timer();
    void arm(TimerKind k);
    void disarm() {
        timer_.cancel();
        timer_kind_ = TimerKind::None;
    }
    void acquire(bool allow_pool);
    void on_resolved(Result<std::vector<net::SockAddr>> r);
    void connect_next();
    static void on_connect_event(int fd, short, void* arg);
    void connect_finished(int fd);
    void stop_connect_attempt();
    void commit_head(bool has_body);
    void send(std::string_view bytes);
    bool writable() const;
    void arm_response_timer_if_due();
    void process(const char* p, size_t n);
    void feed_parser(const char* p, size_t n);
    void complete();
    void handle_close(std::string_view why);
    void retry();

    Client& cl_;
    ClientRequest req_;
    ExchangeHandler* h_;
    H1Parser parser_;
    core::Timer timer_;
    core::Timer defer_;
    TimerKind timer_kind_ = TimerKind::None;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);

    std::string key_;
    std::shared_ptr<net::TlsClientContext> tls_;
    RequestHead head_;
    std::optional<uint64_t> declared_len_;
    bool committed_ = false, chunked_ = false, req_ended_ = false;
    uint64_t body_sent_ = 0;
    std::string pending_; // request bytes waiting for the connection
    std::string replay_;  // everything sent so far, while it fits replay_limit_
    bool replayable_ = true;
    size_t replay_limit_;
    bool want_writable_ = false;

    std::vector<net::SockAddr> addrs_;
    size_t addr_idx_ = 0;
    std::string last_connect_error_;
    int connect_fd_ = -1;
    event* connect_ev_ = nullptr;

    std::unique_ptr<Client::Conn> conn_;
    bool conn_ready_ = false, reused_ = false, retried_ = false, retrying_ = false;
    bool got_bytes_ = false, head_seen_ = false, interim_ = false, paused_ = false;
    bool terminal_ = false;
    bool doomed_ = false;     // a failure is scheduled; caller calls are ignored until it is delivered
    bool processing_ = false; // inside the parse loop (a handler may pause and resume from there)
    std::string rx_buf_;      // response bytes received after pause_response()
    bool close_pending_ = false;
    std::string close_why_;
    ClientErrorKind deferred_kind_ = ClientErrorKind::Invalid;
    std::string deferred_msg_;
};

// fetch(): an ExchangeHandler that buffers the response.
class FetchHandler final : public ExchangeHandler {
  public:
    FetchHandler(Client& cl, Client::FetchCallback cb) : cl_(cl), cb_(std::move(cb)) {}
    Exchange* x = nullptr;

    void on_response_head(const ResponseHead& h) override {
        resp_.status = h.status;
        resp_.reason = h.reason;
        resp_.headers = h.headers;
    }
    void on_response_body(std::string_view d) override {
        if (resp_.body.size() + d.size() > cl_.opts_.max_body) {
            x->cancel();
            done(make_error(fmt::format("{}: response body exceeds {} bytes",
                                        kind_name(ClientErrorKind::BodyTooLarge), cl_.opts_.max_body)));
            return;
        }
        resp_.body.append(d);
    }
    void on_response_end() override { done(std::move(resp_)); }
    void on_error(const ClientError& e) override {
        done(make_error(fmt::format("{}: {}", kind_name(e.kind), e.message)));
    }

  private:
    void done(Result<ClientResponse> r) {
        auto cb = std::move(cb_);
        cl_.retire_fetch(this);
        if (cb) cb(std::move(r));
    }
    Client& cl_;
    Client::FetchCallback cb_;
    ClientResponse resp_;
};

// ---------------------------------------------------------------------------------------------------
// ExchangeImpl

void ExchangeImpl::begin() {
    const Origin& o = req_.origin;
    if (o.scheme != "http" && o.scheme != "https")
        return fail_later(ClientErrorKind::Invalid, fmt::format("unsupported scheme \"{}\"", o.scheme));
    if (bare_host(o.host).empty()) return fail_later(ClientErrorKind::Invalid, "empty upstream host");
    if (o.tls()) {
        tls_ = req_.verify ? cl_.opts_.tls_verify : cl_.opts_.tls_noverify;
        if (!tls_)
            return fail_later(ClientErrorKind::Invalid,
                              fmt::format("no TLS client context for {} (verify={})", o.str(), req_.verify));
    }

    head_.method = req_.method;
    head_.target = req_.target;
    head_.version_minor = 1;
    // Connection-scoped fields never cross a proxy hop (RFC 9110 7.6.1), nor the names a Connection field
    // lists; framing is ours to choose (common/http/header_policy.h, Hop::Http1Request).
    ConnectionTokens listed;
    for (auto v : req_.headers.find_all("connection"))
        listed.add_field_value(v);
    bool have_host = false;
    for (const auto& f : req_.headers) {
        if (!forwards(Hop::Http1Request, f.name, f.value, &listed)) continue;
        if (iequals(f.name, "content-length")) {
            uint64_t n = 0;
            if (!parse_length(f.value, n) || (declared_len_ && *declared_len_ != n))
                return fail_later(ClientErrorKind::Invalid, "invalid Content-Length in the request");
            if (declared_len_) continue; // identical duplicates collapse to one
            declared_len_ = n;
        }
        if (iequals(f.name, "host")) {
            if (have_host) continue;
            have_host = true;
        }
        head_.headers.add(f.name, f.value);
    }
    if (!have_host) head_.headers.add("Host", host_header(o));
    if (auto probe = serialize_request_head(head_); !probe)
        return fail_later(ClientErrorKind::Invalid, "request head: " + probe.error().message);

    key_ = o.str();
    std::transform(key_.begin(), key_.end(), key_.begin(),
                   [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; });
    if (o.tls()) key_ += req_.verify ? "|verify" : "|noverify";
    cl_.count(&ClientStats::requests, &ClientMetrics::requests);
    acquire(true);
}

void ExchangeImpl::acquire(bool allow_pool) {
    conn_ready_ = false;
    if (allow_pool) {
        if (auto c = cl_.take_idle(key_)) {
            conn_ = std::move(c);
            conn_->owner = this;
            reused_ = true;
            conn_ready_ = true;
            cl_.count(&ClientStats::connections_reused, &ClientMetrics::connections_reused);
            EP_DEBUG(kLog, "{} {}{}: reusing a pooled connection", req_.method, key_,
                     obs::redact_target(req_.target));
            return;
        }
    }
    reused_ = false;
    arm(TimerKind::Connect);
    std::weak_ptr<bool> alive = alive_;
    cl_.resolver_.resolve(bare_host(req_.origin.host), [this, alive](Result<std::vector<net::SockAddr>> r) {
        if (alive.expired()) return;
        on_resolved(std::move(r));
    });
}

void ExchangeImpl::on_resolved(Result<std::vector<net::SockAddr>> r) {
    if (terminal_) return;
    if (!r) return fail(ClientErrorKind::Dns, r.error().message);
    addrs_ = std::move(*r);
    addr_idx_ = 0;
    uint16_t port = req_.origin.effective_port();
    for (auto& a : addrs_) {
        if (a.family() == AF_INET)
            reinterpret_cast<sockaddr_in*>(&a.ss)->sin_port = htons(port);
        else
            reinterpret_cast<sockaddr_in6*>(&a.ss)->sin6_port = htons(port);
    }
    connect_next();
}

// TCP connect is done here rather than by net::Connection so that "connected" means the SYN-ACK arrived:
// connect errors and the connect timeout then belong to the right address.
void ExchangeImpl::connect_next() {
    while (addr_idx_ < addrs_.size()) {
        const net::SockAddr& a = addrs_[addr_idx_++];
        int fd = ::socket(a.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            last_connect_error_ = fmt::format("socket(): {}", std::strerror(errno));
            continue;
        }
        net::tune_socket(fd);
        cl_.count(&ClientStats::connections_opened, &ClientMetrics::connections_opened);
        if (::connect(fd, reinterpret_cast<const sockaddr*>(&a.ss), a.len) != 0 && errno != EINPROGRESS) {
            last_connect_error_ = fmt::format("connect to {}: {}", a.str(), std::strerror(errno));
            ::close(fd);
            continue;
        }
        connect_fd_ = fd;
        connect_ev_ = event_new(cl_.loop_.base(), fd, EV_WRITE, &ExchangeImpl::on_connect_event, this);
        event_add(connect_ev_, nullptr);
        return;
    }
    fail(ClientErrorKind::Connect, last_connect_error_.empty()
                                       ? fmt::format("no address to connect to for {}", req_.origin.str())
                                       : last_connect_error_);
}

void ExchangeImpl::on_connect_event(int fd, short, void* arg) {
    static_cast<ExchangeImpl*>(arg)->connect_finished(fd);
}

void ExchangeImpl::stop_connect_attempt() {
    if (connect_ev_) {
        event_free(connect_ev_);
        connect_ev_ = nullptr;
    }
    if (connect_fd_ >= 0) {
        ::close(connect_fd_);
        connect_fd_ = -1;
    }
}

void ExchangeImpl::connect_finished(int fd) {
    event_free(connect_ev_);
    connect_ev_ = nullptr;
    connect_fd_ = -1;
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0) soerr = errno;
    if (soerr != 0) {
        last_connect_error_ =
            fmt::format("connect to {}: {}", addrs_[addr_idx_ - 1].str(), std::strerror(soerr));
        ::close(fd);
        return connect_next();
    }
    SSL* ssl = tls_ ? tls_->new_ssl(bare_host(req_.origin.host)) : nullptr;
    auto c = std::make_unique<Client::Conn>();
    c->c = std::make_unique<net::Connection>(cl_.loop_, fd, ssl, false);
    c->c->set_watermarks(cl_.opts_.write_high_watermark);
    c->key = key_;
    c->owner = this;
    conn_ = std::move(c);
    cl_.wire(conn_.get());
    conn_->c->start(); // may report ready or closed right away
}

void ExchangeImpl::on_conn_ready() {
    if (terminal_) return;
    disarm();
    conn_ready_ = true;
    if (paused_) {
        conn_->paused = true;
        conn_->c->pause_reading();
    }
    if (retrying_) {
        pending_.clear();
        conn_->c->write(replay_);
    } else if (!pending_.empty()) {
        conn_->c->write(pending_);
        pending_.clear();
        pending_.shrink_to_fit();
    }
    arm_response_timer_if_due();
    if (want_writable_ && !conn_->c->above_high_watermark()) {
        want_writable_ = false;
        h_->on_request_writable();
    }
}

void ExchangeImpl::on_conn_drained() {
    if (terminal_ || !want_writable_) return;
    want_writable_ = false;
    h_->on_request_writable();
}

void ExchangeImpl::arm_response_timer_if_due() {
    if (req_ended_ && conn_ready_ && !head_seen_ && timer_kind_ != TimerKind::Response)
        arm(TimerKind::Response);
}

void ExchangeImpl::commit_head(bool has_body) {
    if (committed_) return;
    committed_ = true;
    if (declared_len_) {
        chunked_ = false;
    } else if (has_body) {
        chunked_ = true;
        head_.headers.add("Transfer-Encoding", "chunked");
    } else if (body_expected(head_.method)) {
        head_.headers.add("Content-Length", "0");
    }
    auto s = serialize_request_head(head_);
    if (!s) return fail_later(ClientErrorKind::Invalid, "request head: " + s.error().message);
    send(*s);
}

void ExchangeImpl::send(std::string_view bytes) {
    if (replayable_) {
        if (replay_.size() + bytes.size() > replay_limit_) {
            replayable_ = false;
            std::string().swap(replay_);
        } else {
            replay_.append(bytes);
        }
    }
    if (conn_ && conn_ready_)
        conn_->c->write(bytes);
    else
        pending_.append(bytes);
}

bool ExchangeImpl::writable() const {
    if (conn_ && conn_ready_) return !conn_->c->above_high_watermark();
    return pending_.size() < cl_.opts_.write_high_watermark;
}

bool ExchangeImpl::write_body(std::string_view data) {
    if (terminal_ || doomed_ || req_ended_) return false;
    if (data.empty()) return writable();
    commit_head(true);
    if (doomed_) return false;
    if (declared_len_ && body_sent_ + data.size() > *declared_len_) {
        fail_later(ClientErrorKind::Protocol, "request body longer than its Content-Length");
        return false;
    }
    if (chunked_) {
        std::string frame = fmt::format("{:x}\r\n", data.size());
        frame.append(data);
        frame += "\r\n";
        send(frame);
    } else {
        send(data);
    }
    body_sent_ += data.size();
    if (writable()) return true;
    want_writable_ = true;
    return false;
}

void ExchangeImpl::end_body() {
    if (terminal_ || doomed_ || req_ended_) return;
    commit_head(false);
    if (doomed_) return;
    if (declared_len_ && body_sent_ < *declared_len_)
        return fail_later(ClientErrorKind::Protocol,
                          fmt::format("request body ended after {} of {} bytes", body_sent_, *declared_len_));
    if (chunked_) send("0\r\n\r\n");
    req_ended_ = true;
    arm_response_timer_if_due();
}

void ExchangeImpl::pause_response() {
    if (terminal_ || paused_) return;
    paused_ = true;
    if (conn_ && conn_ready_) {
        conn_->paused = true;
        conn_->c->pause_reading();
    }
    // A slow client downstream is not a slow upstream.
    if (timer_kind_ == TimerKind::BodyIdle) disarm();
}

void ExchangeImpl::resume_response() {
    if (terminal_ || !paused_) return;
    paused_ = false;
    // Resumed from inside a handler callback: the running parse loop carries on and re-enables reading.
    if (processing_) return;
    if (head_seen_) arm(TimerKind::BodyIdle);
    {
        // Even with nothing held the parser may owe an event (MessageComplete right after the last body
        // byte, where the pause came in).
        std::string held = std::move(rx_buf_);
        rx_buf_.clear();
        process(held.data(), held.size());
        if (terminal_ || paused_) return;
    }
    if (close_pending_) return handle_close(close_why_);
    if (conn_ && conn_->paused) {
        conn_->paused = false;
        conn_->c->resume_reading(); // may deliver data (or the close) right here
    }
}

void ExchangeImpl::cancel() {
    if (terminal_) return;
    terminal_ = true;
    disarm();
    defer_.cancel();
    stop_connect_attempt();
    if (conn_) cl_.drop_conn(std::move(conn_), false);
    cl_.retire(this);
}

void ExchangeImpl::on_conn_data(const char* p, size_t n) {
    if (terminal_) return;
    got_bytes_ = true;
    if (paused_) {
        rx_buf_.append(p, n);
        return;
    }
    process(p, n);
}

void ExchangeImpl::process(const char* p, size_t n) {
    bool outer = !processing_;
    processing_ = true;
    feed_parser(p, n);
    if (!outer) return;
    processing_ = false;
    if (!terminal_ && !paused_ && conn_ && conn_->paused && !close_pending_) {
        conn_->paused = false;
        conn_->c->resume_reading();
    }
}

void ExchangeImpl::feed_parser(const char* p, size_t n) {
    while (!terminal_) {
        if (paused_) {
            rx_buf_.append(p, n);
            return;
        }
        auto r = parser_.feed(p, n);
        p += r.consumed;
        n -= r.consumed;
        switch (r.status) {
        case H1Parser::Status::NeedMore:
            return;
        case H1Parser::Status::HeadersComplete: {
            const auto& resp = parser_.response();
            if (resp.status >= 100 && resp.status < 200 && resp.status != 101) {
                interim_ = true; // 100 Continue, 103 Early Hints: the final head follows
                break;
            }
            head_seen_ = true;
            arm(TimerKind::BodyIdle);
            h_->on_response_head(resp);
            break;
        }
        case H1Parser::Status::Body:
            if (timer_kind_ == TimerKind::BodyIdle) arm(TimerKind::BodyIdle);
            h_->on_response_body(r.body);
            break;
        case H1Parser::Status::MessageComplete:
            if (interim_) {
                interim_ = false;
                break;
            }
            if (n > 0) {
                // Bytes after the response: the upstream is confused; never pool this connection.
                EP_DEBUG(kLog, "{}: {} bytes after the response", key_, n);
                if (conn_) conn_->reusable = false;
            }
            return complete();
        case H1Parser::Status::Error:
            return fail(ClientErrorKind::Protocol,
                        fmt::format("bad response from {}: {} ({})", req_.origin.str(),
                                    parser_.error().detail, parser_.error().name()));
        }
    }
}

void ExchangeImpl::complete() {
    terminal_ = true;
    disarm();
    if (conn_) {
        bool reusable = req_ended_ && parser_.keep_alive() && conn_->reusable && !close_pending_;
        conn_->owner = nullptr;
        cl_.release(std::move(conn_), reusable);
    }
    cl_.retire(this);
    h_->on_response_end();
}

void ExchangeImpl::on_conn_close(std::string_view why) {
    if (terminal_) return;
    if (!conn_ready_) {
        // Died connecting or in the TLS handshake.
        std::string msg = fmt::format("{} ({})", why, req_.origin.str());
        cl_.drop_conn(std::move(conn_), false);
        if (why.find("certificate verify failed") != std::string_view::npos)
            return fail(ClientErrorKind::TlsVerify, msg);
        if (starts_with_ci(why, "tls")) return fail(ClientErrorKind::Tls, msg);
        last_connect_error_ = msg;
        return connect_next();
    }
    if (paused_ && !rx_buf_.empty()) {
        // Deliver what is held first; the close is handled once the caller resumes.
        close_pending_ = true;
        close_why_ = std::string(why);
        return;
    }
    handle_close(why);
}

void ExchangeImpl::handle_close(std::string_view why) {
    if (terminal_) return;
    if (head_seen_) {
        auto r = parser_.finish(); // a read-until-close body ends here
        if (r.status == H1Parser::Status::MessageComplete) {
            if (conn_) conn_->reusable = false;
            return complete();
        }
    }
    if (!got_bytes_ && reused_ && !retried_ && replayable_ && is_idempotent(req_.method)) return retry();
    fail(ClientErrorKind::Closed,
         fmt::format("{} closed the connection {} ({})", req_.origin.str(),
                     head_seen_ ? "inside the response body" : "before the response", why));
}

void ExchangeImpl::retry() {
    EP_DEBUG(kLog, "{} {}{}: pooled connection was stale, retrying on a new one", req_.method, key_,
             req_.target);
    retried_ = true;
    retrying_ = true;
    cl_.count(&ClientStats::retries, nullptr);
    if (conn_) cl_.drop_conn(std::move(conn_), false);
    pending_.clear();
    acquire(false);
}

void ExchangeImpl::arm(TimerKind k) {
    uint64_t ms = 0;
    switch (k) {
    case TimerKind::Connect:
        ms = cl_.opts_.connect_timeout_ms;
        break;
    case TimerKind::Response:
        ms = cl_.opts_.response_timeout_ms;
        break;
    case TimerKind::BodyIdle:
        ms = cl_.opts_.body_idle_timeout_ms;
        break;
    case TimerKind::None:
        break;
    }
    timer_kind_ = k;
    if (ms)
        timer_.arm(ms);
    else
        timer_.cancel();
}

void ExchangeImpl::on_timer() {
    std::string what;
    switch (timer_kind_) {
    case TimerKind::Connect:
        what = fmt::format("connecting to {} took longer than {} ms", req_.origin.str(),
                           cl_.opts_.connect_timeout_ms);
        break;
    case TimerKind::Response:
        what = fmt::format("no response head from {} within {} ms", req_.origin.str(),
                           cl_.opts_.response_timeout_ms);
        break;
    case TimerKind::BodyIdle:
        what = fmt::format("response body from {} stalled for {} ms", req_.origin.str(),
                           cl_.opts_.body_idle_timeout_ms);
        break;
    case TimerKind::None:
        return;
    }
    fail(ClientErrorKind::Timeout, what);
}

void ExchangeImpl::fail(ClientErrorKind kind, std::string msg) {
    if (terminal_) return;
    terminal_ = true;
    disarm();
    defer_.cancel();
    stop_connect_attempt();
    if (conn_) cl_.drop_conn(std::move(conn_), false);
    cl_.count(&ClientStats::errors, &ClientMetrics::errors);
    if (kind == ClientErrorKind::Timeout) cl_.count(&ClientStats::timeouts, &ClientMetrics::timeouts);
    EP_DEBUG(kLog, "{} {}{}: {}: {}", req_.method, key_, obs::redact_target(req_.target), kind_name(kind),
             msg);
    cl_.retire(this);
    h_->on_error(ClientError{kind, std::move(msg)});
}

void ExchangeImpl::fail_later(ClientErrorKind kind, std::string msg) {
    if (doomed_ || terminal_) return;
    doomed_ = true;
    deferred_kind_ = kind;
    deferred_msg_ = std::move(msg);
    defer_.arm(0);
}

void ExchangeImpl::on_deferred() {
    fail(deferred_kind_, std::move(deferred_msg_));
}

// ---------------------------------------------------------------------------------------------------
// Client

Client::Client(core::Loop& loop, net::Resolver& resolver, ClientOptions opts)
    : loop_(loop), resolver_(resolver), opts_(std::move(opts)) {
    reap_ev_ = event_new(loop_.base(), -1, 0, &Client::on_reap, this);
}

Client::~Client() {
    *alive_ = false;
    // Exchanges first: they may still own connections; nothing below calls a handler.
    exchanges_.clear();
    dead_exchanges_.clear();
    fetches_.clear();
    dead_fetches_.clear();
    idle_.clear();
    closing_.clear();
    dead_conns_.clear();
    event_free(reap_ev_);
}

Exchange* Client::start(ClientRequest head, ExchangeHandler* h) {
    auto x = std::make_unique<ExchangeImpl>(*this, std::move(head), h);
    ExchangeImpl* raw = x.get();
    exchanges_.emplace(raw, std::move(x));
    raw->begin();
    return raw;
}

void Client::fetch(ClientRequest req, FetchCallback cb) {
    auto f = std::make_unique<FetchHandler>(*this, std::move(cb));
    FetchHandler* raw = f.get();
    fetches_.emplace(raw, std::move(f));
    std::string body = std::move(req.body);
    req.body.clear();
    if (!body.empty() || body_expected(req.method))
        req.headers.set("Content-Length", std::to_string(body.size()));
    else
        req.headers.remove("Content-Length");
    Exchange* x = start(std::move(req), raw);
    raw->x = x;
    if (!body.empty()) x->write_body(body);
    x->end_body();
}

void Client::count(uint64_t ClientStats::*field, obs::Counter* ClientMetrics::*metric) {
    ++(stats_.*field);
    if (metric && opts_.metrics && opts_.metrics->*metric) (opts_.metrics->*metric)->inc();
}

void Client::wire(Conn* c) {
    net::Connection::Callbacks cb;
    cb.on_ready = [c] {
        if (c->owner) c->owner->on_conn_ready();
    };
    cb.on_data = [c](const char* p, size_t n) {
        if (c->owner) return c->owner->on_conn_data(p, n);
        if (c->state == Conn::State::Idle) {
            // An idle HTTP/1.1 connection has nothing to say; whatever this is, it is not ours to parse.
            EP_DEBUG(kLog, "{}: {} unexpected bytes on an idle connection", c->key, n);
            c->c->abort("unexpected data on an idle connection");
        }
    };
    cb.on_close = [this, c](std::string_view why) {
        if (c->owner) return c->owner->on_conn_close(why);
        if (c->state == Conn::State::Idle) return on_idle_close(c);
        if (c->state == Conn::State::Closing) {
            auto it = std::find_if(closing_.begin(), closing_.end(), [&](auto& p) { return p.get() == c; });
            if (it != closing_.end()) {
                c->state = Conn::State::Dead;
                dead_conns_.push_back(std::move(*it));
                closing_.erase(it);
                schedule_reap();
            }
        }
    };
    cb.on_drained = [c] {
        if (c->owner) c->owner->on_conn_drained();
    };
    c->c->set_callbacks(std::move(cb));
}

std::unique_ptr<Client::Conn> Client::take_idle(const std::string& key) {
    auto it = idle_.find(key);
    if (it == idle_.end()) return nullptr;
    auto& v = it->second;
    while (!v.empty()) {
        auto c = std::move(v.back());
        v.pop_back();
        if (c->c->ready()) {
            c->c->set_idle_timeout(0);
            c->state = Conn::State::Active;
            if (v.empty()) idle_.erase(it);
            return c;
        }
        drop_conn(std::move(c), false);
    }
    idle_.erase(it);
    return nullptr;
}

void Client::release(std::unique_ptr<Conn> c, bool reusable) {
    c->owner = nullptr;
    if (!reusable || !c->c->ready() || opts_.max_idle_per_origin == 0 || !*alive_) {
        drop_conn(std::move(c), true);
        return;
    }
    auto& v = idle_[c->key];
    if (v.size() >= opts_.max_idle_per_origin) {
        auto oldest = std::move(v.front());
        v.erase(v.begin());
        drop_conn(std::move(oldest), true);
    }
    Conn* raw = c.get();
    raw->state = Conn::State::Idle;
    raw->c->set_idle_timeout(opts_.pool_idle_timeout_ms);
    v.push_back(std::move(c));
    if (raw->paused) {
        raw->paused = false;
        raw->c->resume_reading(); // may find a close or stray bytes and drop `raw` from the pool
    }
}

void Client::drop_conn(std::unique_ptr<Conn> c, bool graceful) {
    c->owner = nullptr;
    if (graceful && c->c->ready()) {
        c->state = Conn::State::Closing;
        Conn* raw = c.get();
        closing_.push_back(std::move(c));
        raw->c->close(); // on_close moves it to dead_conns_
        return;
    }
    c->state = Conn::State::Dead;
    c->c->abort("closed by the client");
    dead_conns_.push_back(std::move(c));
    schedule_reap();
}

void Client::on_idle_close(Conn* c) {
    auto it = idle_.find(c->key);
    if (it == idle_.end()) return;
    auto& v = it->second;
    auto pos = std::find_if(v.begin(), v.end(), [&](auto& p) { return p.get() == c; });
    if (pos == v.end()) return;
    c->state = Conn::State::Dead;
    dead_conns_.push_back(std::move(*pos));
    v.erase(pos);
    if (v.empty()) idle_.erase(it);
    ++stats_.idle_closed;
    schedule_reap();
}

size_t Client::idle_connections() const {
    size_t n = 0;
    for (auto& [k, v] : idle_)
        n += v.size();
    return n;
}

void Client::close_idle() {
    auto all = std::move(idle_);
    idle_.clear();
    for (auto& [k, v] : all)
        for (auto& c : v)
            drop_conn(std::move(c), true);
}

void Client::set_tls(std::shared_ptr<net::TlsClientContext> verify,
                     std::shared_ptr<net::TlsClientContext> noverify) {
    opts_.tls_verify = std::move(verify);
    opts_.tls_noverify = std::move(noverify);
    close_idle();
}

void Client::retire(ExchangeImpl* x) {
    auto it = exchanges_.find(x);
    if (it == exchanges_.end()) return;
    dead_exchanges_.push_back(std::move(it->second));
    exchanges_.erase(it);
    schedule_reap();
}

void Client::retire_fetch(FetchHandler* f) {
    auto it = fetches_.find(f);
    if (it == fetches_.end()) return;
    dead_fetches_.push_back(std::move(it->second));
    fetches_.erase(it);
    schedule_reap();
}

void Client::schedule_reap() {
    event_active(reap_ev_, EV_WRITE, 0);
}

void Client::on_reap(int, short, void* arg) {
    auto* self = static_cast<Client*>(arg);
    auto x = std::move(self->dead_exchanges_);
    auto c = std::move(self->dead_conns_);
    auto f = std::move(self->dead_fetches_);
    self->dead_exchanges_.clear();
    self->dead_conns_.clear();
    self->dead_fetches_.clear();
}

} // namespace edgepair::http
