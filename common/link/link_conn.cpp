#include "common/link/link_conn.h"
#include "common/obs/access_log.h"
#include "common/obs/json.h"

#include <algorithm>
#include <array>
#include <cstring>

#include <event2/event.h>
#include <fmt/format.h>
#include <nghttp2/nghttp2.h>
#include <openssl/x509_vfy.h>

#include "common/http/h1_parser.h"
#include "common/http/h2_glue.h"
#include "common/http/header_policy.h"
#include "common/link/peer_cert.h"
#include "common/net/tls_context.h"
#include "common/obs/log.h"

namespace edgepair::link {

namespace h2 = http::h2;

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out)
        if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
    return out;
}

// Kept out of the HPACK dynamic table as literals (RFC 7541 6.2.3): secrets, so that they are never
// indexed by anyone (7.1.3), and the fields whose value is new on every request (the request id, the
// client's address and port): indexing those only evicts the entries that do repeat (method, host,
// x-edge-*), and callgrind showed the encoder's work per request up by half with the request id indexed.
constexpr std::array<std::string_view, 4> kUnindexed = {"x-link-password", "authorization",
                                                        obs::kRequestIdHeader, "x-client-addr"};

int link_response(nghttp2_session* s, int32_t id, const h2::Fields& h, h2::Body body) {
    return h2::submit_response(s, id, h, body, kUnindexed);
}

int link_response(nghttp2_session* s, int32_t id, const h2::FieldViews& h, h2::Body body) {
    return h2::submit_response_views(s, id, h, body, kUnindexed);
}

int32_t link_request(nghttp2_session* s, const h2::Fields& h, h2::Body body, void* stream) {
    return h2::submit_request(s, h, body, stream, kUnindexed);
}

int32_t link_request(nghttp2_session* s, const h2::FieldViews& h, h2::Body body, void* stream) {
    return h2::submit_request_views(s, h, body, stream, kUnindexed);
}

// A field name as HTTP/2 sends it (lower case): the name itself when it already is (edge-e's gate lowercases
// what it forwards), else a lowercased copy kept in `owned`, which the caller reserved so that no view into
// it moves.
std::string_view link_name(const std::string& k, std::vector<std::string>& owned) {
    if (!std::any_of(k.begin(), k.end(), [](char c) { return c >= 'A' && c <= 'Z'; })) return k;
    return owned.emplace_back(lower(k));
}

} // namespace

const char* to_string(Role r) {
    return r == Role::Opener ? "opener" : "acceptor";
}

const char* to_string(LinkState s) {
    switch (s) {
    case LinkState::Tls:
        return "tls";
    case LinkState::Auth:
        return "auth";
    case LinkState::Up:
        return "up";
    case LinkState::Closing:
        return "closing";
    case LinkState::Closed:
        return "closed";
    }
    return "?";
}

const char* to_string(StreamKind k) {
    switch (k) {
    case StreamKind::Http:
        return "http";
    case StreamKind::Sip:
        return "sip";
    case StreamKind::Xmpp:
        return "xmpp";
    }
    return "?";
}

std::optional<StreamKind> parse_stream_kind(std::string_view s) {
    if (s == "http") return StreamKind::Http;
    if (s == "sip") return StreamKind::Sip;
    if (s == "xmpp") return StreamKind::Xmpp;
    return std::nullopt;
}

std::string_view header_value(const Headers& h, std::string_view name) {
    for (auto& [k, v] : h)
        if (k == name) return v;
    return {};
}

// ---------------------------------------------------------------------------------------------------------
// nghttp2 callbacks. They only record and dispatch; nothing here sends (mem_send must not run inside
// mem_recv), and nothing here can destroy the LinkConn (teardown is always deferred to the send event).

struct LinkConn::H2 {
    static LinkConn* self(void* ud) { return static_cast<LinkConn*>(ud); }

    static int on_begin_headers(nghttp2_session* s, const nghttp2_frame* f, void* ud) {
        auto* lc = self(ud);
        if (f->hd.type != NGHTTP2_HEADERS) return 0;
        if (f->headers.cat == NGHTTP2_HCAT_REQUEST && lc->opts_.role == Role::Acceptor) {
            lc->streams_.attach(s, f->hd.stream_id,
                                std::unique_ptr<LinkStream>(new LinkStream(*lc, f->hd.stream_id)));
            return 0;
        }
        if (auto* st = lc->find(f->hd.stream_id)) st->recv_headers_.clear();
        return 0;
    }

    static int on_header(nghttp2_session*, const nghttp2_frame* f, const uint8_t* name, size_t namelen,
                         const uint8_t* value, size_t valuelen, uint8_t, void* ud) {
        auto* st = self(ud)->find(f->hd.stream_id);
        if (st && f->hd.type == NGHTTP2_HEADERS)
            st->recv_headers_.emplace_back(h2::view(name, namelen), h2::view(value, valuelen));
        return 0;
    }

