#include <algorithm>

#include <fmt/format.h>

#include "common/http/h1_parser.h"
#include "common/mra/edge_config.h"
#include "common/net/tls_context.h"
#include "common/obs/access_log.h"
#include "common/obs/log.h"
#include "common/protection/classify.h"
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
//
// Memory per connection is bounded (docs/SECURITY.md "Per-connection memory"): the socket is not read
// while the output to the client is above its high watermark (pipelined requests answered locally are
// not parsed until the client reads), nor while the input buffer holds more than kInputCap bytes that
// cannot be passed on (a request in flight, a link stream pushing back, a wait for a link).

// Unparsed client bytes kept at most (besides one read of 16 KiB) while nothing can take them. At least
// one request head must fit.
constexpr size_t kInputCap = 64 * 1024;
// A refused request whose remaining body is at most this is read and discarded to keep the connection;
// anything larger (or chunked, or a body the client was told to wait for with Expect) closes it instead.
constexpr uint64_t kSkipBody = 64 * 1024;
// Closing a socket while the client is still sending makes the kernel answer its next segment with a reset,
// which can destroy the response before the client reads it (RFC 9112 9.6). So a connection closed in the
// middle of a request body first reads and drops what the client still sends, for at most this long and
// this much (nginx's lingering close), then closes.
constexpr uint64_t kLingerMs = 2000;
constexpr size_t kLingerBytes = 1024 * 1024;

class HttpsSession final : public ClientSession, public link::StreamHandler {
  public:
    HttpsSession(WorkerState& ws, int fd, SSL* ssl)
        : ws_(ws), conn_(std::make_unique<net::Connection>(ws.worker().loop(), fd, ssl, true)) {
        const auto& cfg = ws.gen()->cfg;
        auto& lim = cfg.limits;
        http::H1Limits limits;
        limits.max_header_bytes = lim.max_header_bytes;
        limits.max_body = lim.max_body_bytes;
        parser_ = std::make_unique<http::H1Parser>(http::H1Parser::Kind::Request, limits);
        input_cap_ = std::max<size_t>(kInputCap, size_t(lim.max_header_bytes));
        head_ms_ = uint64_t(cfg.http.request_head_timeout.count());
        stall_ms_ = uint64_t(cfg.http.client_stall_timeout.count());
        authority_ =
            fmt::format("{}:{}", cfg.node_name, cfg.listeners.https ? cfg.listeners.https->listen.port : 0);
        conn_->set_callbacks({[this] { on_handshake(); }, [this](const char* d, size_t n) { on_data(d, n); },
                              [this](std::string_view why) { on_conn_close(why); },
                              [this] { on_client_drained(); }});
        conn_->set_on_eof([this] { on_client_eof(); });
        auto& loop = ws.worker().loop();
        response_timer_ = std::make_unique<core::Timer>(loop, [this] { on_response_timeout(); });
        head_timer_ = std::make_unique<core::Timer>(loop, [this] { on_head_timeout(); });
        stall_timer_ = std::make_unique<core::Timer>(loop, [this] { on_stall_check(); });
        linger_timer_ = std::make_unique<core::Timer>(loop, [this] { conn_->close(); });
        // A client that never finishes the handshake or goes quiet must not hold a slot forever.
        conn_->set_idle_timeout(uint64_t(lim.client_idle_timeout.count()));
        // Slowloris: the handshake and the first request head share one deadline.
        head_timer_->arm(head_ms_);
        conn_->start();
    }

    ~HttpsSession() override {
        if (stream_) stream_->reset(link::kCancel);
    }

  private:
    // ---- client side ----

    void on_handshake() {
        handshake_done_ = true;
        if (conn_->ssl() && net::alpn_of(conn_->ssl()) == "h2") {
            head_timer_->cancel(); // HTTP/2 frames its own heads; nghttp2 and the idle timeout bound them
            h2_ = make_h2_session(ws_, *conn_);
        }
    }

