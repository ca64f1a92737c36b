// Each client stream is one request: its header block goes through http::H2RequestBuilder (a second,
// independent check behind nghttp2's own RFC 9113 validation) and then through the same gate as an
// HTTP/1.1 request (edge-e/http_gate.h), and becomes one link stream. Bodies stream both ways under
// HTTP/2 flow control at each end:
//   client -> link: a client stream's window is reopened only once the link stream has taken the bytes
//                   (LinkStream::write said yes, or later on_writable), so a slow edge-c stalls one client
//                   stream, never the connection (the connection window is reopened at once);
//   link -> client: link bytes wait in the stream's buffer until nghttp2 frames them towards the client,
//                   and only then is the link stream told they were consumed; a client that does not read
//                   fills its stream window, then the socket, and edge-c's link stream window closes.
// Nothing here holds more than one link stream window (256 KiB) per direction per stream.
#include "edge-e/h2_session.h"

#include <algorithm>
#include <cstring>
#include <deque>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <event2/event.h>
#include <fmt/format.h>
#include <nghttp2/nghttp2.h>

#include "common/http/h2_glue.h"
#include "common/http/h2_request.h"
#include "common/obs/access_log.h"
#include "common/obs/log.h"
#include "common/protection/classify.h"
#include "edge-e/http_gate.h"

namespace edgepair::edge_e {

namespace {

namespace h2 = http::h2;

constexpr const char* kLog = "https";
constexpr uint32_t kStreamWindow = 256 * 1024;
constexpr int32_t kConnectionWindow = 4 * 1024 * 1024;
// RST_STREAM frames a client may send: a burst, then a rate (CVE-2023-44487, "rapid reset": every reset
// stream already cost a link stream and an upstream request). nghttp2 answers a client over it with GOAWAY.
constexpr uint64_t kResetBurst = 200;
constexpr uint64_t kResetRate = 20;

class H2Conn;

class H2Stream final : public link::StreamHandler {
  public:
    H2Stream(H2Conn& c, int32_t id, const http::H2RequestLimits& limits) : c_(c), id_(id), req_(limits) {}
    ~H2Stream() override {
        if (ls_) ls_->reset(link::kCancel);
    }
    // Holds a link stream (or waits for one) for this client: counted against the connection's cap.
    bool holds_link() const { return ls_ != nullptr || waiting_link_; }

    // link::StreamHandler
    void on_headers(link::LinkStream&, const link::Headers& headers) override;
    void on_data(link::LinkStream& s, const char* data, size_t len) override;
    void on_end(link::LinkStream&) override;
    void on_writable(link::LinkStream&) override;
    void on_close(link::LinkStream&, const core::Failure& failure) override;

    H2Conn& c_;
    int32_t id_;
    http::H2RequestBuilder req_;
    std::string method_;
    link::Headers link_headers_; // kept for the wait for a link and for one retry on another link
    std::string pending_;        // body that arrived while waiting for a link (within the stream window)
    LinkTicket ticket_;
    ClientStreamSlot slot_;
    bool waiting_link_ = false;
    bool retried_ = false;
    bool body_sent_ = false; // some of the body went to a link stream: no retry
    bool expect_continue_ = false;
    uint64_t last_progress_ms_ = 0;
    bool head_done_ = false; // the request header block is complete
    bool head_request_ = false;
    bool req_ended_ = false;
    bool local_ = false; // answered (or reset) by edge-e: request bytes are discarded
    link::LinkStream* ls_ = nullptr;
    size_t held_ = 0; // client bytes passed to the link stream but not yet given back as window
    uint64_t body_bytes_ = 0;
    std::unique_ptr<core::Timer> timer_;
    obs::HttpAccess access_; // written when the stream goes (its destructor), for log.access