    static int on_frame_recv(nghttp2_session*, const nghttp2_frame* f, void* ud) {
        auto* lc = self(ud);
        switch (f->hd.type) {
        case NGHTTP2_HEADERS: {
            auto* st = lc->find(f->hd.stream_id);
            if (!st) return 0;
            if (lc->opts_.role == Role::Acceptor && f->headers.cat == NGHTTP2_HCAT_REQUEST)
                lc->on_acceptor_request(*st);
            else if (lc->opts_.role == Role::Opener && f->headers.cat != NGHTTP2_HCAT_REQUEST)
                lc->on_opener_response(*st);
            break;
        }
        case NGHTTP2_DATA:
            break;
        case NGHTTP2_GOAWAY:
            lc->on_goaway(f->goaway.error_code, h2::goaway_debug(f->goaway));
            return 0;
        default:
            return 0;
        }
        if (f->hd.flags & NGHTTP2_FLAG_END_STREAM) {
            auto* st = lc->find(f->hd.stream_id);
            if (!st || !st->usable()) return 0;
            if (st->control_)
                lc->fail("peer ended the control stream", CloseMode::Goaway, kProtocolError,
                         "control stream ended");
            else if (st->handler_)
                st->handler_->on_end(*st);
        }
        return 0;
    }

    static int on_data_chunk(nghttp2_session* s, uint8_t, int32_t id, const uint8_t* data, size_t len,
                             void* ud) {
        auto* lc = self(ud);
        // The connection window is reopened at once: only the stream window holds back a slow reader, so
        // one stalled client never starves its neighbours of the shared connection window.
        nghttp2_session_consume_connection(s, len);
        auto* st = lc->find(id);
        if (!st) return 0;
        if (st->control_) {
            nghttp2_session_consume_stream(s, id, len);
            lc->on_control_data(reinterpret_cast<const char*>(data), len);
            return 0;
        }
        if (!st->usable() || !st->handler_) {
            nghttp2_session_consume_stream(s, id, len);
            return 0;
        }
        st->bytes_in_ += len;
        st->handler_->on_data(*st, reinterpret_cast<const char*>(data), len);
        return 0;
    }

    static int on_stream_close(nghttp2_session*, int32_t id, uint32_t code, void* ud) {
        auto* lc = self(ud);
        auto st = lc->streams_.take(id);
        if (!st) return 0;
        st->closed_ = true;
        if (st->control_) {
            lc->control_ = nullptr;
            if (lc->state_ != LinkState::Closed)
                lc->fail(fmt::format("control stream closed ({})", h2::error_name(code)), CloseMode::Goaway,
                         kProtocolError, "control stream closed");
            return 0;
        }
        if (st->counted_) --lc->streams_open_;
        if (st->handler_ && !st->local_reset_) {
            // A reset comes from the peer edge: the link carried it; the kind says what the code means.
            core::Failure why;
            if (auto kind = h2::reset_kind(code); kind != core::FailureKind::None)
                why = core::Failure(kind, core::Side::Edge,
                                    fmt::format("stream reset: {}", h2::error_name(code)));
            st->handler_->on_close(*st, why);
        }
        lc->maybe_finish_drain();
        return 0;
    }

    static ssize_t read_data(nghttp2_session*, int32_t, uint8_t* buf, size_t length, uint32_t* flags,
                             nghttp2_data_source* src, void* ud) {
        auto* lc = self(ud);
        auto* st = static_cast<LinkStream*>(src->ptr);
        ssize_t n = h2::read_body(st->out_, st->end_requested_, st->deferred_, buf, length, flags);
        if (n <= 0) return n;
        st->bytes_out_ += uint64_t(n);
        if (st->above_ && st->pending_output() <= lc->opts_.stream_high_watermark / 2) {
            st->above_ = false;
            lc->writable_.push_back(st->id_);
        }
        return n;
    }

    static int on_error(nghttp2_session*, int, const char* msg, size_t len, void* ud) {
        EP_DEBUG("link", "link {}: nghttp2: {}", self(ud)->conn_->peer().str(), std::string_view(msg, len));
        return 0;
    }
};

// ---------------------------------------------------------------------------------------------------------

LinkConn::LinkConn(core::Loop& loop, std::unique_ptr<net::Connection> conn, LinkOptions opts,
                   obs::Registry& metrics)
    : loop_(loop), conn_(std::move(conn)), opts_(std::move(opts)), reg_(metrics),
      control_in_(opts_.max_control_message) {
    m_streams_ =
        &reg_.counter("edgepair_link_streams_total", "Tunnelled streams opened or accepted on links");
    m_bytes_in_ = &reg_.counter("edgepair_link_received_bytes_total", "Bytes received on links (after TLS)");
    m_bytes_out_ =
        &reg_.counter("edgepair_link_sent_bytes_total", "Bytes queued for sending on links (before TLS)");
    m_up_ = &reg_.counter("edgepair_link_up_total", "Links that completed authentication");
    m_full_ = &reg_.counter("edgepair_link_streams_refused_total",
                            "Streams not opened because the link held as many as its peer allows",
                            {{"reason", "peer_limit"}});
    m_refused_ = &reg_.counter("edgepair_link_refused_total", "Links the peer refused during authentication");
    send_ev_ = event_new(loop_.base(), -1, 0, &LinkConn::on_send_event, this);
    since_ms_ = loop_.now_ms();
}

