#include "tools/edge-load/driver.h"

#include <algorithm>
#include <ctime>

#include "common/http/h1_parser.h"
#include "common/net/connection.h"
#include "tools/edge-load/source_addr.h"

namespace edgepair::load {

namespace {
// Idle scenario: handshakes in flight per driver while ramping up. Enough to ramp 10k connections in a few
// seconds, few enough that the target's accept queue (nginx/HAProxy default backlog 511) never overflows.
constexpr unsigned kRampConcurrency = 64;
// Open loop: arrivals waiting for a connection. Beyond this the target is hopelessly behind; counting the
// rest as "dropped" keeps the client's memory bounded instead of queueing a whole run's arrivals.
constexpr size_t kMaxBacklog = 100000;
// After a connect or handshake failure a slot waits this long before its next try, so that a dead target
// costs a bounded number of attempts per second rather than a busy loop.
constexpr uint64_t kRetryMs = 10;
// Once every slot is done, connections still closing get this long to send their close_notify.
constexpr uint64_t kGraceMs = 500;
} // namespace

uint64_t now_ns() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

struct Driver::Slot {
    unsigned idx = 0;
    SlotState st = SlotState::Free;
    std::unique_ptr<net::Connection> conn;
    std::unique_ptr<http::H1Parser> parser;
    bool op_active = false; // an operation (request or handshake) is charged to this slot
    uint64_t op_start = 0;  // its scheduled (open loop) or actual (closed loop) start, now_ns()
    bool waiting = false;   // in Driver::waiting_
    std::unique_ptr<core::Timer> op_timer, retry_timer;
};

Driver::Driver(core::Loop& loop, Shared& shared, Plan plan)
    : loop_(loop), sh_(shared), opt_(*shared.opt), plan_(plan), ops_left_(plan.ops),
      timeout_ms_(std::max<uint64_t>(1, uint64_t(opt_.timeout_s * 1000))) {}

Driver::~Driver() {
    // Connections first: their callbacks point at slots.
    for (auto& s : slots_) {
        if (s->conn) s->conn->set_callbacks({});
        s->conn.reset();
    }
}

void Driver::start() {
    tick_timer_ = std::make_unique<core::Timer>(loop_, [this] {
        if (opt_.scenario == Scenario::Idle)
            ramp();
        else
            tick();
    });
    publish_timer_ = std::make_unique<core::Timer>(loop_, [this] {
        publish();
        publish_timer_->arm(1000);
    });
    deadline_timer_ = std::make_unique<core::Timer>(loop_, [this] { on_deadline(); });
    grace_timer_ = std::make_unique<core::Timer>(loop_, [this] { finish(); });
    publish_timer_->arm(1000);
    uint64_t now = now_ns();
    deadline_timer_->arm(plan_.deadline_ns > now ? (plan_.deadline_ns - now) / 1000000 : 0);

    slots_.reserve(plan_.slots);
    for (unsigned i = 0; i < plan_.slots; ++i) {
        auto s = std::make_unique<Slot>();
        s->idx = i;
        Slot* sp = s.get();
        s->op_timer = std::make_unique<core::Timer>(loop_, [this, sp] { on_timeout(*sp); });
        s->retry_timer = std::make_unique<core::Timer>(loop_, [this, sp] { kick(*sp); });
        slots_.push_back(std::move(s));
    }

    if (opt_.scenario == Scenario::Idle) {
        ramp();
        return;
    }
    active_slots_ = unsigned(slots_.size());
    if (open_loop()) {
        interval_ns_ = std::max<uint64_t>(1, uint64_t(1e9 / plan_.rate));
        next_arrival_ = now_ns() + plan_.phase_ns;
        // Keep-alive scenarios connect up front, so that the first arrivals do not all pay for a handshake.
        // Arrivals that come before a connection is ready wait in the backlog, and that wait is charged.
        for (auto& s : slots_) {
            if (opt_.scenario == Scenario::Handshake)
                kick(*s);
            else
                open_conn(*s);
        }
        tick();
        return;
    }
    for (auto& s : slots_)
        kick(*s);
}

void Driver::kick(Slot& s) {
    if (s.st == SlotState::Done || finished_) return;
    if (stopping_) return slot_done(s);
    if (open_loop()) {
        if (!backlog_.empty()) {
            uint64_t t = backlog_.front();
            backlog_.pop_front();
            return begin_op(s, t);
        }
        if (ops_left_ == 0) return slot_done(s); // no arrival will ever come again
        if (!s.waiting) {
            s.waiting = true;
            waiting_.push_back(&s);
        }
        return;
    }
    if (ops_left_ == 0) return slot_done(s);
    --ops_left_;
    begin_op(s, now_ns());
}

void Driver::kick_later(Slot& s, uint64_t ms) {
    s.retry_timer->arm(ms);
}

void Driver::begin_op(Slot& s, uint64_t t_sched) {
    s.op_active = true;
    s.op_start = t_sched;
    ++stats_.attempts;
    // The timeout runs from the start of the work, not from the scheduled time: a backlog wait is charged
    // to latency, but it is not the target failing to answer.
    s.op_timer->arm(timeout_ms_);
    if (opt_.scenario == Scenario::Handshake) return open_conn(s);
    if (s.conn && s.st == SlotState::Ready) return send_request(s);
    if (!s.conn) open_conn(s);
    // Connecting: on_ready sends the request.
}

void Driver::open_conn(Slot& s) {
    SSL* ssl = sh_.tls ? sh_.tls->new_ssl(sh_.tls_name) : nullptr;
    std::string err;
    auto c = connect_from(loop_, sh_.addr, source_for(opt_, uint64_t(plan_.first_slot) + s.idx), ssl, &err);
    if (!c) {
        s.st = SlotState::Free;
        if (opt_.scenario == Scenario::Idle) {
            s.op_active = false;
            s.op_timer->cancel();
            stats_.err(ErrKind::Connect);
            return ramp_step_done();
        }
        if (s.op_active) return fail_op(s, ErrKind::Connect);
        stats_.err(ErrKind::Connect);
        return kick_later(s, kRetryMs);
    }
    s.conn = std::move(c);
    ++open_;
    s.st = SlotState::Connecting;
    if (opt_.scenario != Scenario::Idle || opt_.request)
        s.parser = std::make_unique<http::H1Parser>(http::H1Parser::Kind::Response);
    Slot* sp = &s;
    s.conn->set_callbacks({[this, sp] { on_ready(*sp); },
                           [this, sp](const char* d, size_t n) { on_data(*sp, d, n); },
                           [this, sp](std::string_view why) { on_close(*sp, why); }, nullptr});
    s.conn->start(); // may call on_close (and free the connection) before it returns
}

void Driver::send_request(Slot& s) {
    s.st = SlotState::Busy;
    s.conn->write(sh_.request);
}

void Driver::on_ready(Slot& s) {
    s.st = SlotState::Ready;
    ++stats_.connects;
    if (sh_.tls) ++stats_.handshakes;
    if (opt_.scenario == Scenario::Idle) {
        if (opt_.request) return send_request(s);
        s.op_active = false;
        s.op_timer->cancel();
        ++stats_.ok;
        ++stats_.idle_established;
        stats_.latency.record((now_ns() - s.op_start) / 1000);
        return ramp_step_done();
    }
    if (!s.op_active) {
        // Connected ahead of work (open loop): wait for an arrival.
        if (open_loop()) kick(s);
        return;
    }
    if (opt_.scenario == Scenario::Handshake && !opt_.request) {
        complete_op(s, 0);
        s.st = SlotState::Closing;
        s.conn->close(); // on_close starts the next operation
        return;
    }
    send_request(s);
}

void Driver::on_data(Slot& s, const char* data, size_t len) {
    size_t off = 0;
    // Every pass consumes bytes or reports an event that needs no bytes (HeadersComplete then
    // MessageComplete of a body-less response), so 2 passes per byte bound the loop.
    for (size_t guard = 0; guard < 2 * len + 4; ++guard) {
        if (s.st != SlotState::Busy) {
            // Bytes nobody asked for: a server that answers twice, or garbage on an idle keep-alive.
            stats_.err(ErrKind::Protocol);
            s.st = SlotState::Closing;
            s.conn->abort("unexpected bytes from the server");
            return;
        }
        auto r = s.parser->feed(data + off, len - off);
        off += r.consumed;
        switch (r.status) {
        case http::H1Parser::Status::NeedMore:
            return;
        case http::H1Parser::Status::HeadersComplete:
        case http::H1Parser::Status::Body:
            continue;
        case http::H1Parser::Status::Error:
            if (s.op_active) {
                s.op_active = false;
                s.op_timer->cancel();
            }
            stats_.err(ErrKind::Protocol);
            s.st = SlotState::Closing;
            s.conn->abort("unparsable response");
            return;
        case http::H1Parser::Status::MessageComplete: {
            int status = s.parser->response().status;
            bool keep = s.parser->keep_alive();
            bool ok = complete_op(s, status);
            net::Connection* before = s.conn.get();
            if (opt_.scenario == Scenario::Idle) {
                if (ok && keep) {
                    ++stats_.idle_established;
                    s.st = SlotState::Ready;
                } else {
                    s.st = SlotState::Closing;
                    s.conn->close();
                }
                ramp_step_done();
                return;
            }
            if (opt_.scenario == Scenario::Handshake || !keep) {
                s.st = SlotState::Closing;
                s.conn->close();
                return;
            }
            s.st = SlotState::Ready;
            kick(s);
            // Go on only if the next request went out on this same connection.
            if (s.conn.get() != before || s.st != SlotState::Busy || off == len) return;
            continue;
        }
        }
    }
}

bool Driver::complete_op(Slot& s, int status) {
    s.op_timer->cancel();
    s.op_active = false;
    if (status) {
        ++stats_.responses;
        int cls = status / 100;
        ++stats_.status_class[cls >= 1 && cls <= 5 ? size_t(cls) : 0];
    }
    bool ok = status == 0 || (opt_.expect_status ? status == *opt_.expect_status : status < 400);
    if (ok) {
        ++stats_.ok;
        stats_.latency.record((now_ns() - s.op_start) / 1000);
    } else {
        stats_.err(status >= 500 ? ErrKind::Http5xx : status >= 400 ? ErrKind::Http4xx : ErrKind::Protocol);
    }
    return ok;
}

void Driver::fail_op(Slot& s, ErrKind k) {
    s.op_active = false;
    s.op_timer->cancel();
    stats_.err(k);
    kick_later(s, k == ErrKind::Connect || k == ErrKind::Tls ? kRetryMs : 0);
}

void Driver::on_close(Slot& s, std::string_view why) {
    SlotState prev = s.st;
    s.conn.reset(); // we are inside the connection's last callback; it allows this
    s.parser.reset();
    --open_;
    if (prev == SlotState::Done) return maybe_finish();
    // Connection's reasons begin "connect to ..." for TCP failures and "tls handshake: ..." for TLS ones.
    ErrKind early = why.starts_with("connect") ? ErrKind::Connect : ErrKind::Tls;
    if (opt_.scenario == Scenario::Idle) {
        s.st = SlotState::Free;
        if (s.op_active) {
            s.op_active = false;
            s.op_timer->cancel();
            stats_.err(prev == SlotState::Connecting ? early : ErrKind::Protocol);
            ramp_step_done();
        } else if (prev == SlotState::Ready && !stopping_) {
            ++stats_.idle_closed_by_peer;
        }
        return;
    }
    s.st = SlotState::Free;
    if (stopping_) return;
    switch (prev) {
    case SlotState::Connecting:
        if (s.op_active) return fail_op(s, early);
        stats_.err(early); // an open-loop connection made ahead of work
        return kick_later(s, kRetryMs);
    case SlotState::Busy:
        if (s.op_active) return fail_op(s, ErrKind::Protocol); // closed before the response
        return kick(s);
    case SlotState::Closing:
        return kick(s);
    case SlotState::Ready:
        // The server closed an idle keep-alive connection: not an error. The next operation reconnects.
        if (!open_loop()) kick(s);
        return;
    case SlotState::Free:
    case SlotState::Done:
        return;
    }
}

void Driver::on_timeout(Slot& s) {
    if (!s.op_active) return;
    s.op_active = false;
    stats_.err(ErrKind::Timeout);
    if (opt_.scenario == Scenario::Idle) {
        if (s.conn) {
            s.st = SlotState::Closing;
            s.conn->abort("timeout");
        }
        return ramp_step_done();
    }
    if (s.conn) {
        s.st = SlotState::Closing;
        s.conn->abort("timeout"); // on_close kicks the slot
        return;
    }
    kick(s);
}

void Driver::slot_done(Slot& s) {
    if (s.st == SlotState::Done) return;
    if (s.waiting) {
        s.waiting = false;
        waiting_.erase(std::remove(waiting_.begin(), waiting_.end(), &s), waiting_.end());
    }
    s.st = SlotState::Done;
    s.retry_timer->cancel();
    s.op_timer->cancel();
    if (s.conn) s.conn->close(); // on_close arrives later with prev == Done
    --active_slots_;
    maybe_finish();
}

void Driver::maybe_finish() {
    if (finished_ || opt_.scenario == Scenario::Idle || active_slots_ > 0) return;
    if (open_ == 0) return finish();
    if (!grace_timer_->armed()) grace_timer_->arm(kGraceMs);
}

void Driver::tick() {
    if (stopping_) return;
    uint64_t now = now_ns();
    while (ops_left_ > 0 && next_arrival_ <= now) {
        --ops_left_;
        uint64_t t = next_arrival_;
        next_arrival_ += interval_ns_;
        if (!waiting_.empty()) {
            Slot* s = waiting_.back();
            waiting_.pop_back();
            s->waiting = false;
            begin_op(*s, t);
        } else if (backlog_.size() < kMaxBacklog) {
            backlog_.push_back(t);
        } else {
            ++stats_.attempts;
            stats_.err(ErrKind::Dropped);
        }
    }
    if (ops_left_ == 0) {
        // No arrival will come again: slots with nothing to do are finished.
        if (backlog_.empty()) {
            auto idle = waiting_;
            for (Slot* s : idle)
                slot_done(*s);
        }
        return;
    }
    uint64_t wait_ms = next_arrival_ > now ? (next_arrival_ - now) / 1000000 : 0;
    tick_timer_->arm(std::clamp<uint64_t>(wait_ms, 1, 1000));
}

void Driver::ramp() {
    while (!stopping_ && ramp_in_flight_ < kRampConcurrency && ramp_next_ < slots_.size()) {
        Slot& s = *slots_[ramp_next_++];
        ++ramp_in_flight_;
        s.op_active = true;
        s.op_start = now_ns();
        ++stats_.attempts;
        s.op_timer->arm(timeout_ms_);
        open_conn(s);
    }
}

void Driver::ramp_step_done() {
    --ramp_in_flight_;
    if (ramp_next_ == slots_.size() && ramp_in_flight_ == 0) {
        if (!ramp_reported_) {
            ramp_reported_ = true;
            publish();
            sh_.ramped.fetch_add(1);
            sh_.cv.notify_all();
        }
        return;
    }
    // Deferred: a failure inside ramp() would otherwise recurse once per failing connection.
    if (!tick_timer_->armed()) tick_timer_->arm(0);
}

void Driver::publish() {
    stats_.open_conns = open_;
    std::lock_guard<std::mutex> lk(pub_mu_);
    published_ = stats_;
}

Stats Driver::snapshot() const {
    std::lock_guard<std::mutex> lk(pub_mu_);
    return published_;
}

void Driver::on_deadline() {
    if (opt_.scenario == Scenario::Idle) {
        uint64_t alive = 0;
        for (auto& s : slots_)
            if (s->conn && s->st == SlotState::Ready) ++alive;
        stats_.idle_alive_at_end = alive;
    }
    finish();
}

void Driver::finish() {
    if (finished_) return;
    finished_ = true;
    stopping_ = true;
    for (auto& s : slots_) {
        if (s->op_active) ++stats_.unfinished;
        s->op_active = false;
        s->op_timer->cancel();
        s->retry_timer->cancel();
        s->st = SlotState::Done;
        if (s->conn) s->conn->abort("run over"); // on_close: prev == Done, nothing more
    }
    tick_timer_->cancel();
    publish_timer_->cancel();
    deadline_timer_->cancel();
    grace_timer_->cancel();
    publish();
    sh_.driver_finished();
    loop_.stop();
}

} // namespace edgepair::load