    bool resp_started_ = false;
    bool resp_discard_ = false; // response without a body (HEAD, 204, 304): link bytes are dropped
    bool resp_eof_ = false;
    bool deferred_ = false;
    h2::OutBuffer out_;
};

class H2Conn final : public H2Session {
  public:
    H2Conn(WorkerState& ws, net::Connection& conn) : ws_(ws), conn_(conn), peer_text_(conn.peer().str()) {
        send_ev_ = event_new(ws.worker().loop().base(), -1, 0, &H2Conn::on_send_event, this);
        auto& lim = ws.gen()->cfg.limits;
        limits_.max_header_bytes = lim.max_header_bytes;
        max_body_ = lim.max_body_bytes;
        response_timeout_ms_ = uint64_t(ws.gen()->cfg.http.response_timeout.count());
        stall_ms_ = uint64_t(ws.gen()->cfg.http.client_stall_timeout.count());
        max_streams_ = ws.gen()->cfg.http.max_concurrent_streams;
        stall_timer_ = std::make_unique<core::Timer>(ws.worker().loop(), [this] { check_stalls(); });
        ws.app().counters().http2_connections->inc();
        create_session();
    }

    ~H2Conn() override {
        *alive_ = false;
        teardown();
        if (send_ev_) event_free(send_ev_);
    }

    // Bytes go to nghttp2 in order, but each HEADERS frame header is looked at first: nghttp2 ignores a
    // HEADERS frame on a stream it no longer knows (it cannot tell a closed stream from a race with its own
    // RST_STREAM), while RFC 9113 5.1.1 makes a new stream id at or below one already used a connection
    // error. Streams edge-e reset itself are remembered, so late frames on those are still ignored (5.1).
    void on_data(const char* data, size_t len) override {
        if (!session_ || closing_) return;
        std::weak_ptr<bool> alive = alive_;
        size_t start = 0, i = 0;
        while (i < len) {
            if (preface_left_) {
                size_t n = std::min(preface_left_, len - i);
                preface_left_ -= n;
                i += n;
                continue;
            }
            if (payload_left_) {
                size_t n = size_t(std::min<uint64_t>(payload_left_, len - i));
                payload_left_ -= n;
                i += n;
                continue;
            }
            fh_[fh_have_++] = uint8_t(data[i]);
            if (fh_have_ < 9) {
                ++i;
                continue;
            }
            fh_have_ = 0;
            payload_left_ = (uint32_t(fh_[0]) << 16) | (uint32_t(fh_[1]) << 8) | fh_[2];
            if (fh_[3] == NGHTTP2_HEADERS) {
                int32_t id = int32_t(((uint32_t(fh_[5]) & 0x7f) << 24) | (uint32_t(fh_[6]) << 16) |
                                     (uint32_t(fh_[7]) << 8) | fh_[8]);
                // Every earlier frame must be applied before the stream's state is judged.
                if (!feed(data + start, i - start)) return;
                if (alive.expired() || !session_ || closing_) return;
                start = i;
                if (!headers_id_ok(id)) {
                    count_reject(ws_, "h2_stream_id");
                    EP_INFO(kLog, "{}: HEADERS on stream {} at or below the last one ({}): PROTOCOL_ERROR",
                            conn_.peer().str(), id, max_client_id_);
                    nghttp2_session_terminate_session(session_, NGHTTP2_PROTOCOL_ERROR);
                    close_after_send();
                    return;
                }
            }
            ++i;
        }
        if (!feed(data + start, len - start)) return;
        if (alive.expired()) return;
        schedule_send();
    }

    void on_drained() override {
        if (read_paused_) {
            read_paused_ = false;
            ws_.worker().loop().post([alive = std::weak_ptr<bool>(alive_), this] {
                if (!alive.expired() && !closing_ && !read_paused_) conn_.resume_reading();
            });
        }
        schedule_send();
    }

    void on_conn_close(std::string_view why) override {
        EP_DEBUG(kLog, "{}: h2 connection closed: {}", conn_.peer().str(), why);
        closing_ = true;
        teardown();
    }

    // ---- used by H2Stream ----

    // Lets go of the link stream (RST_STREAM to edge-c when still open), of a wait for one and of the
    // client address's slot.
    void release_link(H2Stream& st) {
        if (st.ls_) {
            st.ls_->reset(link::kCancel);
            st.ls_ = nullptr;
        }
        st.ticket_.cancel();
        st.waiting_link_ = false;
        st.pending_.clear();
        st.slot_.release();
    }