LinkConn::~LinkConn() {
    *alive_ = false;
    auto streams = streams_.take_all();
    core::Failure closed(core::FailureKind::Closed, core::Side::Link, "this edge let go of the link");
    for (auto& [id, st] : streams) {
        st->closed_ = true;
        if (!st->control_ && st->handler_ && !st->local_reset_) st->handler_->on_close(*st, closed);
    }
    streams.clear();
    h2::close_session(session_);
    if (send_ev_) event_free(send_ev_);
    conn_.reset();
}

void LinkConn::start() {
    conn_->set_watermarks(opts_.output_cap);
    net::Connection::Callbacks cb;
    cb.on_ready = [this] { on_ready(); };
    cb.on_data = [this](const char* d, size_t n) { on_conn_data(d, n); };
    cb.on_close = [this](std::string_view why) { on_conn_closed(why); };
    cb.on_drained = [this] { schedule_send(); };
    conn_->set_callbacks(std::move(cb));
    auth_timer_ = std::make_unique<core::Timer>(loop_, [this] {
        if (state_ == LinkState::Up || state_ == LinkState::Closing || state_ == LinkState::Closed) return;
        bool tls = state_ == LinkState::Tls;
        fail_auth(tls ? "tls_handshake" : "protocol",
                  fmt::format("{} not complete within {} ms", tls ? "TLS handshake" : "link authentication",
                              opts_.auth_timeout_ms),
                  "auth failed: timeout");
    });
    auth_timer_->arm(opts_.auth_timeout_ms);
    ping_timer_ = std::make_unique<core::Timer>(loop_, [this] { on_ping_tick(); });
    dead_timer_ = std::make_unique<core::Timer>(loop_, [this] {
        fail(
            fmt::format("keep-alive timeout: nothing received within {} ms of a PING", opts_.ping_timeout_ms),
            CloseMode::Abort);
    });
    linger_timer_ = std::make_unique<core::Timer>(loop_, [this] {
        abort_pending_ = true;
        schedule_send();
    });
    if (conn_->ready())
        on_ready();
    else
        conn_->start();
}

void LinkConn::set_state(LinkState s) {
    state_ = s;
    since_ms_ = loop_.now_ms();
}

void LinkConn::on_ready() {
    if (state_ != LinkState::Tls) return;
    set_state(LinkState::Auth);
    if (!create_session()) return;
    if (SSL* ssl = conn_->ssl()) {
        tls_version_ = SSL_get_version(ssl);
        alpn_ = net::alpn_of(ssl);
        if (opts_.require_alpn && alpn_ != kAlpn) {
            fail_auth("protocol", fmt::format("ALPN {} not negotiated (got \"{}\")", kAlpn, alpn_),
                      fmt::format("auth failed: ALPN {} required", kAlpn));
            return;
        }
        if (opts_.role == Role::Opener && opts_.require_client_cert) {
            std::string label;
            auto why = check_link_peer_cert(ssl, opts_.required_san, &label);
            if (!why.empty()) {
                fail_auth(label, why, "auth failed: " + why);
                return;
            }
        }
    }
    if (opts_.role == Role::Opener) submit_control_request();
    ping_timer_->arm(opts_.ping_interval_ms);
    schedule_send();
}

bool LinkConn::create_session() {
    h2::SessionSetup setup;
    setup.server = opts_.role == Role::Acceptor;
    setup.callbacks = h2::callbacks_of<H2>();
    // nghttp2's rapid-reset defence (CVE-2023-44487; burst 1000, 33/s by default) is for untrusted clients.
    // The link's peer is our own authenticated edge-e, which resets a link stream for every client request it
    // gives up on: thousands at once when many clients are refused or leave. With the default, nghttp2 ends
    // the whole link with GOAWAY(INTERNAL_ERROR) and every client on it loses its request. Client floods are
    // bounded on edge-e's client side instead (docs/SECURITY.md).
    setup.reset_limit = h2::kNoResetLimit;
    setup.settings = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, opts_.max_concurrent_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, opts_.stream_window},
    };
    if (opts_.role == Role::Opener) setup.settings.push_back({NGHTTP2_SETTINGS_ENABLE_PUSH, 0});
    setup.connection_window = int32_t(opts_.connection_window);
    if (int rv = h2::open_session(&session_, setup, this); rv != 0) {
        fail(fmt::format("nghttp2 session: {}", nghttp2_strerror(rv)), CloseMode::Abort);
        return false;
    }
    return true;
}

