#include "tools/edge-load/hold_driver.h"

#include <algorithm>

#include <fmt/format.h>

#include "common/core/version.h"
#include "common/http/b64_domain.h"
#include "common/net/connection.h"
#include "common/net/tls_context.h"
#include "tools/edge-load/source_addr.h"

namespace edgepair::load {

namespace {

// A server that closes a held connection at once must not turn --reopen into a busy loop: each slot waits
// this long before it dials again.
constexpr uint64_t kReopenDelayMs = 250;
// HTTP/2 frames we accept from the server: we never raise SETTINGS_MAX_FRAME_SIZE above its default.
constexpr size_t kMaxFramePayload = 16384;

enum : uint8_t { kData = 0x0, kHeaders = 0x1, kRstStream = 0x3, kSettings = 0x4, kPing = 0x6, kGoaway = 0x7 };
enum : uint8_t { kEndStream = 0x1, kAck = 0x1, kEndHeaders = 0x4 };

// Per-stream state of an h2-body connection.
enum : uint8_t { kStreamOpen = 0, kStreamAnswered = 1, kStreamReset = 2 };

std::string frame(uint8_t type, uint8_t flags, uint32_t stream, std::string_view payload) {
    std::string f;
    f.reserve(9 + payload.size());
    size_t n = payload.size();
    f += char((n >> 16) & 0xff);
    f += char((n >> 8) & 0xff);
    f += char(n & 0xff);
    f += char(type);
    f += char(flags);
    f += char((stream >> 24) & 0x7f);
    f += char((stream >> 16) & 0xff);
    f += char((stream >> 8) & 0xff);
    f += char(stream & 0xff);
    f += payload;
    return f;
}

// RFC 7541 5.1 integer with an N-bit prefix; `high` holds the representation's flag bits.
void hpack_int(std::string& out, uint64_t v, int prefix_bits, uint8_t high) {
    uint64_t max = (uint64_t(1) << prefix_bits) - 1;
    if (v < max) {
        out += char(high | uint8_t(v));
        return;
    }
    out += char(high | uint8_t(max));
    v -= max;
    while (v >= 128) {
        out += char(uint8_t(v % 128) | 0x80);
        v /= 128;
    }
    out += char(uint8_t(v));
}

// Literal without indexing (RFC 7541 6.2.2), name from the static table, raw (not Huffman) value: the
// server's dynamic table stays empty, so every stream's block is the same bytes.
void hpack_literal(std::string& out, unsigned name_index, std::string_view value) {
    hpack_int(out, name_index, 4, 0x00);
    hpack_int(out, value.size(), 7, 0x00);
    out += value;
}

// RFC 7541 appendix A static table indices.
constexpr unsigned kAuthority = 1, kMethod = 2, kPath = 4, kAuthorization = 23, kContentLength = 28,
                   kContentType = 31, kUserAgent = 58;

uint32_t stream_id(unsigned i) {
    return 2 * i + 1;
}

} // namespace

HoldRequest build_hold_request(const Options& o) {
    HoldRequest r;
    std::string path = o.path;
    std::string host =
        !o.sni.empty() ? o.sni : (o.host.find(':') != std::string::npos ? "[" + o.host + "]" : o.host);
    if (o.port != (o.plain ? 80 : 443)) host += fmt::format(":{}", o.port);
    std::string auth;
    if (!o.user.empty()) auth = "Basic " + http::base64_encode(o.user + ":" + o.password);
    std::string ua = fmt::format("edge-load/{}", kVersion);

    if (o.hold_mode == HoldMode::H2Body) {
        r.first = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(kSettings, 0, 0, {});
        std::string& b = r.h2_block;
        if (o.method == "POST")
            b += char(0x83); // indexed :method POST
        else
            hpack_literal(b, kMethod, o.method);
        b += char(o.plain ? 0x86 : 0x87); // indexed :scheme http / https
        hpack_literal(b, kPath, path);
        hpack_literal(b, kAuthority, host);
        hpack_literal(b, kContentLength, std::to_string(o.body_length));
        hpack_literal(b, kContentType, "application/octet-stream");
        hpack_literal(b, kUserAgent, ua);
        if (!auth.empty()) hpack_literal(b, kAuthorization, auth);
        r.h2_body.assign(o.body_sent, 'x');
        return r;
    }
    std::string head =
        fmt::format("{} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: {}\r\n", o.method, path, host, ua);
    if (!auth.empty()) head += "Authorization: " + auth + "\r\n";
    if (o.hold_mode == HoldMode::Head) {
        // Cut in the middle of a header value: the server can neither finish the head nor call it
        // malformed; --trickle adds to this value.
        r.first = head + "X-Hold: ";
        return r;
    }
    head +=
        fmt::format("Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n", o.body_length);
    r.first = head + std::string(o.body_sent, 'x');
    return r;
}

struct HoldDriver::Slot {
    enum class St { Idle, Setup, Held, Done };
    unsigned idx = 0; // global index: picks the source address
    St st = St::Idle;
    bool tried = false; // the first set-up of this slot has ended (well or not)
    std::unique_ptr<net::Connection> conn;
    std::unique_ptr<core::Timer> setup_timer;
    uint64_t setup_ns = 0, sent_ns = 0;
    uint64_t trickled = 0;
    bool answered = false;        // h1
    std::string in;               // h1: the start of the answer; h2: an incomplete frame
    std::vector<uint8_t> streams; // h2: kStream* per stream
};

HoldDriver::HoldDriver(core::Loop& loop, Shared& shared, const HoldRequest& req, Plan plan)
    : loop_(loop), sh_(shared), opt_(*shared.opt), req_(req), plan_(plan), first_round_left_(plan.slots) {}

HoldDriver::~HoldDriver() {
    for (auto& s : slots_) {
        if (s->conn) s->conn->set_callbacks({});
        s->conn.reset();
    }
}

void HoldDriver::start() {
    start_ns_ = now_ns();
    ramp_timer_ = std::make_unique<core::Timer>(loop_, [this] { ramp(); });
    publish_timer_ = std::make_unique<core::Timer>(loop_, [this] {
        publish();
        publish_timer_->arm(1000);
    });
    deadline_timer_ = std::make_unique<core::Timer>(loop_, [this] { on_deadline(); });
    trickle_timer_ = std::make_unique<core::Timer>(loop_, [this] { trickle(); });
    publish_timer_->arm(1000);
    deadline_timer_->arm(plan_.deadline_ns > start_ns_ ? (plan_.deadline_ns - start_ns_) / 1000000 : 0);
    if (opt_.trickle_s > 0) trickle_timer_->arm(uint64_t(opt_.trickle_s * 1000));

    slots_.reserve(plan_.slots);
    for (unsigned i = 0; i < plan_.slots; ++i) {
        auto s = std::make_unique<Slot>();
        s->idx = plan_.first_slot + i;
        Slot* sp = s.get();
        s->setup_timer = std::make_unique<core::Timer>(loop_, [this, sp] { on_setup_timeout(*sp); });
        pending_.push_back(sp);
        slots_.push_back(std::move(s));
    }
    if (first_round_left_ == 0) {
        sh_.ramped.fetch_add(1);
        sh_.cv.notify_all();
    }
    ramp();
}

void HoldDriver::ramp() {
    if (finished_) return;
    uint64_t now = now_ns();
    while (!reopen_at_.empty() && reopen_at_.front().first <= now) {
        pending_.push_back(reopen_at_.front().second);
        reopen_at_.pop_front();
    }
    while (in_flight_ < opt_.ramp && !pending_.empty() && !finished_) {
        Slot* s = pending_.front();
        pending_.pop_front();
        ++in_flight_;
        open(*s); // a failure ends in setup_done, which re-arms this timer rather than recursing
    }
    if (!reopen_at_.empty() && !ramp_timer_->armed()) {
        uint64_t due = reopen_at_.front().first;
        ramp_timer_->arm(due > now ? (due - now) / 1000000 + 1 : 0);
    }
}

void HoldDriver::open(Slot& s) {
    s.st = Slot::St::Setup;
    s.setup_ns = now_ns();
    s.answered = false;
    s.trickled = 0;
    s.in.clear();
    s.streams.clear();
    ++stats_.attempts;
    SSL* ssl = nullptr;
    if (sh_.tls) {
        ssl = sh_.tls->new_ssl(sh_.tls_name);
        // Tens of thousands of idle TLS connections: without this each keeps ~34 KB of record buffers.
        if (ssl) SSL_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
    }
    // One source address per connection (round robin over the range): whatever a server caps per client
    // address, these look like that many different clients.
    std::string err;
    s.conn = connect_from(loop_, sh_.addr, source_for(opt_, s.idx), ssl, &err);
    if (!s.conn) {
        stats_.err(ErrKind::Connect);
        return setup_done(s, false);
    }
    ++open_;
    Slot* sp = &s;
    s.conn->set_callbacks({[this, sp] { on_ready(*sp); },
                           [this, sp](const char* d, size_t n) { on_data(*sp, d, n); },
                           [this, sp](std::string_view why) { on_close(*sp, why); }, nullptr});
    s.setup_timer->arm(std::max<uint64_t>(1, uint64_t(opt_.timeout_s * 1000)));
    s.conn->start(); // may end in on_close before it returns
}

void HoldDriver::on_ready(Slot& s) {
    s.setup_timer->cancel();
    ++stats_.connects;
    if (sh_.tls) ++stats_.handshakes;
    if (opt_.hold_mode == HoldMode::H2Body && sh_.tls && net::alpn_of(s.conn->ssl()) != "h2") {
        stats_.err(ErrKind::Protocol);
        s.st = Slot::St::Idle;
        setup_done(s, false);
        s.conn->abort("the server did not choose h2");
        return;
    }
    uint64_t n = 1;
    if (opt_.hold_mode == HoldMode::H2Body) {
        // One write: the preface, our SETTINGS, then every stream's HEADERS and DATA back to back, without
        // waiting for the server's SETTINGS (RFC 9113 3.4 allows it); streams beyond its
        // SETTINGS_MAX_CONCURRENT_STREAMS come back as RST_STREAM, and are counted so.
        std::string out = req_.first;
        n = opt_.streams;
        s.streams.assign(n, kStreamOpen);
        for (unsigned i = 0; i < n; ++i) {
            out += frame(kHeaders, kEndHeaders, stream_id(i), req_.h2_block);
            if (!req_.h2_body.empty()) out += frame(kData, 0, stream_id(i), req_.h2_body);
        }
        s.conn->write(out);
    } else {
        s.conn->write(req_.first);
    }
    s.st = Slot::St::Held;
    s.sent_ns = now_ns();
    ++stats_.ok;
    ++stats_.hold_established;
    stats_.hold_requests += n;
    stats_.latency.record((s.sent_ns - s.setup_ns) / 1000);
    setup_done(s, true);
}

void HoldDriver::on_data(Slot& s, const char* data, size_t len) {
    if (s.st != Slot::St::Held) return;
    if (opt_.hold_mode == HoldMode::H2Body) return on_h2_data(s, data, len);
    on_h1_data(s, data, len);
}

void HoldDriver::on_h1_data(Slot& s, const char* data, size_t len) {
    if (s.answered) return;            // the rest of the answer (and anything after it) tells us nothing more
    constexpr size_t kStatusLine = 12; // "HTTP/1.1 401"
    s.in.append(data, std::min(len, kStatusLine - std::min(kStatusLine, s.in.size())));
    if (s.in.size() < kStatusLine) return;
    s.answered = true;
    ++stats_.responses;
    ++stats_.hold_answered;
    stats_.hold_answer_after_ms.record((now_ns() - s.sent_ns) / 1000000);
    int status = 0;
    if (s.in.starts_with("HTTP/1.") && s.in[8] == ' ')
        for (size_t i = 9; i < 12 && s.in[i] >= '0' && s.in[i] <= '9'; ++i)
            status = status * 10 + (s.in[i] - '0');
    int cls = status / 100;
    ++stats_.status_class[status >= 100 && cls <= 5 ? size_t(cls) : 0];
    std::string().swap(s.in);
}

void HoldDriver::on_h2_data(Slot& s, const char* data, size_t len) {
    s.in.append(data, len);
    size_t off = 0;
    // Each pass consumes one whole frame, so the frames in the buffer bound the loop.
    for (size_t guard = 0; guard <= s.in.size() / 9; ++guard) {
        if (s.in.size() - off < 9) break;
        auto* p = reinterpret_cast<const uint8_t*>(s.in.data() + off);
        size_t n = (size_t(p[0]) << 16) | (size_t(p[1]) << 8) | p[2];
        uint8_t type = p[3], flags = p[4];
        uint32_t sid =
            ((uint32_t(p[5]) & 0x7f) << 24) | (uint32_t(p[6]) << 16) | (uint32_t(p[7]) << 8) | p[8];
        if (n > kMaxFramePayload) {
            stats_.err(ErrKind::Protocol);
            s.conn->abort("oversized HTTP/2 frame from the server");
            return;
        }
        if (s.in.size() - off < 9 + n) break;
        std::string_view payload(s.in.data() + off + 9, n);
        off += 9 + n;
        // Our streams are 1, 3, 5, ...: index (sid - 1) / 2.
        uint8_t* st = nullptr;
        if ((sid & 1) && (sid - 1) / 2 < s.streams.size()) st = &s.streams[(sid - 1) / 2];
        switch (type) {
        case kSettings:
            if (!(flags & kAck)) s.conn->write(frame(kSettings, kAck, 0, {}));
            break;
        case kPing:
            if (!(flags & kAck)) s.conn->write(frame(kPing, kAck, 0, payload));
            break;
        case kHeaders:
            if (st && *st == kStreamOpen) {
                // Not counted in `responses`/`status`: the status is HPACK-coded (Huffman, dynamic table),
                // and which status it was matters less here than that the server answered at all.
                *st = kStreamAnswered;
                ++stats_.hold_answered;
                stats_.hold_answer_after_ms.record((now_ns() - s.sent_ns) / 1000000);
            }
            break;
        case kRstStream:
            if (st && *st != kStreamReset) {
                *st = kStreamReset;
                ++stats_.hold_reset;
            }
            break;
        case kGoaway:
            ++stats_.hold_goaway;
            break;
        default:
            break; // DATA, WINDOW_UPDATE, ...: nothing to answer (we never read far enough to need window)
        }
    }
    s.in.erase(0, off);
}

void HoldDriver::on_close(Slot& s, std::string_view why) {
    s.conn.reset(); // inside the connection's last callback, which allows it
    --open_;
    s.setup_timer->cancel();
    Slot::St prev = s.st;
    if (prev == Slot::St::Done) return;
    s.st = Slot::St::Idle;
    uint64_t now = now_ns();
    if (prev == Slot::St::Setup) {
        stats_.err(why.starts_with("connect") ? ErrKind::Connect : ErrKind::Tls);
        setup_done(s, false);
    } else if (prev == Slot::St::Held) {
        ++stats_.hold_closed_by_peer;
        stats_.hold_close_after_ms.record((now - s.sent_ns) / 1000000);
        stats_.hold_closed_at_ms.record((now - start_ns_) / 1000000);
    }
    if (opt_.reopen && !finished_ && prev == Slot::St::Held) {
        ++stats_.hold_reopened;
        reopen_at_.emplace_back(now + kReopenDelayMs * 1000000, &s);
        if (!ramp_timer_->armed()) ramp_timer_->arm(kReopenDelayMs);
    }
}

void HoldDriver::on_setup_timeout(Slot& s) {
    if (s.st != Slot::St::Setup || !s.conn) return;
    stats_.err(ErrKind::Timeout);
    s.st = Slot::St::Idle; // on_close must not count it twice
    setup_done(s, false);
    s.conn->abort("set-up timed out");
}

void HoldDriver::setup_done(Slot& s, bool ok) {
    --in_flight_;
    if (!ok && opt_.reopen && !finished_ && s.tried)
        reopen_at_.emplace_back(now_ns() + kReopenDelayMs * 1000000, &s);
    if (!s.tried) {
        s.tried = true;
        if (--first_round_left_ == 0) {
            publish();
            sh_.ramped.fetch_add(1);
            sh_.cv.notify_all();
        }
    }
    // Deferred: calling ramp() from here would recurse once per connection that fails at once.
    if (!finished_ && !ramp_timer_->armed()) ramp_timer_->arm(0);
}

void HoldDriver::trickle() {
    if (finished_) return;
    for (auto& sp : slots_) {
        Slot& s = *sp;
        if (s.st != Slot::St::Held || !s.conn) continue;
        switch (opt_.hold_mode) {
        case HoldMode::Head:
            s.conn->write("a");
            break;
        case HoldMode::Body:
            // Never the last byte: the request must stay unfinished.
            if (opt_.body_sent + s.trickled + 1 >= opt_.body_length) continue;
            s.conn->write("x");
            break;
        case HoldMode::H2Body: {
            if (opt_.body_sent + s.trickled + 1 >= opt_.body_length) continue;
            std::string out;
            for (size_t i = 0; i < s.streams.size(); ++i)
                if (s.streams[i] != kStreamReset) out += frame(kData, 0, stream_id(unsigned(i)), "x");
            if (!out.empty()) s.conn->write(out);
            break;
        }
        }
        ++s.trickled;
    }
    trickle_timer_->arm(uint64_t(opt_.trickle_s * 1000));
}

void HoldDriver::publish() {
    stats_.open_conns = open_;
    uint64_t open_requests = 0;
    for (auto& s : slots_) {
        if (s->st != Slot::St::Held || !s->conn) continue;
        if (opt_.hold_mode == HoldMode::H2Body) {
            for (auto st : s->streams)
                open_requests += st == kStreamOpen;
        } else {
            open_requests += !s->answered;
        }
    }
    stats_.hold_open_requests = open_requests;
    stats_.hold_peak_open_requests = std::max(stats_.hold_peak_open_requests, open_requests);
    std::lock_guard<std::mutex> lk(pub_mu_);
    published_ = stats_;
}

Stats HoldDriver::snapshot() const {
    std::lock_guard<std::mutex> lk(pub_mu_);
    return published_;
}

void HoldDriver::on_deadline() {
    publish();
    uint64_t alive = 0;
    for (auto& s : slots_)
        alive += s->st == Slot::St::Held && s->conn;
    stats_.hold_alive_at_end = alive;
    stats_.hold_open_requests_at_end = stats_.hold_open_requests;
    finish();
}

void HoldDriver::finish() {
    if (finished_) return;
    finished_ = true;
    for (auto& s : slots_) {
        if (s->st == Slot::St::Setup) ++stats_.unfinished;
        s->st = Slot::St::Done;
        s->setup_timer->cancel();
        if (s->conn) s->conn->abort("run over"); // on_close: Done, nothing more
    }
    ramp_timer_->cancel();
    publish_timer_->cancel();
    deadline_timer_->cancel();
    trickle_timer_->cancel();
    publish();
    sh_.driver_finished();
    loop_.stop();
}

} // namespace edgepair::load