    // Opens the stream's link stream on `link` and passes on what the client sent meanwhile.
    void open_on(H2Stream& st, link::LinkConn* link) {
        bool end = st.req_ended_ && st.pending_.empty();
        st.ls_ = link->open_stream(link::StreamKind::Http, st.link_headers_, &st, end);
        if (!st.ls_) {
            st.access_.set_reason("link_down");
            return respond_local(st, 503, "traversal link to edge-c is down");
        }
        st.last_progress_ms_ = now();
        if (!stall_timer_->armed()) stall_timer_->arm(std::max<uint64_t>(stall_ms_ / 4, 250));
        if (st.expect_continue_ && !st.req_ended_ && st.body_bytes_ == 0) {
            // RFC 9110 10.1.1: the request is on its way; the client may send the body.
            st.expect_continue_ = false;
            const h2::Fields interim = {{":status", "100"}};
            auto nv = h2::to_nv(interim);
            nghttp2_submit_headers(session_, NGHTTP2_FLAG_NONE, st.id_, nullptr, nv.data(), nv.size(),
                                   nullptr);
        }
        if (!st.pending_.empty()) {
            std::string body = std::move(st.pending_);
            st.pending_.clear();
            st.body_sent_ = true;
            bool more = st.ls_->write(body);
            if (more) release_held(st);
            if (st.req_ended_ && st.ls_) st.ls_->end();
        }
        if (st.req_ended_) arm_response_timer(st);
        schedule_send();
    }

    void wait_for_link(H2Stream& st) {
        st.waiting_link_ = true;
        H2Stream* sp = &st;
        st.ticket_ = ws_.wait_for_link([this, sp](link::LinkConn* l) {
            sp->waiting_link_ = false;
            if (!session_) return;
            if (!l) {
                sp->access_.set_reason("link_down");
                return respond_local(*sp, 503, "traversal link to edge-c is down");
            }
            open_on(*sp, l);
        });
    }

    // The link stream died before any answer: send the request again on the next loop turn (by then the
    // dead link is out of pick_link's way), on this worker's next link or after a wait for one.
    void retry(H2Stream& st) {
        st.retried_ = true;
        st.waiting_link_ = true;
        ws_.counters().retries->inc();
        int32_t id = st.id_;
        ws_.worker().loop().post([alive = std::weak_ptr<bool>(alive_), this, id] {
            if (alive.expired() || !session_) return;
            auto* sp = find(id);
            if (!sp || !sp->waiting_link_ || sp->local_) return;
            sp->waiting_link_ = false;
            if (auto* l = ws_.pick_link())
                open_on(*sp, l);
            else
                wait_for_link(*sp);
        });
    }

    uint64_t now() const { return ws_.worker().loop().now_ms(); }

    // `allow`: the gate's Allow value for a 405 (RFC 9110 15.5.6: a 405 must carry one).
    // `content_type` set: an answer of edge-e's own (get_edge_sso), `msg` is the whole body.
    void respond_local(H2Stream& st, int status, const std::string& msg, uint64_t retry_after_s = 0,
                       std::string_view allow = {}, std::string_view content_type = {}) {
        if (st.resp_started_ || !session_) return;
        if (status >= 400) ws_.app().counters().http_rejected->inc();
        st.local_ = true;
        st.resp_started_ = true;
        st.access_.set_status(status);
        if (st.timer_) st.timer_->cancel();
        release_link(st);
        release_held(st);
        std::string body = content_type.empty() ? msg + "\n" : msg;
        h2::Fields h = {
            {":status", std::to_string(status)},
            {"content-type", content_type.empty() ? std::string("text/plain") : std::string(content_type)},
            {"content-length", std::to_string(body.size())},
        };
        if (status == 429) h.emplace_back("retry-after", std::to_string(retry_after_s ? retry_after_s : 1));
        if (status == 405 && !allow.empty()) h.emplace_back("allow", std::string(allow));
        if (!st.head_request_) st.out_.assign(std::move(body));
        st.resp_eof_ = true;
        submit_response(st, h, !st.head_request_);
    }

    void reset_stream(H2Stream& st, uint32_t code) {
        st.local_ = true;
        release_link(st);
        remember_reset(st.id_);
        if (session_) nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, st.id_, code);
        schedule_send();
    }