void LinkConn::submit_control_request() {
    std::vector<std::pair<std::string, std::string>> h = {
        {":method", "POST"},
        {":scheme", "https"},
        {":authority", opts_.node_name.empty() ? std::string("edge-e") : opts_.node_name},
        {":path", std::string(kControlPath)},
        {"x-link-version", std::string(kLinkVersion)},
    };
    auto st = std::unique_ptr<LinkStream>(new LinkStream(*this, 0));
    st->control_ = true;
    st->provider_ = true;
    int32_t id = link_request(session_, h, {&H2::read_data, st.get()}, st.get());
    if (id < 0) {
        fail(fmt::format("control stream: {}", nghttp2_strerror(id)), CloseMode::Abort);
        return;
    }
    st->request_headers_ = std::move(h); // nghttp2 copied what it sends
    st->id_ = id;
    control_ = streams_.add(id, std::move(st));
}

LinkStream* LinkConn::find(int32_t id) {
    return streams_.find(id);
}

void LinkConn::on_conn_data(const char* data, size_t len) {
    m_bytes_in_->inc(len);
    dead_timer_->cancel(); // any frame proves the peer alive, not only the PING ACK
    if (!session_ || state_ == LinkState::Closed || abort_pending_) return;
    ssize_t rv = h2::receive(session_, data, len);
    if (rv < 0) {
        // nghttp2 has usually queued a GOAWAY of its own for this; let it flush.
        if (state_ == LinkState::Auth && !auth_failure_counted_) {
            auth_failure_counted_ = true;
            reg_.counter("edgepair_link_auth_failures_total", "Links refused or failed before authentication",
                         {{"reason", "protocol"}})
                .inc();
        }
        fail(fmt::format("HTTP/2 protocol error: {}", nghttp2_strerror(int(rv))), CloseMode::Goaway);
        return;
    }
    schedule_send();
}

void LinkConn::schedule_send() {
    if (state_ != LinkState::Closed && send_ev_) event_active(send_ev_, EV_WRITE, 0);
}

void LinkConn::on_send_event(int, short, void* arg) {
    static_cast<LinkConn*>(arg)->do_send();
}

void LinkConn::do_send() {
    if (state_ == LinkState::Closed) return;
    if (abort_pending_ || !session_) {
        // Synchronously ends in on_conn_closed, which may destroy us: touch nothing afterwards.
        conn_->abort(close_reason_.empty() ? std::string_view("closed") : std::string_view(close_reason_));
        return;
    }
    auto sent = h2::send_frames(session_, *conn_, alive_);
    if (sent.gone) return;
    if (sent.bytes) m_bytes_out_->inc(sent.bytes);
    if (sent.error) {
        fail(fmt::format("HTTP/2 send: {}", nghttp2_strerror(sent.error)), CloseMode::Abort);
        return;
    }
    if (!writable_.empty()) {
        std::weak_ptr<bool> alive = alive_;
        auto ids = std::move(writable_);
        writable_.clear();
        for (int32_t id : ids) {
            auto* st = find(id);
            if (st && st->usable() && st->handler_) st->handler_->on_writable(*st);
            if (alive.expired()) return;
        }
    }
    if (close_after_send_ && !nghttp2_session_want_write(session_)) {
        if (!linger_timer_->armed()) linger_timer_->arm(opts_.close_linger_ms);
        conn_->close();
    }
}

void LinkConn::fail(std::string reason, CloseMode mode, uint32_t code, std::string debug) {
    if (state_ == LinkState::Closed || close_after_send_ || abort_pending_) return;
    if (last_error_.empty()) last_error_ = reason;
    close_reason_ = std::move(reason);
    if (mode == CloseMode::Abort || code != kNoError)
        EP_WARN("link", "link {} ({}) failing: {}", conn_->peer().str(), opts_.peer_name, close_reason_);
    else
        EP_INFO("link", "link {} ({}) closing: {}", conn_->peer().str(), opts_.peer_name, close_reason_);
    if (state_ != LinkState::Closing) set_state(LinkState::Closing);
    if (mode == CloseMode::Abort || !session_) {
        abort_pending_ = true;
    } else {
        if (code != kNoError || !debug.empty()) h2::submit_goaway(session_, code, debug);
        close_after_send_ = true;
    }
    schedule_send();
}

void LinkConn::fail_auth(const std::string& label, const std::string& why, const std::string& to_peer) {
    if (!auth_failure_counted_) {
        auth_failure_counted_ = true;
        reg_.counter("edgepair_link_auth_failures_total", "Links refused or failed before authentication",
                     {{"reason", label}})
            .inc();
    }
    last_error_ = why;
    EP_WARN("link", "link {} ({}) refused: {} [{}]", conn_->peer().str(), opts_.peer_name, why, label);
    fail(why, CloseMode::Goaway, kInadequateSecurity, to_peer);
}

void LinkConn::become_up() {
    if (state_ != LinkState::Auth) return;
    set_state(LinkState::Up);
    auth_timer_->cancel();
    m_up_->inc();
    EP_INFO("link", "link up: {} peer {} node \"{}\" ({})", to_string(opts_.role), conn_->peer().str(),
            peer_node_, tls_version_.empty() ? "plain" : tls_version_);
    if (cb_.on_up) cb_.on_up();
}