    void on_data(const char* data, size_t len) {
        if (h2_) return h2_->on_data(data, len);
        if (lingering_) {
            if (len >= linger_left_) return conn_->close();
            linger_left_ -= len;
            return;
        }
        last_progress_ms_ = now();
        if (head_pending_ && !head_timer_->armed()) head_timer_->arm(head_ms_);
        inbuf_.append(data, len);
        pump();
        update_reading();
    }

    // The client shut its sending side. With http.client_half_close: serve (a half-close, as RFC 9112 9.6
    // lets a client do after its request) what it sent is still answered: the requests already read, in
    // order, then the connection closes; a request the EOF cut off is dropped. With abort (the default) the
    // connection ends at once, its request cancelled. HTTP/2 clients do not half-close: a FIN means gone.
    void on_client_eof() {
        client_eof_ = true;
        if (lingering_) {
            closing_ = true;
            return conn_->close(); // the response is out; the rest of the request would have been dropped
        }
        if (h2_ || ws_.gen()->cfg.http.client_half_close == config::HalfClose::Abort)
            return conn_->abort("closed by peer"); // inside the connection's read: on_conn_close follows
        schedule_pump();
    }

    // After the client's EOF, at the end of each pump: close once no complete request is left to read. Never
    // abort() here: pump's callers go on using this session after it returns.
    void close_if_client_done() {
        if (!client_eof_ || closing_ || waiting_link_ || body_paused_ || conn_->above_high_watermark())
            return;
        if (in_flight_ && request_done_) return; // its response comes; request_finished() pumps again
        if (in_flight_) access_.set_reason("client_closed_mid_request");
        closing_ = true;
        conn_->close();
    }