    template <class Block> // h2::Fields or h2::FieldViews
    void submit_response(H2Stream& st, const Block& h, bool with_body) {
        h2::Body body;
        if (with_body) body = {&H2Conn::read_data, &st};
        int rv;
        if constexpr (std::is_same_v<Block, h2::FieldViews>)
            rv = h2::submit_response_views(session_, st.id_, h, body);
        else
            rv = h2::submit_response(session_, st.id_, h, body);
        if (rv != 0) {
            EP_INFO(kLog, "{}: stream {}: response not sent: {}", conn_.peer().str(), st.id_,
                    nghttp2_strerror(rv));
            nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, st.id_, NGHTTP2_INTERNAL_ERROR);
        }
        // A banned address opens no new streams: GOAWAY (no error) names the last stream served, the ones in
        // progress finish, then the connection closes (nghttp2 wants neither read nor write any more).
        if (!ban_goaway_ && ws_.banned(conn_.peer())) {
            ban_goaway_ = true;
            nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                                  nghttp2_session_get_last_proc_stream_id(session_), NGHTTP2_NO_ERROR,
                                  nullptr, 0);
        }
        schedule_send();
    }

    void resume(H2Stream& st) {
        h2::resume(session_, st.id_, st.deferred_);
        schedule_send();
    }

    // Gives the client back the window for bytes the link has taken.
    void release_held(H2Stream& st) {
        if (st.held_ && session_) {
            nghttp2_session_consume_stream(session_, st.id_, st.held_);
            st.held_ = 0;
            schedule_send();
        }
    }

    void response_timed_out(H2Stream& st) {
        if (st.resp_started_ || !st.ls_) return;
        ws_.counters().link_timeouts->inc();
        st.access_.set_reason("response_timeout");
        EP_INFO(kLog, "{}: stream {}: no answer from edge-c within {} ms", conn_.peer().str(), st.id_,
                response_timeout_ms_);
        respond_local(st, 504, "edge-c did not answer in time");
    }

    WorkerState& ws() { return ws_; }
    net::Connection& conn() { return conn_; }
    bool alive() const { return session_ != nullptr; }

  private:
    void create_session() {
        auto& cfg = ws_.gen()->cfg;
        h2::SessionSetup setup;
        setup.server = true;
        setup.callbacks = h2::callbacks_of<H2Conn>();
        setup.reset_limit = h2::ResetRateLimit{kResetBurst, kResetRate};
        setup.settings = {
            {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, cfg.http.max_concurrent_streams},
            {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, kStreamWindow},
            {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, uint32_t(cfg.limits.max_header_bytes)},
        };
        setup.connection_window = kConnectionWindow;
        if (int rv = h2::open_session(&session_, setup, this); rv != 0) {
            EP_ERROR(kLog, "{}: nghttp2 session: {}", conn_.peer().str(), nghttp2_strerror(rv));
            conn_.close();
            return;
        }
        schedule_send();
    }

    void teardown() {
        // Streams first: their destructors cancel the link streams.
        streams_.clear();
        h2::close_session(session_);
        if (send_ev_) event_del(send_ev_);
    }

    void close_after_send() {
        close_after_send_ = true;
        schedule_send();
    }

    void schedule_send() {
        if (send_ev_ && !closing_) event_active(send_ev_, EV_WRITE, 0);
    }

    static void on_send_event(int, short, void* arg) { static_cast<H2Conn*>(arg)->do_send(); }

    void do_send() {
        if (!session_ || closing_) return;
        auto sent = h2::send_frames(session_, conn_, alive_);
        if (sent.gone) return;
        if (sent.error) {
            EP_INFO(kLog, "{}: HTTP/2 send: {}", conn_.peer().str(), nghttp2_strerror(sent.error));
            closing_ = true;
            conn_.close();
            return;
        }
        // The client does not read what it asked for: read nothing more from it until it does (on_drained),
        // so that requests answered here cannot pile up answers in memory.
        if (conn_.above_high_watermark() && !read_paused_) {
            read_paused_ = true;
            conn_.pause_reading();
            ws_.counters().read_paused->inc();
        }
        if (!nghttp2_session_want_write(session_) &&
            (close_after_send_ || !nghttp2_session_want_read(session_))) {
            closing_ = true;
            conn_.close(); // flushes the GOAWAY; on_close follows
        }
    }

    // nghttp2 takes bytes in order; false once it found a connection error (the GOAWAY is queued).
    bool feed(const char* data, size_t len) {
        if (len == 0) return true;
        ssize_t rv = h2::receive(session_, data, len);
        if (rv < 0) {
            count_reject(ws_, rv == NGHTTP2_ERR_BAD_CLIENT_MAGIC ? "h2_bad_preface" : "h2_protocol");
            ws_.report(protection::Category::HttpIntrusion, conn_.peer());
            EP_INFO(kLog, "{}: HTTP/2 connection error: {}", conn_.peer().str(), nghttp2_strerror(int(rv)));
            close_after_send();
            return false;
        }
        return true;
    }

    bool headers_id_ok(int32_t id) {
        if (id <= 0 || (id & 1) == 0) return true; // nghttp2 refuses those itself
        if (id > max_client_id_) {
            max_client_id_ = id;
            return true;
        }
        // An open stream's second header block is its trailers; nghttp2 checks the stream's state.
        if (nghttp2_session_find_stream(session_, id)) return true;
        return reset_ids_.contains(id);
    }

    void remember_reset(int32_t id) {
        if (!reset_ids_.insert(id).second) return;
        reset_order_.push_back(id);
        if (reset_order_.size() > kRememberedResets) {
            reset_ids_.erase(reset_order_.front());
            reset_order_.pop_front();
        }
    }

    // A stream holding a link stream whose client neither sends the rest of its request (with window to
    // do so) nor takes its answer for http.client_stall_timeout is reset; the connection's other streams
    // go on.
    void check_stalls() {
        if (!session_ || closing_) return;
        uint64_t t = now();
        bool any = false;
        std::vector<int32_t> cut;
        for (auto& [id, st] : streams_) {
            if (!st->ls_) continue;
            any = true;
            bool out_pending = !st->out_.empty();
            bool on_client = (!st->req_ended_ && st->held_ == 0) || out_pending;
            if (!on_client)
                st->last_progress_ms_ = t;
            else if (t - st->last_progress_ms_ >= stall_ms_)
                cut.push_back(id);
        }
        for (auto id : cut) {
            auto* st = find(id);
            if (!st) continue;
            ws_.counters().stalls->inc();
            count_reject(ws_, "client_stall");
            EP_INFO(kLog, "{}: stream {} cut: held a link stream {} ms without sending or reading",
                    conn_.peer().str(), id, stall_ms_);
            reset_stream(*st, NGHTTP2_CANCEL);
        }
        if (any) stall_timer_->arm(std::max<uint64_t>(stall_ms_ / 4, 250));
    }

    H2Stream* find(int32_t id) { return streams_.find(id); }

    void on_request(H2Stream& st, bool end_stream);
    void on_request_end(H2Stream& st);
    void arm_response_timer(H2Stream& st);
    void on_body(H2Stream& st, const char* data, size_t len);

  public: // for h2::callbacks_of
    // ---- nghttp2 callbacks: they record and dispatch; sending happens in do_send ----

    static int on_begin_headers(nghttp2_session* s, const nghttp2_frame* f, void* ud) {
        auto* c = static_cast<H2Conn*>(ud);
        if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
        c->streams_.attach(s, f->hd.stream_id, std::make_unique<H2Stream>(*c, f->hd.stream_id, c->limits_));
        c->ws_.app().counters().http2_streams->inc();
        return 0;
    }

    static int on_header(nghttp2_session*, const nghttp2_frame* f, const uint8_t* name, size_t namelen,
                         const uint8_t* value, size_t valuelen, uint8_t, void* ud) {
        auto* st = static_cast<H2Conn*>(ud)->find(f->hd.stream_id);
        // Trailers (a second header block) are dropped, as on the HTTP/1.1 side: never merged into the head.
        if (st && !st->head_done_ && f->hd.type == NGHTTP2_HEADERS)
            st->req_.add(h2::view(name, namelen), h2::view(value, valuelen));
        return 0;
    }

    static int on_frame_recv(nghttp2_session*, const nghttp2_frame* f, void* ud) {
        auto* c = static_cast<H2Conn*>(ud);
        if (f->hd.type == NGHTTP2_RST_STREAM) {
            ++c->resets_;
            c->ws_.counters().h2_client_resets->inc();
            return 0;
        }
        if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA) return 0;
        auto* st = c->find(f->hd.stream_id);
        if (!st) return 0;
        bool end = f->hd.flags & NGHTTP2_FLAG_END_STREAM;
        if (f->hd.type == NGHTTP2_HEADERS && !st->head_done_) {
            st->head_done_ = true;
            c->on_request(*st, end);
            return 0;
        }
        if (end) c->on_request_end(*st);
        return 0;
    }

    static int on_data_chunk(nghttp2_session* s, uint8_t, int32_t id, const uint8_t* data, size_t len,
                             void* ud) {
        auto* c = static_cast<H2Conn*>(ud);
        // The connection window reopens at once; each stream's own window is what holds a slow upload back.
        nghttp2_session_consume_connection(s, len);
        auto* st = c->find(id);
        if (!st) return 0;
        c->on_body(*st, reinterpret_cast<const char*>(data), len);
        return 0;
    }

    static int on_stream_close(nghttp2_session*, int32_t id, uint32_t code, void* ud) {
        auto* c = static_cast<H2Conn*>(ud);
        auto st = c->streams_.take(id); // its destructor, on return, cancels the link stream
        if (st && code != NGHTTP2_NO_ERROR && st->ls_)
            EP_DEBUG(kLog, "{}: stream {} reset ({}): cancelling its link stream", c->conn_.peer().str(), id,
                     h2::error_name(code));
        return 0;
    }

    static int on_invalid_frame(nghttp2_session*, const nghttp2_frame* f, int lib_error_code, void* ud) {
        auto* c = static_cast<H2Conn*>(ud);
        auto label = h2::invalid_frame_label(lib_error_code);
        count_reject(c->ws_, label);
        c->ws_.report(protection::Category::HttpIntrusion, c->conn_.peer());
        EP_INFO(kLog, "{}: stream {}: HTTP/2 frame refused: {}", c->conn_.peer().str(), f->hd.stream_id,
                nghttp2_strerror(lib_error_code));
        if (auto* st = c->find(f->hd.stream_id)) {
            st->local_ = true;
            st->access_.set_reason(label);
        }
        return 0;
    }

    // nghttp2 ends a session itself on a connection error (too many concurrent streams once the client has
    // acknowledged the limit, a reset or control-frame flood, a bad frame): count it, and close once the
    // GOAWAY is out rather than keep serving a client that misbehaves.
    static int on_frame_send(nghttp2_session*, const nghttp2_frame* f, void* ud) {
        auto* c = static_cast<H2Conn*>(ud);
        if (f->hd.type == NGHTTP2_RST_STREAM) {
            c->remember_reset(f->hd.stream_id);
            return 0;
        }
        if (f->hd.type != NGHTTP2_GOAWAY || f->goaway.error_code == NGHTTP2_NO_ERROR || c->goaway_counted_)
            return 0;
        c->goaway_counted_ = true;
        count_reject(c->ws_, c->resets_ >= kResetBurst ? "h2_reset_flood" : "h2_goaway");
        EP_INFO(kLog, "{}: HTTP/2 GOAWAY ({}) after {} client resets", c->conn_.peer().str(),
                h2::error_name(f->goaway.error_code), c->resets_);
        c->close_after_send_ = true;
        return 0;
    }

    static ssize_t read_data(nghttp2_session*, int32_t, uint8_t* buf, size_t length, uint32_t* flags,
                             nghttp2_data_source* src, void*) {
        auto* st = static_cast<H2Stream*>(src->ptr);
        ssize_t n = h2::read_body(st->out_, st->resp_eof_, st->deferred_, buf, length, flags);
        if (n <= 0) return n;
        st->access_.add_out(size_t(n));
        // The bytes have left edge-e's buffer for the client: edge-c may send that much more.
        if (st->ls_ && !st->local_) st->ls_->consumed(size_t(n));
        st->last_progress_ms_ = st->c_.now();
        return n;
    }

  private:
    WorkerState& ws_;
    net::Connection& conn_;
    const std::string peer_text_; // conn_.peer().str(): every stream's access record and x-client-addr
    nghttp2_session* session_ = nullptr;
    event* send_ev_ = nullptr;
    http::H2RequestLimits limits_;
    uint64_t max_body_ = 0;
    uint64_t response_timeout_ms_ = 0;
    h2::StreamTable<H2Stream> streams_;
    std::unique_ptr<core::Timer> stall_timer_;
    uint64_t stall_ms_ = 0;
    uint32_t max_streams_ = 100;
    // The client-stream-id scanner in on_data: the preface, then 9-byte frame headers and payloads.
    size_t preface_left_ = 24;
    uint8_t fh_[9] = {};
    size_t fh_have_ = 0;
    uint64_t payload_left_ = 0;
    int32_t max_client_id_ = 0;
    static constexpr size_t kRememberedResets = 1024;
    std::unordered_set<int32_t> reset_ids_;
    std::deque<int32_t> reset_order_;
    bool read_paused_ = false;
    uint64_t resets_ = 0;
    bool closing_ = false;
    bool close_after_send_ = false;
    bool goaway_counted_ = false;
    bool ban_goaway_ = false;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