void LinkConn::on_acceptor_request(LinkStream& st) {
    Headers h = std::move(st.recv_headers_);
    st.recv_headers_.clear();
    auto path = header_value(h, ":path");
    if (!control_ && state_ == LinkState::Auth) {
        if (path != kControlPath || header_value(h, ":method") != "POST") {
            fail_auth("protocol", "the first stream is not the control stream",
                      "protocol: expected the control stream");
            return;
        }
        if (auto v = header_value(h, "x-link-version"); v != kLinkVersion) {
            fail_auth("protocol",
                      fmt::format("peer speaks link version \"{}\", we speak {}", v, kLinkVersion),
                      fmt::format("protocol: link version {} required", kLinkVersion));
            return;
        }
        peer_node_ = std::string(header_value(h, ":authority"));
        st.control_ = true;
        st.request_headers_ = std::move(h);
        control_ = &st;
        std::vector<std::pair<std::string, std::string>> rh = {
            {":status", "200"},
            {"x-link-user", opts_.username},
            {"x-link-password", opts_.password},
            {"x-link-node", opts_.node_name},
            {"x-link-version", std::string(kLinkVersion)},
        };
        for (const auto& [name, value] : opts_.announce)
            rh.emplace_back(name, value);
        st.provider_ = true;
        st.headers_sent_ = true;
        link_response(session_, st.id_, rh, {&H2::read_data, &st});
        return;
    }
    if (state_ == LinkState::Auth && control_) {
        // edge-e opens tunnelled streams only after accepting our credentials, and its hello may queue
        // behind these HEADERS (nghttp2 sends new-stream HEADERS before DATA), so a stream proves it.
        become_up();
    }
    if (state_ != LinkState::Up || !control_) {
        nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, st.id_, NGHTTP2_REFUSED_STREAM);
        st.local_reset_ = true;
        return;
    }
    auto kind = parse_stream_kind(header_value(h, "x-tunnel"));
    if (!kind) {
        EP_WARN("link", "link {}: stream {} with unknown x-tunnel \"{}\" refused", conn_->peer().str(),
                st.id_, header_value(h, "x-tunnel"));
        nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, st.id_, NGHTTP2_PROTOCOL_ERROR);
        st.local_reset_ = true;
        return;
    }
    st.kind_ = *kind;
    st.request_headers_ = std::move(h);
    st.counted_ = true;
    ++streams_open_;
    ++streams_total_;
    m_streams_->inc();
    if (cb_.on_stream) cb_.on_stream(&st, st.request_headers_);
    if (!st.handler_ && st.usable()) st.reset(kRefusedStream);
}

void LinkConn::on_opener_response(LinkStream& st) {
    Headers h = std::move(st.recv_headers_);
    st.recv_headers_.clear();
    if (!st.control_) {
        if (st.usable() && st.handler_) st.handler_->on_headers(st, h);
        return;
    }
    if (state_ != LinkState::Auth) return; // trailers or a repeat: nothing to decide any more
    auto status = header_value(h, ":status");
    if (status != "200") {
        fail_auth("protocol", fmt::format("control stream answered {}", status),
                  "protocol: control stream refused");
        return;
    }
    peer_node_ = std::string(header_value(h, "x-link-node"));
    if (auto v = header_value(h, "x-link-version"); v != kLinkVersion) {
        fail_auth("protocol", fmt::format("peer speaks link version \"{}\", we speak {}", v, kLinkVersion),
                  fmt::format("protocol: link version {} required", kLinkVersion));
        return;
    }
    auto user = header_value(h, "x-link-user");
    auto pass = header_value(h, "x-link-password");
    if (user.empty() || !opts_.check_credentials || !opts_.check_credentials(user, pass)) {
        // The peer learns only that the credentials failed, not whether the user exists.
        fail_auth("bad_credentials",
                  fmt::format("bad credentials for user \"{}\" from node \"{}\"", user, peer_node_),
                  "auth failed: bad credentials");
        return;
    }
    for (const auto& hv : h)
        if (hv.first != "x-link-password") peer_headers_.push_back(hv);
    std::string hello = R"({"type":"link-up","node":")";
    obs::json_escape_into(hello, opts_.node_name);
    hello += R"(","version":")";
    hello += kLinkVersion;
    hello += "\"}";
    control_->out_.append(frame_control(hello));
    stream_output_added(*control_);
    become_up();
}

void LinkConn::on_control_data(const char* data, size_t len) {
    std::weak_ptr<bool> alive = alive_;
    bool ok = control_in_.feed(data, len, [&](std::string_view msg) {
        if (alive.expired() || state_ == LinkState::Closed) return;
        if (opts_.role == Role::Acceptor && !hello_seen_) {
            // edge-e's first message is the link's own verdict, not application data.
            hello_seen_ = true;
            become_up();
            return;
        }
        if (state_ == LinkState::Up || state_ == LinkState::Closing) {
            if (cb_.on_control_message) cb_.on_control_message(msg);
        }
    });
    if (!ok && !alive.expired())
        fail(control_in_.error(), CloseMode::Goaway, kProtocolError, control_in_.error());
}

