#include "tools/edge-load/session_driver.h"

#include <algorithm>
#include <charconv>
#include <cstdio>

#include <fmt/format.h>

#include "tools/edge-load/source_addr.h"

namespace edgepair::load {

namespace {
// Sessions being set up at once per driver: enough to bring up thousands of registrations in seconds, few
// enough that edge-e's accept queue and the upstreams' login handling are not flooded at start.
constexpr unsigned kRampConcurrency = 64;
// A lost session is set up again after this pause, so a dead target costs a bounded number of tries/s.
constexpr uint64_t kReconnectMs = 200;
// The shortest pause after a failed operation in closed loop (a wrong password must not spin).
constexpr uint64_t kRetryMs = 10;
// Sessions closing cleanly at the end (XMPP </stream:stream>) get this long before the loop stops.
constexpr uint64_t kGraceMs = 500;
// Open loop, as in Driver: arrivals beyond this while no session is free are dropped, which bounds the
// client's memory when the target cannot keep up.
constexpr size_t kMaxBacklog = 100000;
// Error reasons printed per thread: enough to diagnose a run, not a flood when the target is down.
constexpr unsigned kMaxNotes = 5;
} // namespace

std::vector<std::string> step_names(Scenario s) {
    switch (s) {
    case Scenario::SipRegister:
        return {"connect"};
    case Scenario::SipCall:
        return {"connect", "register", "call"};
    case Scenario::Xmpp:
        return {"connect", "starttls", "auth", "bind", "login"};
    case Scenario::MraLogin: {
        std::vector<std::string> v;
        for (size_t i = 0; i < kMraSteps; ++i)
            v.emplace_back(mra_step_name(i));
        return v;
    }
    case Scenario::SignIn: {
        std::vector<std::string> v;
        for (size_t i = 0; i < kSignInSteps; ++i)
            v.emplace_back(sign_in_step_name(i));
        return v;
    }
    default:
        return {};
    }
}

struct SessionDriver::Slot {
    unsigned idx = 0;   // global session index
    size_t target = 0;  // sign-in: index of the --target the current sign-in went to
    unsigned local = 0; // index in slots_
    SipClientConfig sip_cfg;
    XmppClientConfig xmpp_cfg;
    std::unique_ptr<SipClient> sip;
    std::unique_ptr<XmppClient> xmpp;
    std::unique_ptr<MraLogin> login;
    bool up = false, done = false, waiting = false, op_active = false, expect_close = false;
    bool queued = false, establishing = false, registered_once = false, ping_pending = false;
    uint64_t op_start = 0, setup_start = 0, ops = 0, seq = 0;
    uint64_t answered_ns = 0; // sip-call: when the current call's INVITE got its 2xx
    uint32_t granted = 0;
    std::unique_ptr<core::Timer> op_timer, next_timer, ka_timer, setup_timer;
};

SessionDriver::SessionDriver(core::Loop& loop, Shared& shared, Plan plan)
    : loop_(loop), sh_(shared), opt_(*shared.opt), plan_(plan), rng_(std::random_device{}()),
      ops_left_(plan.ops), timeout_ms_(std::max<uint64_t>(1, uint64_t(opt_.timeout_s * 1000))) {
    const bool sip = opt_.scenario == Scenario::SipRegister || opt_.scenario == Scenario::SipCall;
    double ka = opt_.keepalive_s ? *opt_.keepalive_s : sip ? 120.0 : 60.0;
    keepalive_ms_ = uint64_t(ka * 1000);
    stats_.steps.resize(step_names(opt_.scenario).size());
    if (opt_.scenario == Scenario::SignIn) stats_.by_target.resize(sh_.targets.size());
}

SessionDriver::~SessionDriver() = default;

void SessionDriver::note(ErrKind k, std::string_view why) {
    if (notes_ >= kMaxNotes) return;
    ++notes_;
    std::fprintf(stderr, "edge-load: %s: %.*s%s\n", std::string(err_name(k)).c_str(),
                 int(std::min<size_t>(why.size(), 300)), why.data(),
                 notes_ == kMaxNotes ? " (further errors on this thread are counted, not shown)" : "");
}

void SessionDriver::start() {
    tick_timer_ = std::make_unique<core::Timer>(loop_, [this] { tick(); });
    publish_timer_ = std::make_unique<core::Timer>(loop_, [this] {
        publish();
        publish_timer_->arm(1000);
    });
    deadline_timer_ = std::make_unique<core::Timer>(loop_, [this] { on_deadline(); });
    grace_timer_ = std::make_unique<core::Timer>(loop_, [this] { finish(); });
    reap_timer_ = std::make_unique<core::Timer>(loop_, [this] {
        dead_sip_.clear();
        dead_xmpp_.clear();
        dead_login_.clear();
    });
    publish_timer_->arm(1000);
    uint64_t now = now_ns();
    deadline_timer_->arm(plan_.deadline_ns > now ? (plan_.deadline_ns - now) / 1000000 : 0);

    if (opt_.scenario == Scenario::MraLogin) {
        net::ResolverOptions ro;
        ro.servers = {opt_.dns};
        ro.use_hosts_file = false; // the names are the test DNS server's, never the machine's
        auto r = net::Resolver::create(loop_, ro);
        if (!r) {
            note(ErrKind::Dns, r.error().message);
            stats_.err(ErrKind::Dns);
            return finish();
        }
        resolver_ = std::move(*r);
    }

    for (unsigned i = 0; i < plan_.slots; ++i) {
        auto s = std::make_unique<Slot>();
        s->idx = plan_.first_slot + i;
        s->local = i;
        Slot* sp = s.get();
        s->op_timer = std::make_unique<core::Timer>(loop_, [this, sp] { on_op_timeout(*sp); });
        s->next_timer = std::make_unique<core::Timer>(loop_, [this, sp] { kick(*sp); });
        s->ka_timer = std::make_unique<core::Timer>(loop_, [this, sp] { on_keepalive(*sp); });
        s->setup_timer = std::make_unique<core::Timer>(loop_, [this, sp] {
            if (!sp->establishing) return;
            stats_.err(ErrKind::Timeout);
            note(ErrKind::Timeout, "session set-up took longer than --timeout");
            sp->expect_close = true;
            if (sp->sip) sp->sip->abort("set-up timeout");
            if (sp->xmpp) sp->xmpp->abort("set-up timeout");
        });
        // Every login starts from nothing.
        if (opt_.scenario == Scenario::MraLogin || opt_.scenario == Scenario::SignIn) s->up = true;
        slots_.push_back(std::move(s));
    }
    active_slots_ = unsigned(slots_.size());
    if (open_loop()) {
        interval_ns_ = std::max<uint64_t>(1, uint64_t(1e9 / plan_.rate));
        next_arrival_ = now_ns() + plan_.phase_ns;
    }
    for (auto& s : slots_)
        kick(*s);
    if (open_loop()) tick();
}

bool SessionDriver::usable(const Slot& s) const {
    switch (opt_.scenario) {
    case Scenario::SipRegister:
        return s.up && s.sip && s.sip->connected() && !s.sip->in_transaction();
    case Scenario::SipCall:
        return s.up && s.sip && s.sip->registered() && !s.sip->in_transaction();
    case Scenario::Xmpp: {
        const Slot& p = *slots_[(s.local + 1) % slots_.size()];
        return s.up && s.xmpp && p.up && p.xmpp && p.xmpp->up();
    }
    default:
        return s.up;
    }
}

void SessionDriver::bury(Slot& s) {
    if (s.sip) dead_sip_.push_back(std::move(s.sip));
    if (s.xmpp) dead_xmpp_.push_back(std::move(s.xmpp));
    if (s.login) dead_login_.push_back(std::move(s.login));
    if (!reap_timer_->armed()) reap_timer_->arm(0);
}

void SessionDriver::establish(Slot& s) {
    if (stopping_ || s.done) return;
    s.establishing = true;
    ++establishing_;
    s.setup_start = now_ns();
    s.setup_timer->arm(timeout_ms_);
    std::string err;
    bool started = false;
    Slot* sp = &s;
    if (opt_.scenario == Scenario::SipRegister || opt_.scenario == Scenario::SipCall) {
        // sip-register: the session is the TLS connection and the operations are REGISTERs on it. sip-call:
        // the session is a registered flow (a Jabber client calls only once registered) and the operations
        // are calls on it.
        const bool calls = opt_.scenario == Scenario::SipCall;
        s.sip_cfg = {sh_.addr,      sh_.tls,     sh_.tls_name, user_for(opt_, s.idx),
                     opt_.password, opt_.domain, opt_.expires};
        s.sip_cfg.media_s = opt_.media_s;
        s.sip_cfg.source = source_for(opt_, s.idx);
        SipClient::Events ev;
        ev.on_connected = [this, sp, calls] {
            ++stats_.connects;
            ++stats_.handshakes;
            stats_.step(0, (now_ns() - sp->setup_start) / 1000);
            if (calls)
                sp->sip->register_now(opt_.expires);
            else
                session_up(*sp);
        };
        ev.on_registered = [this, sp, calls](uint32_t granted, bool challenged) {
            sp->granted = granted;
            if (challenged) ++stats_.auth_challenges;
            if (!sp->registered_once) ++stats_.logins;
            sp->registered_once = true;
            if (!calls) return complete_op(*sp);
            stats_.step(1, (now_ns() - sp->setup_start) / 1000);
            session_up(*sp);
        };
        ev.on_answered = [this, sp] {
            ++stats_.calls_answered;
            sp->answered_ns = now_ns();
        };
        ev.on_media = [this](const MediaCounts& c) {
            stats_.media_sent += c.sent;
            stats_.media_received += c.received;
            stats_.media_bad += c.bad;
        };
        ev.on_call_done = [this, sp] {
            stats_.step(2, (now_ns() - sp->op_start) / 1000);
            complete_op(*sp, sp->answered_ns); // the latency is the set-up
        };
        ev.on_failed = [this, sp](ErrKind k, std::string_view why) {
            if (sp->up) return fail_op(*sp, k, why);
            // sip-call's registration failed: counted here, and the session starts over on a new connection.
            stats_.err(k);
            note(k, fmt::format("session set-up: REGISTER: {}", why));
            sp->expect_close = true;
            if (sp->sip) sp->sip->abort("REGISTER failed");
        };
        ev.on_pong = [this, sp] {
            ++stats_.keepalive_pongs;
            sp->ping_pending = false;
        };
        ev.on_closed = [this, sp](ErrKind k, std::string_view why) {
            bury(*sp);
            session_lost(*sp, k, why);
        };
        s.sip = std::make_unique<SipClient>(loop_, s.sip_cfg, rng_, std::move(ev));
        started = s.sip->connect(&err);
    } else {
        s.xmpp_cfg = {sh_.addr,
                      sh_.tls,
                      opt_.sni.empty() ? opt_.domain : opt_.sni,
                      opt_.domain,
                      user_for(opt_, s.idx),
                      opt_.password,
                      fmt::format("{}-{}", opt_.resource, s.idx),
                      source_for(opt_, s.idx)};
        XmppClient::Events ev;
        ev.on_up = [this, sp](const std::string&, const XmppLoginTimes& t) {
            stats_.step(0, t.connect);
            stats_.step(1, t.starttls);
            stats_.step(2, t.auth);
            stats_.step(3, t.bind);
            stats_.step(4, t.total);
            ++stats_.connects;
            ++stats_.handshakes; // STARTTLS
            ++stats_.logins;
            session_up(*sp);
        };
        ev.on_message = [this, sp](std::string_view id, bool error) { on_xmpp_message(*sp, id, error); };
        ev.on_failed = [this, sp](ErrKind k, std::string_view why) {
            if (stopping_) return;
            stats_.err(k);
            note(k, why);
            sp->expect_close = true; // the close that follows is this failure, counted once
        };
        ev.on_closed = [this, sp](ErrKind k, std::string_view why) {
            bury(*sp);
            session_lost(*sp, k, why);
        };
        s.xmpp = std::make_unique<XmppClient>(loop_, s.xmpp_cfg, std::move(ev));
        started = s.xmpp->connect(&err);
    }
    if (!started) {
        bury(s);
        s.establishing = false;
        --establishing_;
        s.setup_timer->cancel();
        stats_.err(ErrKind::Connect);
        note(ErrKind::Connect, err);
        s.next_timer->arm(kReconnectMs);
        ramp();
    }
}

void SessionDriver::ramp() {
    while (!stopping_ && establishing_ < kRampConcurrency && !to_establish_.empty()) {
        Slot* s = to_establish_.front();
        to_establish_.pop_front();
        s->queued = false;
        establish(*s);
    }
}

void SessionDriver::session_up(Slot& s) {
    if (s.establishing) {
        s.establishing = false;
        --establishing_;
    }
    s.setup_timer->cancel();
    s.up = true;
    if (keepalive_ms_) s.ka_timer->arm(keepalive_ms_);
    ramp();
    kick(s);
    if (opt_.scenario == Scenario::Xmpp && slots_.size() > 1) {
        // Its predecessor sends to it: it may have been waiting for this session.
        Slot& pred = *slots_[(s.local + slots_.size() - 1) % slots_.size()];
        if (!pred.op_active && !pred.next_timer->armed()) kick(pred);
    }
}

void SessionDriver::session_lost(Slot& s, ErrKind k, std::string_view why) {
    bool was_establishing = s.establishing;
    s.up = false;
    s.ping_pending = false;
    s.ka_timer->cancel();
    if (s.waiting) {
        s.waiting = false;
        waiting_.erase(std::remove(waiting_.begin(), waiting_.end(), &s), waiting_.end());
    }
    if (s.establishing) {
        s.establishing = false;
        --establishing_;
        s.setup_timer->cancel();
    }
    if (s.op_active) {
        s.op_active = false;
        s.op_timer->cancel();
    }
    bool counted = s.expect_close;
    s.expect_close = false;
    if (stopping_ || finished_) return maybe_finish();
    if (!counted) {
        stats_.err(k);
        note(k, fmt::format("{}: {}", was_establishing ? "session set-up" : "session lost", why));
    }
    if (s.done) return;
    s.next_timer->arm(kReconnectMs);
    ramp();
}

void SessionDriver::kick(Slot& s) {
    if (s.done || finished_) return;
    if (stopping_) return slot_done(s);
    if (!s.up) {
        if (!s.establishing && !s.queued) {
            s.queued = true;
            to_establish_.push_back(&s);
            ramp();
        }
        return;
    }
    if (s.op_active) return;
    bool capped = opt_.messages && s.ops >= *opt_.messages;
    if (open_loop()) {
        if (!backlog_.empty() && usable(s) && !capped) {
            uint64_t t = backlog_.front();
            backlog_.pop_front();
            return begin_op(s, t);
        }
        if ((ops_left_ == 0 && backlog_.empty()) || capped) return slot_done(s);
        if (!s.waiting) {
            s.waiting = true;
            waiting_.push_back(&s);
        }
        return;
    }
    if (ops_left_ == 0 || capped) return slot_done(s);
    if (!usable(s)) return; // kicked again when its session (or its XMPP partner) comes up
    --ops_left_;
    begin_op(s, now_ns());
}

void SessionDriver::begin_op(Slot& s, uint64_t t_sched) {
    s.op_active = true;
    s.op_start = t_sched;
    ++s.ops;
    ++stats_.attempts;
    // A call's media time is planned, not waited for: --timeout bounds the rest of the call.
    s.op_timer->arm(timeout_ms_ + (opt_.scenario == Scenario::SipCall ? uint64_t(opt_.media_s * 1000) : 0));
    Slot* sp = &s;
    switch (opt_.scenario) {
    case Scenario::SipRegister:
        s.sip->register_now(opt_.expires);
        return;
    case Scenario::SipCall:
        ++stats_.invites_sent;
        s.answered_ns = 0;
        s.sip->call(opt_.callee);
        return;
    case Scenario::Xmpp: {
        Slot& p = *slots_[(s.local + 1) % slots_.size()];
        ++s.seq;
        ++stats_.messages_sent;
        s.xmpp->send_message(p.xmpp->jid(), fmt::format("el{}-{}", s.local, s.seq),
                             fmt::format("edge-load message {} from session {}", s.seq, s.idx));
        return;
    }
    case Scenario::MraLogin:
        s.login = std::make_unique<MraLogin>(loop_, resolver_.get(), opt_, sh_.tls, rng_, s.idx,
                                             [this, sp](const MraLogin::Result& r) {
                                                 bury(*sp); // we are inside the login object
                                                 for (size_t i = 0; i < r.steps_done; ++i)
                                                     stats_.step(i, r.step_us[i]);
                                                 if (r.challenged) ++stats_.auth_challenges;
                                                 stats_.connects += r.connects;
                                                 stats_.handshakes += r.connects;
                                                 if (r.ok) {
                                                     ++stats_.logins;
                                                     complete_op(*sp, r.signed_in_ns);
                                                 } else {
                                                     fail_op(*sp, r.kind, r.why);
                                                 }
                                             });
        s.login->start();
        return;
    case Scenario::SignIn:
        return begin_sign_in(s);
    default:
        return;
    }
}

uint64_t SessionDriver::interval_ms(const Slot& s) const {
    if (opt_.interval_s) return uint64_t(*opt_.interval_s * 1000);
    // A registration is refreshed at half its lifetime, as SIP UAs commonly do (RFC 3261 leaves the
    // margin to the client; RFC 5626 4.4 suggests refreshing well before expiry).
    if (opt_.scenario == Scenario::SipRegister) return uint64_t(std::max<uint32_t>(s.granted, 2)) * 500;
    return 0;
}

void SessionDriver::complete_op(Slot& s, uint64_t end_ns) {
    if (!s.op_active) return;
    s.op_active = false;
    s.op_timer->cancel();
    ++stats_.ok;
    stats_.latency.record(((end_ns ? end_ns : now_ns()) - s.op_start) / 1000);
    after_op(s, interval_ms(s));
}

void SessionDriver::fail_op(Slot& s, ErrKind k, std::string_view why) {
    if (!s.op_active) return;
    s.op_active = false;
    s.op_timer->cancel();
    stats_.err(k);
    note(k, why);
    after_op(s, std::max(interval_ms(s), kRetryMs));
}

void SessionDriver::begin_sign_in(Slot& s) {
    // One counter for all threads: sign-in n goes to target n mod P, so each peer gets every P-th; every
    // K-th sign-in of each target has a wrong password; users take turns (each signs in once per `users`
    // sign-ins, the wrong passwords rotating over them, so that the per-user failure limit is not what a
    // run measures); source addresses round-robin over the range.
    const uint64_t n = sh_.signin_seq.fetch_add(1, std::memory_order_relaxed);
    const size_t P = sh_.targets.size();
    const size_t t = size_t(n % P);
    const bool wrong = opt_.wrong_every && (n / P) % opt_.wrong_every == opt_.wrong_every - 1;
    const unsigned user = unsigned((n + n / opt_.users) % opt_.users);
    const uint32_t source = source_for(opt_, n);
    s.target = t;
    if (wrong) ++stats_.wrong_sent;
    Slot* sp = &s;
    s.login = std::make_unique<MraLogin>(
        loop_, nullptr, opt_, sh_.tls, rng_, user, [this, sp, t, wrong](const MraLogin::Result& r) {
            bury(*sp); // we are inside the login object
            for (size_t i = 0; i < r.steps_done; ++i)
                stats_.step(i, r.step_us[i]);
            stats_.connects += r.connects;
            stats_.handshakes += r.connects;
            if (r.token) ++stats_.tokens;
            if (wrong && !r.ok && r.kind == ErrKind::Auth && r.failed_step == kSiEdgeConfig) {
                // Refused as it must be: neither a success nor an error.
                ++stats_.wrong_refused;
                ++stats_.by_target[t][1];
                if (!sp->op_active) return;
                sp->op_active = false;
                sp->op_timer->cancel();
                return after_op(*sp, 0);
            }
            if (wrong && r.ok) {
                ++stats_.by_target[t][2];
                return fail_op(*sp, ErrKind::Auth, "a wrong password was accepted");
            }
            if (r.ok) {
                ++stats_.logins;
                ++stats_.by_target[t][0];
                return complete_op(*sp, r.signed_in_ns);
            }
            ++stats_.by_target[t][2];
            fail_op(*sp, r.kind, fmt::format("{} via {}", r.why, opt_.targets[t]));
        });
    s.login->start_sign_in(sh_.targets[t], sh_.target_names[t], source, wrong);
}

void SessionDriver::after_op(Slot& s, uint64_t delay_ms) {
    if (stopping_) return slot_done(s);
    // Never start the next operation from inside the callback that ended this one: the client that
    // called us is still on the stack.
    if (open_loop()) delay_ms = 0;
    s.next_timer->arm(delay_ms);
}

void SessionDriver::on_op_timeout(Slot& s) {
    if (!s.op_active) return;
    s.op_active = false;
    stats_.err(ErrKind::Timeout);
    note(ErrKind::Timeout,
         s.login ? fmt::format("no answer within --timeout (sign-in step {})", s.login->current_step())
                 : std::string("no answer within --timeout"));
    switch (opt_.scenario) {
    case Scenario::SipRegister:
    case Scenario::SipCall:
        // The transaction is lost and the flow is suspect: start over on a new connection.
        s.expect_close = true;
        if (s.sip) s.sip->abort("REGISTER timed out");
        return;
    case Scenario::SignIn:
        if (s.target < stats_.by_target.size()) ++stats_.by_target[s.target][2];
        [[fallthrough]];
    case Scenario::MraLogin:
        if (s.login) s.login->cancel();
        bury(s);
        break;
    default:
        break;
    }
    after_op(s, 0);
}

void SessionDriver::on_keepalive(Slot& s) {
    if (!s.up || stopping_) return;
    if (s.sip && s.sip->connected()) {
        if (s.ping_pending) {
            // RFC 5626 4.4.1: no pong means the flow is dead as far as the client can tell.
            stats_.err(ErrKind::Timeout);
            note(ErrKind::Timeout, "no CRLF pong to the last keep-alive");
        }
        s.ping_pending = true;
        ++stats_.keepalive_pings;
        s.sip->ping();
    } else if (s.xmpp && s.xmpp->up()) {
        ++stats_.keepalive_pings;
        s.xmpp->keepalive();
    }
    s.ka_timer->arm(keepalive_ms_);
}

void SessionDriver::on_xmpp_message(Slot& receiver, std::string_view id, bool error) {
    (void)receiver;
    // Our ids are "el<sender slot>-<sequence>"; anything else (a server notice) is not ours.
    if (!id.starts_with("el")) return;
    auto dash = id.find('-');
    unsigned local = 0;
    uint64_t seq = 0;
    if (dash == std::string_view::npos ||
        std::from_chars(id.data() + 2, id.data() + dash, local).ec != std::errc() ||
        std::from_chars(id.data() + dash + 1, id.data() + id.size(), seq).ec != std::errc() ||
        local >= slots_.size())
        return;
    Slot& sender = *slots_[local];
    bool current = sender.op_active && sender.seq == seq;
    if (error) {
        if (current) fail_op(sender, ErrKind::Xmpp, "message bounced by the server");
        return;
    }
    ++stats_.messages_received;
    if (current) complete_op(sender);
}

void SessionDriver::slot_done(Slot& s) {
    if (s.done) return;
    if (s.waiting) {
        s.waiting = false;
        waiting_.erase(std::remove(waiting_.begin(), waiting_.end(), &s), waiting_.end());
    }
    s.done = true;
    s.next_timer->cancel();
    s.op_timer->cancel();
    // The session stays up: an XMPP session still receives its predecessor's messages. All close together.
    --active_slots_;
    maybe_finish();
}

void SessionDriver::maybe_finish() {
    if (finished_ || active_slots_ > 0) return;
    if (grace_timer_->armed()) {
        // Closing: done as soon as the last session has gone, or when the grace period ends.
        for (auto& s : slots_)
            if (s->sip || s->xmpp) return;
        return finish();
    }
    stopping_ = true;
    grace_timer_->arm(kGraceMs);
    for (auto& s : slots_) {
        s->ka_timer->cancel();
        if (s->xmpp)
            s->xmpp->close(); // </stream:stream>, as a client signing out
        else if (s->sip)
            s->sip->abort("run over");
        if (s->login) {
            s->login->cancel();
            bury(*s);
        }
    }
    for (auto& s : slots_)
        if (s->sip || s->xmpp) return;
    finish();
}

void SessionDriver::tick() {
    if (stopping_) return;
    uint64_t now = now_ns();
    while (ops_left_ > 0 && next_arrival_ <= now) {
        --ops_left_;
        uint64_t t = next_arrival_;
        next_arrival_ += interval_ns_;
        Slot* s = nullptr;
        while (!waiting_.empty() && !s) {
            Slot* c = waiting_.back();
            waiting_.pop_back();
            c->waiting = false;
            if (usable(*c) && !c->op_active) s = c;
        }
        if (s) {
            begin_op(*s, t);
        } else if (backlog_.size() < kMaxBacklog) {
            backlog_.push_back(t);
        } else {
            ++stats_.attempts;
            stats_.err(ErrKind::Dropped);
        }
    }
    if (ops_left_ == 0) {
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

void SessionDriver::publish() {
    uint64_t open = 0, up = 0;
    for (auto& s : slots_) {
        if (s->sip || s->xmpp || s->login) ++open;
        if (opt_.scenario == Scenario::SipRegister || opt_.scenario == Scenario::SipCall
                ? (s->sip && s->sip->registered())
                : (s->xmpp && s->xmpp->up()))
            ++up;
    }
    stats_.open_conns = open;
    stats_.sessions_up = up;
    std::lock_guard<std::mutex> lk(pub_mu_);
    published_ = stats_;
}

Stats SessionDriver::snapshot() const {
    std::lock_guard<std::mutex> lk(pub_mu_);
    return published_;
}

void SessionDriver::on_deadline() {
    if (finished_) return;
    publish();
    stats_.sessions_up_at_end = stats_.sessions_up;
    finish();
}

void SessionDriver::finish() {
    if (finished_) return;
    finished_ = true;
    stopping_ = true;
    for (auto& s : slots_) {
        if (s->op_active) ++stats_.unfinished;
        s->op_active = false;
        s->done = true;
        s->op_timer->cancel();
        s->next_timer->cancel();
        s->ka_timer->cancel();
        s->setup_timer->cancel();
        if (s->sip) s->sip->abort("run over");
        if (s->xmpp) s->xmpp->abort("run over");
        if (s->login) {
            s->login->cancel();
            bury(*s);
        }
    }
    if (tick_timer_) tick_timer_->cancel();
    publish_timer_->cancel();
    deadline_timer_->cancel();
    grace_timer_->cancel();
    publish();
    sh_.driver_finished();
    loop_.stop();
}

} // namespace edgepair::load