void H2Conn::on_request(H2Stream& st, bool end_stream) {
    st.req_ended_ = end_stream;
    if (st.local_) return; // nghttp2 already refused the stream
    if (!st.req_.finish()) {
        const auto& e = st.req_.error();
        count_reject(ws_, e.label);
        if (auto c = e.malformed ? std::optional(protection::Category::HttpIntrusion)
                                 : protection::refusal_category(e.status, e.label))
            ws_.report(*c, conn_.peer());
        st.access_.begin(ws_.gen()->access_log, ws_.next_request_id(), peer_text_, "-", "-");
        st.access_.set_reason(e.label);
        EP_INFO(kLog, "{}: stream {}: request refused: {} ({})", conn_.peer().str(), st.id_, e.label,
                e.detail);
        if (e.malformed)
            reset_stream(st, NGHTTP2_PROTOCOL_ERROR);
        else
            respond_local(st, e.status, e.label);
        return;
    }
    const auto& head = st.req_.head();
    st.head_request_ = head.method == "HEAD";
    if (st.req_.has_content_length() && st.req_.content_length() > max_body_) {
        count_reject(ws_, "body_too_large");
        st.access_.begin(ws_.gen()->access_log, ws_.next_request_id(), peer_text_, head.method, head.target);
        st.access_.set_reason("body_too_large");
        return respond_local(st, 413, "body_too_large");
    }
    auto g = gate_request(ws_, head, conn_.peer(), peer_text_);
    st.access_.begin(ws_.gen()->access_log, g.request_id, peer_text_, head.method, head.target);
    if (g.status) {
        st.access_.set_reason(g.reason);
        if (g.content_type.empty())
            if (auto c = protection::refusal_category(g.status, g.reason)) ws_.report(*c, conn_.peer());
        return respond_local(st, g.status, g.message, g.retry_after_s, g.allow, g.content_type);
    }
    // nghttp2 enforces SETTINGS_MAX_CONCURRENT_STREAMS only once the client acknowledged it: the link
    // streams one connection holds are capped here from the first frame on.
    size_t holding = 0;
    for (auto& [id, other] : streams_)
        if (other->holds_link()) ++holding;
    if (holding >= max_streams_) {
        ws_.counters().per_conn_full->inc();
        count_reject(ws_, "per_connection_streams");
        st.access_.set_reason("per_connection_streams");
        return reset_stream(st, NGHTTP2_REFUSED_STREAM);
    }
    st.slot_ = ws_.take_client_stream(conn_.peer());
    if (!st.slot_) {
        count_reject(ws_, "per_client_streams");
        st.access_.set_reason("per_client_streams");
        return respond_local(st, 429, "too many requests in progress from this address", 1);
    }
    st.method_ = head.method;
    st.expect_continue_ = !end_stream && head.headers.has_token("expect", "100-continue");
    std::erase_if(g.headers, [](const link::Header& h) { return h.first == "expect"; });
    st.link_headers_ = std::move(g.headers);
    if (g.link)
        open_on(st, g.link);
    else
        wait_for_link(st);
}