void LinkConn::on_goaway(uint32_t code, std::string_view debug) {
    goaway_received_ = true;
    if (code == NGHTTP2_NO_ERROR) {
        EP_INFO("link", "link {}: peer is draining ({})", conn_->peer().str(), debug);
        if (state_ == LinkState::Up || state_ == LinkState::Auth) set_state(LinkState::Closing);
        maybe_finish_drain();
        return;
    }
    std::string msg = debug.empty() ? std::string(h2::error_name(code)) : std::string(debug);
    if (state_ == LinkState::Tls || state_ == LinkState::Auth) {
        m_refused_->inc();
        last_error_ = "refused by peer: " + msg;
        EP_ERROR("link", "link to {} ({}) refused by peer: {}", conn_->peer().str(), opts_.peer_name, msg);
    } else {
        last_error_ = "closed by peer: " + msg;
    }
    fail(last_error_, CloseMode::Goaway);
}

void LinkConn::maybe_finish_drain() {
    if (state_ == LinkState::Closing && goaway_received_ && streams_open_ == 0 && !close_after_send_ &&
        !abort_pending_) {
        if (close_reason_.empty()) close_reason_ = "drained";
        close_after_send_ = true;
        schedule_send();
    }
}

void LinkConn::on_ping_tick() {
    if (!session_ || state_ == LinkState::Closed) return;
    if (!dead_timer_->armed()) {
        nghttp2_submit_ping(session_, NGHTTP2_FLAG_NONE, nullptr);
        dead_timer_->arm(opts_.ping_timeout_ms);
        schedule_send();
    }
    ping_timer_->arm(opts_.ping_interval_ms);
}

void LinkConn::on_conn_closed(std::string_view why) {
    if (state_ == LinkState::Closed) return;
    LinkState prev = state_;
    state_ = LinkState::Closed;
    since_ms_ = loop_.now_ms();
    std::string reason = close_reason_.empty() ? std::string(why) : close_reason_;
    if ((prev == LinkState::Tls || prev == LinkState::Auth) && !auth_failure_counted_) {
        // A TLS 1.3 client learns that its certificate was rejected only here, from the alert on its first
        // read after the handshake.
        auth_failure_counted_ = true;
        bool tls = prev == LinkState::Tls || reason.rfind("tls", 0) == 0;
        std::string label = tls ? "tls_handshake" : "protocol";
        // OpenSSL's own checks reject some of what check_link_peer_cert would, before we see the
        // certificate: keep the metric's reasons the same whichever layer noticed.
        if (prev == LinkState::Tls && opts_.role == Role::Opener && conn_->ssl()) {
            if (SSL_get_verify_result(conn_->ssl()) == X509_V_ERR_INVALID_PURPOSE)
                label = "no_client_auth_eku";
            else if (reason.find("peer did not return a certificate") != std::string::npos)
                label = "no_client_cert";
        }
        reg_.counter("edgepair_link_auth_failures_total", "Links refused or failed before authentication",
                     {{"reason", label}})
            .inc();
        EP_WARN("link", "link {} ({}): {}", conn_->peer().str(), opts_.peer_name, reason);
    }
    if (last_error_.empty() && prev != LinkState::Closing) last_error_ = reason;
    if (auth_timer_) auth_timer_->cancel();
    if (ping_timer_) ping_timer_->cancel();
    if (dead_timer_) dead_timer_->cancel();
    if (linger_timer_) linger_timer_->cancel();
    event_del(send_ev_);
    EP_INFO("link", "link {} ({}) closed after {}: {}", conn_->peer().str(), opts_.peer_name, to_string(prev),
            reason);
    auto streams = streams_.take_all();
    control_ = nullptr;
    streams_open_ = 0;
    core::Failure lost(core::FailureKind::Lost, core::Side::Link, reason);
    for (auto& [id, st] : streams)
        st->closed_ = true;
    for (auto& [id, st] : streams)
        if (!st->control_ && st->handler_ && !st->local_reset_) st->handler_->on_close(*st, lost);
    streams.clear();
    h2::close_session(session_);
    if (cb_.on_close) {
        auto cb = std::move(cb_.on_close);
        cb(reason); // may delete this
    }
}