    // Parses what is buffered; stops while a request is in flight (its response decides keep-alive), while
    // the link stream pushes back, while it waits for a link, or while the client does not read its answers.
    void pump() {
        size_t off = 0;
        while (!closing_ && !body_paused_ && !waiting_link_ && !(in_flight_ && request_done_) &&
               !conn_->above_high_watermark()) {
            auto r = parser_->feed(inbuf_.data() + off, inbuf_.size() - off);
            off += r.consumed;
            if (r.status == http::H1Parser::Status::Error) {
                auto& e = parser_->error();
                count_reject(ws_, e.name());
                if (auto c = protection::refusal_category(e.status ? e.status : 400, e.name()))
                    ws_.report(*c, conn_->peer());
                if (!access_.active())
                    access_.begin(ws_.gen()->access_log, ws_.next_request_id(), conn_->peer().str(), "-",
                                  "-");
                access_.set_reason(e.name());
                EP_INFO("https", "{}: malformed request: {} ({})", conn_->peer().str(), e.name(), e.detail);
                if (in_flight_ && response_started_) {
                    conn_->close();
                    closing_ = true;
                } else {
                    drop_stream();
                    respond_local(e.status ? e.status : 400, std::string(e.name()), false);
                }
                break;
            }
            if (r.status == http::H1Parser::Status::HeadersComplete) {
                on_request_head();
                continue;
            }
            if (r.status == http::H1Parser::Status::Body) {
                access_.add_in(r.body.size());
                if (stream_) {
                    body_sent_ = true;
                    if (!stream_->write(r.body)) {
                        body_paused_ = true; // resumed by on_writable
                        last_progress_ms_ = now();
                    }
                }
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
        if (head_pending_ && !inbuf_.empty() && !head_timer_->armed()) head_timer_->arm(head_ms_);
        close_if_client_done();
    }

    // Reading stops while the client's answers pile up unread, while the input cannot be passed on, and
    // while the request waits for a link; it resumes (next loop turn, never inside pump) when that ends.
    void update_reading() {
        if (closing_ || h2_) return;
        bool pause = conn_->above_high_watermark() || waiting_link_ || inbuf_.size() >= input_cap_;
        if (pause && !read_paused_) {
            read_paused_ = true;
            conn_->pause_reading();
            ws_.counters().read_paused->inc();
        } else if (!pause && read_paused_) {
            read_paused_ = false;
            ws_.worker().loop().post([alive = std::weak_ptr<bool>(alive_), this] {
                if (!alive.expired() && !closing_ && !read_paused_) conn_->resume_reading();
            });
        }
    }

    // Runs pump on the next loop turn (never re-entered from a callback that pump itself caused).
    void schedule_pump() {
        if (pump_posted_) return;
        pump_posted_ = true;
        ws_.worker().loop().post([alive = std::weak_ptr<bool>(alive_), this] {
            if (alive.expired()) return;
            pump_posted_ = false;
            if (closing_) return;
            pump();
            update_reading();
        });
    }

    void on_request_head() {
        const auto& parsed = parser_->request();
        head_timer_->cancel();
        head_pending_ = false;
        request_done_ = false;
        response_started_ = false;
        body_sent_ = false;
        retried_ = false;
        head_request_ = parsed.method == "HEAD";
        method_ = parsed.method;
        keep_alive_ = parser_->keep_alive();
        bool has_body = parser_->body_mode() != http::H1Parser::BodyMode::None;
        // Expect is for this hop: edge-e answers it (100 once the request is on the link) and never
        // forwards it. A bodyless request with Expect is served like any other.
        expect_continue_ =
            has_body && parsed.version_minor >= 1 && parsed.headers.has_token("expect", "100-continue");

        // HTTP/1.0 may leave Host out: the request is for this edge, so it names the edge's own authority
        // rather than cross the link with an empty :authority.
        http::RequestHead with_host;
        const http::RequestHead* req = &parsed;
        if (!parsed.headers.find("host")) {
            with_host = parsed;
            with_host.headers.add("Host", authority_);
            req = &with_host;
        }

        auto g = gate_request(ws_, *req, conn_->peer());
        access_.begin(ws_.gen()->access_log, g.request_id, conn_->peer().str(), parsed.method, parsed.target);
        if (g.status && g.content_type.empty())
            if (auto c = protection::refusal_category(g.status, g.reason)) ws_.report(*c, conn_->peer());
        if (g.status && !g.content_type.empty()) {
            access_.set_reason(g.reason);
            if (!request_done_ && !body_skippable()) keep_alive_ = false;
            return respond_local(g.status, g.message, keep_alive_, 0, {}, g.content_type);
        }
        if (g.status) {
            access_.set_reason(g.reason);
            return reject_request(g.status, g.message, g.retry_after_s, g.allow);
        }
        slot_ = ws_.take_client_stream(conn_->peer());
        if (!slot_) {
            count_reject(ws_, "per_client_streams");
            access_.set_reason("per_client_streams");
            return reject_request(429, "too many requests in progress from this address", 1);
        }
        std::erase_if(g.headers, [](const link::Header& h) { return h.first == "expect"; });
        link_headers_ = std::move(g.headers);
        no_body_ = !has_body;
        in_flight_ = true;
        if (g.link)
            open_on(g.link);
        else
            wait_for_link();
    }

    void open_on(link::LinkConn* link) {
        stream_ = link->open_stream(link::StreamKind::Http, link_headers_, this, no_body_ || request_done_);
        if (!stream_) return refuse_in_flight(503, "traversal link to edge-c is down");
        last_progress_ms_ = now();
        stall_timer_->arm(stall_ms_);
        if (expect_continue_ && !request_done_ && parser_->body_bytes() == 0) {
            conn_->write("HTTP/1.1 100 Continue\r\n\r\n");
            expect_continue_ = false;
        }
        if (request_done_ && !response_started_)
            response_timer_->arm(uint64_t(ws_.gen()->cfg.http.response_timeout.count()));
    }

    // No link up on this worker: wait for one (the client is not read meanwhile), then send or refuse.
    void wait_for_link() {
        waiting_link_ = true;
        update_reading();
        ticket_ = ws_.wait_for_link([this](link::LinkConn* l) {
            waiting_link_ = false;
            if (!l) {
                refuse_in_flight(503, "traversal link to edge-c is down");
            } else {
                open_on(l);
            }
            if (closing_) return;
            schedule_pump();
            update_reading();
        });
    }

    // A request that passed the gate but cannot go to the link after all.
    void refuse_in_flight(int status, const std::string& msg) {
        access_.set_reason("link_down");
        in_flight_ = false;
        drop_stream();
        reject_request(status, msg);
        if (!closing_ && request_done_) request_finished();
    }

    // edge-c did not answer within http.response_timeout: give up on the link stream and say so.
    void on_response_timeout() {
        if (!stream_ || response_started_) return;
        drop_stream();
        ws_.counters().link_timeouts->inc();
        access_.set_reason("response_timeout");
        EP_INFO("https", "{}: no answer from edge-c within the response timeout", conn_->peer().str());
        keep_alive_ = keep_alive_ && request_done_;
        respond_local(504, "edge-c did not answer in time", keep_alive_);
        if (!closing_) request_finished();
    }

    void on_head_timeout() {
        if (h2_ || closing_) return;
        if (!handshake_done_) {
            ws_.counters().head_timeouts->inc();
            count_reject(ws_, "head_timeout");
            closing_ = true;
            conn_->abort("TLS handshake not complete within http.request_head_timeout");
            return;
        }
        if (!head_pending_) return;
        bool partial = !inbuf_.empty() || !parser_->idle();
        if (!partial && first_done_) return; // an idle keep-alive connection: the idle timeout governs
        ws_.counters().head_timeouts->inc();
        count_reject(ws_, "head_timeout");
        EP_INFO("https", "{}: request head not complete within {} ms", conn_->peer().str(), head_ms_);
        if (partial) {
            access_.begin(ws_.gen()->access_log, ws_.next_request_id(), conn_->peer().str(), "-", "-");
            access_.set_reason("head_timeout");
        }
        if (!partial) {
            closing_ = true;
            conn_->close();
            return;
        }
        head_request_ = false;
        respond_local(408, "request head not complete in time", false);
    }

    // The link stream is held on behalf of this client: it must keep sending its request or reading its
    // answer. What edge-c or the link hold up (a stream pushing back, a late answer) is not the client's.
    bool waiting_on_client() const { return stream_ && ((!request_done_ && !body_paused_) || held_ > 0); }

    void on_stall_check() {
        if (!stream_ || closing_) return;
        uint64_t t = now();
        if (!waiting_on_client()) last_progress_ms_ = t;
        uint64_t quiet = t - last_progress_ms_;
        if (quiet < stall_ms_) return stall_timer_->arm(stall_ms_ - quiet);
        ws_.counters().stalls->inc();
        count_reject(ws_, "client_stall");
        access_.set_reason("client_stall");
        EP_INFO("https", "{}: cut: held a link stream {} ms without sending or reading", conn_->peer().str(),
                quiet);
        drop_stream();
        closing_ = true;
        conn_->abort("client stalled while holding a link stream");
    }

    // Answers locally. A body still to come is read and discarded when small and announced by length;
    // otherwise the connection closes after the answer (HTTP/1.1 cannot skip it cheaply).
    void reject_request(int status, const std::string& msg, uint64_t retry_after_s = 0,
                        std::string_view allow = {}) {
        ws_.app().counters().http_rejected->inc();
        if (!request_done_ && !body_skippable()) keep_alive_ = false;
        respond_local(status, msg, keep_alive_, retry_after_s, allow);
    }

    bool body_skippable() const {
        auto mode = parser_->body_mode();
        if (mode == http::H1Parser::BodyMode::None) return true;
        if (expect_continue_) return false; // the client may never send it
        if (mode != http::H1Parser::BodyMode::Length || !parser_->content_length()) return false;
        return *parser_->content_length() - parser_->body_bytes() <= kSkipBody;
    }

    // `allow`: the gate's Allow value for a 405 (RFC 9110 15.5.6: a 405 must carry one).
    // `content_type` set: an answer of edge-e's own (get_edge_sso), `msg` is the whole body.
    void respond_local(int status, const std::string& msg, bool keep_alive, uint64_t retry_after_s = 0,
                       std::string_view allow = {}, std::string_view content_type = {}) {
        // A banned address keeps no connection past the answer it is getting (docs/SECURITY.md).
        if (keep_alive && ws_.banned(conn_->peer())) keep_alive = false;
        std::string body = content_type.empty() ? msg + "\n" : msg;
        std::string extra =
            status == 401 ? fmt::format("WWW-Authenticate: {}\r\n", mra::kClientAuthChallenge) : "";
        access_.set_status(status);
        if (!head_request_) access_.add_out(body.size());
        if (status == 429) extra += fmt::format("Retry-After: {}\r\n", retry_after_s ? retry_after_s : 1);
        if (status == 405 && !allow.empty()) extra += fmt::format("Allow: {}\r\n", allow);
        conn_->write(fmt::format(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{}{}\r\n{}", status,
            reason_phrase(status), content_type.empty() ? std::string_view("text/plain") : content_type,
            body.size(), extra, keep_alive ? "" : "Connection: close\r\n", head_request_ ? "" : body));
        if (!keep_alive) {
            closing_ = true;
            conn_->close();
        }
    }

    // Releases the link stream (and the client's slot) now: RST_STREAM to edge-c if still open.
    void drop_stream() {
        if (stream_) {
            stream_->reset(link::kCancel);
            stream_ = nullptr;
        }
        held_ = 0;
        body_paused_ = false;
        ticket_.cancel();
        waiting_link_ = false;
        slot_.release();
        stall_timer_->cancel();
        response_timer_->cancel();
    }

    void request_finished() {
        access_.finish();
        in_flight_ = false;
        stream_ = nullptr;
        slot_.release();
        stall_timer_->cancel();
        head_pending_ = true;
        first_done_ = true;
        if (keep_alive_ && ws_.banned(conn_->peer())) keep_alive_ = false; // banned during this request
        if (!keep_alive_) {
            if (!request_done_) return close_lingering();
            closing_ = true;
            conn_->close();
            return;
        }
        // The next pipelined request may already be buffered.
        schedule_pump();
    }

    void close_lingering() {
        closing_ = true;
        lingering_ = true;
        linger_left_ = kLingerBytes;
        inbuf_.clear();
        head_timer_->cancel();
        if (read_paused_) {
            read_paused_ = false;
            conn_->resume_reading();
        }
        linger_timer_->arm(kLingerMs);
    }

    void on_client_drained() {
        if (h2_) return h2_->on_drained();
        last_progress_ms_ = now();
        // The client reads again: reopen the link stream's window for what we had held back.
        if (stream_ && held_ > 0) {
            stream_->consumed(held_);
            held_ = 0;
        }
        schedule_pump();
        update_reading();
    }

    void on_conn_close(std::string_view why) {
        if (h2_) h2_->on_conn_close(why);
        response_timer_->cancel();
        head_timer_->cancel();
        stall_timer_->cancel();
        linger_timer_->cancel();
        if (!handshake_done_) {
            ws_.app().counters().tls_handshake_failures->inc();
            EP_DEBUG("https", "{}: {}", conn_->peer().str(), why);
        }
        closing_ = true;
        drop_stream();
        if (access_.active()) {
            access_.set_reason("client_closed");
            access_.finish();
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
        access_.set_status(status);
        access_.set_upstream(link::header_value(headers, obs::kUpstreamHeader));
        // An answer before the whole request: the rest of the upload is not read (the link stream is reset
        // once the answer is complete), so this connection cannot carry another request.
        if (!request_done_) keep_alive_ = false;
        if (auto c = protection::answer_category(status)) ws_.report(*c, conn_->peer());
        if (keep_alive_ && ws_.banned(conn_->peer())) keep_alive_ = false;
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
        access_.add_out(len);
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
        if (request_done_ || !response_started_) return; // the stream closes by itself (on_close)
        // edge-c's answer is complete while the client is still sending: release the link stream now
        // (RFC 9113 8.1) instead of holding it for the rest of an upload nobody will read.
        ws_.counters().early_releases->inc();
        drop_stream();
        keep_alive_ = false;
        request_finished();
    }

    void on_writable(link::LinkStream&) override {
        if (!body_paused_) return;
        body_paused_ = false;
        last_progress_ms_ = now();
        pump();
        update_reading();
    }

    void on_close(link::LinkStream&, const core::Failure& failure) override {
        stream_ = nullptr;
        held_ = 0;
        body_paused_ = false;
        response_timer_->cancel();
        stall_timer_->cancel();
        if (failure) {
            EP_INFO("https", "{}: link stream ended: {}", conn_->peer().str(), failure.str());
            if (!response_started_ && !retried_ && link_loss_retryable(failure, method_, body_sent_)) {
                // Once, on the next loop turn: by then the dead link is out of pick_link's way.
                retried_ = true;
                ws_.counters().retries->inc();
                waiting_link_ = true;
                ws_.worker().loop().post([alive = std::weak_ptr<bool>(alive_), this] {
                    if (alive.expired() || closing_) return;
                    waiting_link_ = false;
                    if (auto* l = ws_.pick_link()) {
                        open_on(l);
                        schedule_pump();
                        update_reading();
                    } else {
                        wait_for_link();
                    }
                });
                return;
            }
            slot_.release();
            access_.set_reason("link_error");
            if (!response_started_) {
                ws_.counters().link_error(failure).inc();
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

    uint64_t now() const { return ws_.worker().loop().now_ms(); }

    WorkerState& ws_;
    std::unique_ptr<net::Connection> conn_;
    std::unique_ptr<H2Session> h2_; // after conn_: destroyed first, while the connection still exists
    std::unique_ptr<core::Timer> response_timer_, head_timer_, stall_timer_, linger_timer_;
    std::unique_ptr<http::H1Parser> parser_;
    std::string inbuf_;
    std::string authority_;
    std::string method_;
    link::Headers link_headers_; // kept for a retry on another link
    link::LinkStream* stream_ = nullptr;
    LinkTicket ticket_;
    ClientStreamSlot slot_;
    size_t held_ = 0;
    size_t input_cap_ = kInputCap;
    uint64_t head_ms_ = 0, stall_ms_ = 0, last_progress_ms_ = 0;
    bool handshake_done_ = false;
    bool closing_ = false;
    bool in_flight_ = false;
    bool request_done_ = false;
    bool response_started_ = false;
    bool head_request_ = false;
    bool keep_alive_ = true;
    bool chunked_ = false;
    bool body_paused_ = false;
    bool body_sent_ = false;
    bool no_body_ = false;
    bool retried_ = false;
    bool waiting_link_ = false;
    bool expect_continue_ = false;
    bool read_paused_ = false;
    bool lingering_ = false; // closing: the response is out, the rest of the request is read and dropped
    size_t linger_left_ = 0;
    bool pump_posted_ = false;
    bool client_eof_ = false;  // the client shut its sending side: no more input will come
    bool head_pending_ = true; // the next request head is awaited
    bool first_done_ = false;  // a request was complete on this connection
    obs::HttpAccess access_;   // the request being served (or answered locally), for log.access
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

} // namespace

std::unique_ptr<ClientSession> make_https_session(WorkerState& ws, int fd, SSL* ssl) {
    return std::make_unique<HttpsSession>(ws, fd, ssl);
}

} // namespace edgepair::edge_e