void H2Conn::arm_response_timer(H2Stream& st) {
    // From the end of the request on, only edge-c can be slow: a long upload is not a late answer.
    if (st.resp_started_) return;
    H2Stream* sp = &st;
    if (!st.timer_)
        st.timer_ =
            std::make_unique<core::Timer>(ws_.worker().loop(), [this, sp] { response_timed_out(*sp); });
    st.timer_->arm(response_timeout_ms_);
}

void H2Conn::on_request_end(H2Stream& st) {
    st.req_ended_ = true;
    if (st.ls_ && !st.local_) {
        st.ls_->end();
        arm_response_timer(st);
    }
}

void H2Conn::on_body(H2Stream& st, const char* data, size_t len) {
    st.body_bytes_ += len;
    st.access_.add_in(len);
    st.last_progress_ms_ = now();
    if (st.local_ || (!st.ls_ && !st.waiting_link_)) {
        nghttp2_session_consume_stream(session_, st.id_, len);
        return;
    }
    if (st.body_bytes_ > max_body_) {
        count_reject(ws_, "body_too_large");
        st.access_.set_reason("body_too_large");
        if (!st.resp_started_)
            respond_local(st, 413, "body_too_large");
        else
            reset_stream(st, NGHTTP2_CANCEL);
        nghttp2_session_consume_stream(session_, st.id_, len);
        return;
    }
    st.held_ += len;
    if (!st.ls_) {
        // Waiting for a link: kept, and the stream's window stays closed by that much (256 KiB at most).
        st.pending_.append(data, len);
        return;
    }
    st.body_sent_ = true;
    bool more = st.ls_->write(std::string_view(data, len));
    if (more) release_held(st); // else on_writable gives the window back
}