h2::FieldViews LinkConn::build_request(StreamKind kind, const Headers& headers,
                                       std::vector<std::string>& owned) const {
    // Views into `headers` (which outlives the submit): edge-e's gate already lowercased its field names,
    // so a name is copied only when it is not. `owned` never grows past its reserve, so the views into it
    // (short strings live inside the object) stay put.
    owned.reserve(headers.size() + 1);
    h2::FieldViews out;
    out.reserve(headers.size() + 6);
    if (kind == StreamKind::Http) {
        std::string_view authority = header_value(headers, ":authority");
        std::string_view host;
        for (auto& [k, v] : headers)
            if (http::iequals(k, "host")) host = v;
        out.emplace_back(":method", header_value(headers, ":method"));
        auto scheme = header_value(headers, ":scheme");
        out.emplace_back(":scheme", scheme.empty() ? std::string_view("https") : scheme);
        out.emplace_back(":authority", authority.empty() ? host : authority);
        out.emplace_back(":path", header_value(headers, ":path"));
    } else {
        out.emplace_back(":method", "POST");
        out.emplace_back(":scheme", "https");
        out.emplace_back(":authority", opts_.node_name.empty() ? std::string_view("edge-e")
                                                               : std::string_view(opts_.node_name));
        out.emplace_back(":path", kTunnelPath);
    }
    out.emplace_back("x-tunnel", to_string(kind));
    for (auto& [k, v] : headers) {
        if (!k.empty() && k[0] == ':') continue;
        std::string_view n = link_name(k, owned);
        // RFC 9113 8.2.2: connection-specific fields are malformed in HTTP/2 and the peer would reset the
        // stream; edge-e's HTTP/1 sessions pass client headers through, so the one policy
        // (common/http/header_policy.h) is applied here once for all callers. x-tunnel is the link's own.
        if (!http::forwards(http::Hop::LinkFrame, n, v) || n == "x-tunnel") continue;
        out.emplace_back(n, v);
    }
    return out;
}

LinkStream* LinkConn::open_stream(StreamKind kind, const Headers& headers, StreamHandler* handler,
                                  bool end_stream) {
    if (opts_.role != Role::Opener || state_ != LinkState::Up || goaway_received_ || !session_)
        return nullptr;
    // Beyond the peer's SETTINGS_MAX_CONCURRENT_STREAMS nghttp2 would queue the request until some other
    // stream closes, and say nothing: a client's flow would wait there unseen until the client gave up (with
    // thousands of held SIP flows, for ever). Refuse instead, so that the session answers at once and a
    // metric counts it; edge-c's link.max_streams sets the limit, and our control stream is one of them.
    if (uint32_t peer_max =
            nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
        streams_open_ + (control_ ? 1 : 0) >= peer_max) {
        m_full_->inc();
        if (loop_.now_ms() - full_warned_ms_ >= 10000) {
            full_warned_ms_ = loop_.now_ms();
            EP_WARN("link",
                    "link {} ({}): {} streams open, the peer's limit (edge-c link.max_streams): new "
                    "client flows and requests on this link are refused",
                    conn_->peer().str(), opts_.peer_name, streams_open_);
        }
        return nullptr;
    }
    std::vector<std::string> owned;
    auto h = build_request(kind, headers, owned);
    auto st = std::unique_ptr<LinkStream>(new LinkStream(*this, 0));
    st->kind_ = kind;
    st->handler_ = handler;
    if (end_stream)
        st->end_requested_ = true;
    else
        st->provider_ = true;
    h2::Body body;
    if (!end_stream) body = {&H2::read_data, st.get()};
    int32_t id = link_request(session_, h, body, st.get()); // nghttp2 copies the block
    if (id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE) {
        // One HTTP/2 connection has 2^30 stream IDs for its opener: at 10,000 new client flows and requests
        // a second, about 30 hours of a link. Without this the link would stay up refusing every new stream
        // for good. End it instead: its flows drop (their clients reconnect) and edge-c dials a new link at
        // once (link.reconnect_min). A drain onto a second link before the first ends would spare the
        // flows; it is not built (edge-c keeps one link per dialer).
        if (!ids_used_up_) {
            ids_used_up_ = true;
            EP_ERROR("link", "link {} ({}): stream IDs used up after {} streams: closing it for a new one",
                     conn_->peer().str(), opts_.peer_name, streams_total_);
            std::weak_ptr<bool> alive = alive_;
            loop_.post([this, alive] { // not inside the session that asked for a stream
                if (!alive.expired())
                    fail("stream IDs used up: a new link is needed", CloseMode::Goaway, kNoError,
                         "stream IDs used up");
            });
        }
        return nullptr;
    }
    if (id < 0) {
        EP_WARN("link", "link {}: cannot open a stream: {}", conn_->peer().str(), nghttp2_strerror(id));
        return nullptr;
    }
    st->id_ = id;
    st->counted_ = true;
    auto* p = streams_.add(id, std::move(st));
    ++streams_open_;
    ++streams_total_;
    m_streams_->inc();
    schedule_send();
    return p;
}

bool LinkConn::jump_stream_ids(int32_t next) {
    return session_ && nghttp2_session_set_next_stream_id(session_, next) == 0;
}

bool LinkConn::send_control(std::string_view json) {
    if (state_ != LinkState::Up || !control_ || !control_->usable()) return false;
    control_->out_.append(frame_control(json));
    stream_output_added(*control_);
    return true;
}