// ---- link side ----

void H2Stream::on_headers(link::LinkStream&, const link::Headers& headers) {
    if (resp_started_ || !c_.alive()) return; // trailers, or a late answer after a local one
    int status = 502;
    auto sv = link::header_value(headers, ":status");
    if (!sv.empty()) status = std::atoi(std::string(sv).c_str());
    if (status < 200) return; // interim responses are not relayed
    if (timer_) timer_->cancel();
    resp_started_ = true;
    access_.set_status(status);
    access_.set_upstream(link::header_value(headers, obs::kUpstreamHeader));
    resp_discard_ = head_request_ || status == 204 || status == 304;
    if (auto c = protection::answer_category(status)) c_.ws().report(*c, c_.conn().peer());
    // Views into the link's block: nghttp2 copies the response block when it is submitted.
    const std::string status_text = std::to_string(status);
    h2::FieldViews h;
    h.reserve(headers.size() + 1);
    h.emplace_back(":status", status_text);
    for (auto& [k, v] : headers) {
        if (k.empty() || k[0] == ':' || hop_by_hop(k)) continue;
        h.emplace_back(k, v);
    }
    c_.submit_response(*this, h, !resp_discard_);
}

void H2Stream::on_data(link::LinkStream& s, const char* data, size_t len) {
    if (!resp_started_ || resp_discard_ || local_) {
        s.consumed(len);
        return;
    }
    out_.append(std::string_view(data, len));
    c_.resume(*this);
}

void H2Stream::on_end(link::LinkStream&) {
    resp_eof_ = true;
    if (resp_started_ && !resp_discard_) c_.resume(*this);
    if (req_ended_ || !ls_) return; // the link stream closes by itself (on_close)
    // edge-c's answer is complete while the client is still sending: release the link stream now and
    // discard the rest of the upload (the client's window reopens as it arrives). RFC 9113 8.1 would let
    // edge-e reset the client's stream with NO_ERROR instead, but curl 7.88 (Debian 12) then fails a
    // request whose answer it has already received ("Stream error in the HTTP/2 framing layer").
    c_.ws().counters().early_releases->inc();
    local_ = true;
    if (timer_) timer_->cancel();
    c_.release_link(*this);
    c_.release_held(*this);
}

void H2Stream::on_writable(link::LinkStream&) {
    c_.release_held(*this);
}

void H2Stream::on_close(link::LinkStream&, const core::Failure& failure) {
    ls_ = nullptr;
    if (timer_) timer_->cancel();
    if (!failure || local_) {
        slot_.release();
        resp_eof_ = true;
        if (resp_started_ && !resp_discard_) c_.resume(*this);
        return;
    }
    EP_INFO(kLog, "{}: stream {}: link stream ended: {}", c_.conn().peer().str(), id_, failure.str());
    if (!resp_started_ && !retried_ && link_loss_retryable(failure, method_, body_sent_))
        return c_.retry(*this);
    slot_.release();
    access_.set_reason("link_error");
    if (!resp_started_) {
        c_.ws().counters().link_error(failure).inc();
        c_.respond_local(*this, 502, "traversal link to edge-c failed");
    } else {
        // The head is out: only a reset tells the client the body is truncated.
        c_.reset_stream(*this, NGHTTP2_INTERNAL_ERROR);
    }
}

} // namespace

std::unique_ptr<H2Session> make_h2_session(WorkerState& ws, net::Connection& conn) {
    return std::make_unique<H2Conn>(ws, conn);
}

} // namespace edgepair::edge_e