void LinkConn::stream_output_added(LinkStream& s) {
    if (s.provider_) h2::resume(session_, s.id_, s.deferred_);
    schedule_send();
}

void LinkConn::shutdown() {
    if (state_ == LinkState::Closed || state_ == LinkState::Closing) return;
    if (!session_ || state_ != LinkState::Up) {
        fail("shutting down", CloseMode::Goaway);
        return;
    }
    set_state(LinkState::Closing);
    close_reason_ = "shut down";
    h2::submit_goaway(session_, NGHTTP2_NO_ERROR, "shutting down");
    // Our own drain finishes like a peer's: when the last tunnelled stream closes.
    goaway_received_ = true;
    maybe_finish_drain();
    schedule_send();
}

void LinkConn::close(std::string_view reason) {
    std::string r(reason);
    fail(r, CloseMode::Goaway, kNoError, r);
}

LinkStatus LinkConn::status() const {
    LinkStatus s;
    s.role = opts_.role;
    s.peer_address = conn_->peer().str();
    s.peer_name = opts_.peer_name;
    s.peer_node = peer_node_;
    s.state = state_;
    s.since_ms = since_ms_;
    s.streams_open = streams_open_;
    s.streams_total = streams_total_;
    s.bytes_in = conn_->bytes_in();
    s.bytes_out = conn_->bytes_out();
    s.tls_version = tls_version_;
    s.alpn = alpn_;
    s.last_error = last_error_;
    return s;
}

std::string LinkConn::status_json() const {
    auto s = status();
    auto str = [](std::string& out, std::string_view k, std::string_view v) {
        out += '"';
        out += k;
        out += "\":\"";
        obs::json_escape_into(out, v);
        out += "\",";
    };
    std::string out = "{";
    str(out, "role", to_string(s.role));
    str(out, "peer_address", s.peer_address);
    str(out, "peer_name", s.peer_name);
    str(out, "peer_node", s.peer_node);
    str(out, "state", to_string(s.state));
    str(out, "tls_version", s.tls_version);
    str(out, "alpn", s.alpn);
    str(out, "last_error", s.last_error);
    out += fmt::format(R"("since_ms":{},"streams_open":{},"streams_total":{},"bytes_in":{},"bytes_out":{}}})",
                       s.since_ms, s.streams_open, s.streams_total, s.bytes_in, s.bytes_out);
    return out;
}

// ---------------------------------------------------------------------------------------------------------

bool LinkStream::send_headers(const Headers& headers, bool end_stream) {
    auto& lc = link_;
    if (lc.opts_.role != Role::Acceptor || headers_sent_ || !usable() || !lc.session_) return false;
    // Views into `headers`, and into `owned` for the names that needed lowercasing (an HTTP/1.1 origin's
    // "Content-Type"); `owned` never grows past its reserve, so those views stay put. nghttp2 copies the
    // block when it is submitted.
    std::vector<std::string> owned;
    owned.reserve(headers.size());
    h2::FieldViews h;
    h.reserve(headers.size());
    for (auto& [k, v] : headers)
        if (!k.empty() && k[0] == ':') h.emplace_back(k, v); // pseudo-headers must lead (RFC 9113 8.3)
    for (auto& [k, v] : headers) {
        if (k.empty() || k[0] == ':') continue;
        std::string_view n = link_name(k, owned);
        if (!http::forwards(http::Hop::LinkFrame, n, v)) continue;
        h.emplace_back(n, v);
    }
    headers_sent_ = true;
    if (end_stream) end_requested_ = true;
    bool with_body = !(end_requested_ && pending_output() == 0);
    provider_ = with_body;
    h2::Body body;
    if (with_body) body = {&LinkConn::H2::read_data, this};
    int rv = link_response(lc.session_, id_, h, body);
    if (rv != 0) {
        EP_WARN("link", "link stream {}: response: {}", id_, nghttp2_strerror(rv));
        return false;
    }
    lc.schedule_send();
    return true;
}

bool LinkStream::write(std::string_view data) {
    if (!usable() || end_requested_) return false;
    out_.append(data);
    link_.stream_output_added(*this);
    if (pending_output() > link_.opts_.stream_high_watermark) {
        above_ = true;
        return false;
    }
    return true;
}

void LinkStream::end() {
    if (!usable() || end_requested_) return;
    end_requested_ = true;
    link_.stream_output_added(*this);
}

void LinkStream::reset(uint32_t error_code) {
    if (!usable()) return;
    local_reset_ = true;
    handler_ = nullptr;
    if (link_.session_) {
        nghttp2_submit_rst_stream(link_.session_, NGHTTP2_FLAG_NONE, id_, error_code);
        link_.schedule_send();
    }
}

void LinkStream::consumed(size_t n) {
    if (!usable() || control_ || !link_.session_ || n == 0) return;
    nghttp2_session_consume_stream(link_.session_, id_, n);
    link_.schedule_send();
}

} // namespace edgepair::link
