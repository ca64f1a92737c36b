#include "edge-c/sipfed_service.h"

#include <algorithm>
#include <deque>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/net/connection.h"
#include "common/obs/access_log.h"
#include "common/obs/log.h"
#include "common/sip/fed_route.h"
#include "common/sip/framer.h"
#include "common/sip/link_codec.h"
#include "common/sip/message.h"
#include "common/sip/proxy.h"
#include "edge-c/edge_c.h"

namespace edgepair::edge_c {

namespace {

constexpr const char* kLog = "sip-fed";
constexpr size_t kMaxFromLink = 2 * 1024 * 1024;
constexpr size_t kMaxHeld = 64 * 1024; // messages for a side that is not connected yet
constexpr size_t kMaxDialogs = 10000;  // Call-IDs remembered per IM&P connection

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), ::tolower);
    return out;
}

std::string printable(std::string_view s) {
    std::string out;
    for (char c : s.substr(0, 120))
        out += (c >= 0x20 && c < 0x7f) ? c : '?';
    return out;
}

sip::FramerLimits imp_limits(const config::EdgeCSipFederationConfig& c) {
    sip::FramerLimits l;
    l.max_message_size = size_t(c.max_message_size);
    l.max_headers = 128;
    l.recover = true;
    return l;
}

std::string call_id(const sip::Message& m) {
    const auto* h = m.find(sip::HeaderId::call_id);
    return h ? h->value : std::string();
}

// ---- inbound: a link stream from edge-e -> the IM&P routing node ------------------------------------------

class ImpSipIn final : public link::StreamHandler {
  public:
    ImpSipIn(SipFedService& svc, link::LinkStream* s, const link::Headers& h)
        : svc_(svc), w_(svc.worker()), s_(s), from_link_(kMaxFromLink), framer_(imp_limits(svc.cfg())),
          remote_(lower(link::header_value(h, "x-domain"))) {}

    void start() {
        timer_ = std::make_unique<core::Timer>(w_.worker().loop(), [this] {
            attempt_failed(fmt::format("not connected within {} ms", svc_.cfg().connect_timeout.count()));
        });
        next_node();
    }

    void on_data(link::LinkStream& s, const char* data, size_t len) override {
        s.consumed(len);
        if (done_) return;
        bool ok = from_link_.feed_each(std::string_view(data, len), [this](std::string_view msg) {
            from_remote(msg);
            return !done_;
        });
        if (!ok) finish("bad link framing");
    }
    void on_end(link::LinkStream&) override { finish("edge-e ended the flow"); }
    void on_writable(link::LinkStream&) override {
        if (paused_ && up_) {
            paused_ = false;
            up_->resume_reading();
        }
    }
    void on_close(link::LinkStream&, const core::Failure&) override {
        s_ = nullptr;
        finish("link stream closed");
    }

  private:
    // The second check of every request from a remote domain (edge-e made the first): whatever edge-e
    // let through, only the IM&P routing node is ever reached from here.
    void from_remote(std::string_view bytes) {
        auto m = sip::Message::parse(bytes);
        if (!m) return finish("unparseable message from edge-e");
        std::string out(bytes);
        if (m->is_request()) {
            auto routed = svc_.route_through(bytes, *m, remote_);
            if (!routed) {
                svc_.count_refusal("route");
                if (m->method() != "ACK" && s_)
                    s_->write(sip::link_encode(sip::make_response(*m, 400, "Malformed Route").serialize()));
                return;
            }
            if (auto why = refusal(*m); !why.empty()) return;
            out = std::move(*routed);
        }
        if (connected_) return write_up(out);
        held_bytes_ += out.size();
        if (held_bytes_ <= kMaxHeld) held_.push_back(std::move(out));
    }

    // "" when the request may go to IM&P; else it has been answered here.
    std::string refusal(const sip::Message& m) {
        auto refuse = [&](int status, std::string_view reason, std::string_view metric) {
            svc_.count_refusal(metric);
            EP_INFO(kLog, "from {}: {} refused ({}): {}", remote_, m.method(), metric, reason);
            if (m.method() != "ACK" && s_)
                s_->write(sip::link_encode(sip::make_response(m, status, reason).serialize()));
            return std::string(metric);
        };
        if (m.method() == "REGISTER")
            return refuse(403, "Registration is not offered to federated domains", "register");
        for (auto r : m.values(sip::HeaderId::route)) {
            auto na = sip::NameAddr::parse(r);
            if (!na || !svc_.imp_node(na->uri.host, na->uri.port))
                return refuse(403, "Route names no IM and Presence node", "route");
        }
        auto ruri = sip::Uri::parse(m.request_uri());
        if (!ruri) return refuse(400, "Bad Request-URI", "invalid");
        auto to = m.to();
        bool in_dialog = to && to->tag() && !to->tag()->empty();
        if (svc_.local_domain(ruri->host)) return {};
        if (in_dialog && svc_.imp_node(ruri->host, ruri->port)) return {};
        // Inside a dialog IM&P record-routed, the Request-URI is the user's Contact and the route set
        // (checked above: IM&P nodes only) takes the request there through IM&P.
        if (in_dialog && m.find(sip::HeaderId::route)) return {};
        return refuse(404, "Not a domain of this deployment", "not_local");
    }

    void next_node() {
        if (done_) return;
        const auto& nodes = svc_.cfg().imp_nodes;
        if (next_ >= nodes.size()) return fail_all(503, "No IM and Presence routing node answered");
        const auto& n = nodes[next_++];
        cur_ = n.str();
        auto addr = net::numeric_addr(n.host, n.port);
        if (!addr) return attempt_failed(addr.error().message);
        std::string err;
        if (up_) w_.retire(std::move(up_));
        up_ = net::Connection::connect(w_.worker().loop(), *addr, nullptr, &err);
        if (!up_) return attempt_failed(err);
        const uint64_t a = ++attempt_;
        up_->set_callbacks({[this, a] {
                                if (a == attempt_) on_up();
                            },
                            [this, a](const char* d, size_t n) {
                                if (a == attempt_) on_imp_data(d, n);
                            },
                            [this, a](std::string_view why) {
                                if (a == attempt_) on_imp_close(why);
                            },
                            nullptr});
        timer_->arm(uint64_t(svc_.cfg().connect_timeout.count()));
        up_->start();
    }

    void attempt_failed(std::string why) {
        if (done_ || connected_) return;
        EP_INFO(kLog, "from {}: IM&P node {}: {}", remote_, cur_, why);
        svc_.count("in", "node_failed");
        ++attempt_;
        if (up_) w_.retire(std::move(up_));
        next_node();
    }

    void on_up() {
        connected_ = true;
        timer_->cancel();
        svc_.count("in", "ok");
        EP_INFO(kLog, "from {}: flow on link stream {} -> IM&P routing node {}", remote_, s_ ? s_->id() : 0,
                cur_);
        for (auto& m : held_)
            write_up(m);
        held_.clear();
    }

    void write_up(std::string_view bytes) { up_->write(bytes); }

    void on_imp_data(const char* data, size_t len) {
        if (done_) return;
        framer_.feed(std::string_view(data, len));
        while (!done_) {
            auto ev = framer_.next();
            if (ev.type == sip::FrameEventType::need_more) return;
            if (ev.type == sip::FrameEventType::keepalive_ping) {
                up_->write("\r\n");
            } else if (ev.type == sip::FrameEventType::message) {
                std::string bytes(ev.message);
                if (auto m = sip::Message::parse(bytes); m && m->is_request())
                    if (auto routed = svc_.route_through(bytes, *m, remote_)) bytes = std::move(*routed);
                if (s_ && !s_->write(sip::link_encode(bytes))) {
                    paused_ = true;
                    up_->pause_reading();
                }
            } else if (ev.type == sip::FrameEventType::error && ev.error->fatal) {
                return finish("IM&P sent an unframeable message");
            }
        }
    }

    void on_imp_close(std::string_view why) {
        if (!connected_) return attempt_failed(std::string(why));
        finish(fmt::format("IM&P node closed: {}", why));
    }

    // No node reached: every request the remote sent meanwhile is answered with `status`.
    void fail_all(int status, std::string_view why) {
        svc_.count_refusal("imp_unreachable");
        for (auto& bytes : held_) {
            auto m = sip::Message::parse(bytes);
            if (!m || !m->is_request() || m->method() == "ACK" || !s_) continue;
            s_->write(sip::link_encode(sip::make_response(*m, status, why).serialize()));
        }
        held_.clear();
        finish(why);
    }

    void finish(std::string_view why) {
        if (done_) return;
        done_ = true;
        EP_DEBUG(kLog, "from {}: flow ends: {}", remote_, why);
        if (timer_) timer_->cancel();
        if (s_) {
            auto* s = s_;
            s_ = nullptr;
            s->set_handler(nullptr);
            s->end();
        }
        ++attempt_;
        if (up_) {
            up_->close();
            w_.retire(std::move(up_));
        }
        w_.retire(this);
    }

    SipFedService& svc_;
    CWorker& w_;
    link::LinkStream* s_;
    sip::LinkDecoder from_link_;
    sip::Framer framer_;
    std::string remote_, cur_;
    std::unique_ptr<net::Connection> up_;
    std::unique_ptr<core::Timer> timer_;
    std::deque<std::string> held_;
    size_t held_bytes_ = 0;
    size_t next_ = 0;
    uint64_t attempt_ = 0;
    bool connected_ = false;
    bool paused_ = false;
    bool done_ = false;
};

} // namespace

// ---- outbound: an IM&P node -> edge-c -> a leg per remote domain -> edge-e
// ----------------------------------

class ImpSipOut final {
  public:
    ImpSipOut(SipFedService& svc, int fd)
        : svc_(svc), w_(svc.worker()),
          conn_(std::make_unique<net::Connection>(w_.worker().loop(), fd, nullptr, true)),
          framer_(imp_limits(svc.cfg())) {
        conn_->set_callbacks({nullptr, [this](const char* d, size_t n) { on_imp_data(d, n); },
                              [this](std::string_view why) { on_imp_close(why); }, nullptr});
        peer_ = conn_->peer().str();
        conn_->start();
    }
    ~ImpSipOut() {
        svc_.forget_dials(this);
        for (auto& [d, leg] : legs_)
            leg->let_go(Leg::By::Reset);
    }

    void refuse_now() {
        svc_.count_refusal("not_imp_node");
        conn_->abort("not an IM and Presence node");
    }

    // edge-e's stream for a leg (its sipfed_dial succeeded).
    void attach(const std::string& domain, link::LinkStream* s) {
        auto it = legs_.find(domain);
        if (it == legs_.end() || it->second->stream) {
            s->send_headers({{":status", "410"}}, true);
            return;
        }
        auto& leg = *it->second;
        leg.stream = s;
        if (leg.timer) leg.timer->cancel();
        s->set_handler(&leg);
        s->send_headers({{":status", "200"}});
        svc_.count("out", "ok");
        EP_INFO(kLog, "IM&P {}: leg to {} on link stream {}", peer_, domain, s->id());
        for (auto& m : leg.held)
            s->write(sip::link_encode(m));
        leg.held.clear();
    }

    void dial_failed(const std::string& domain, int status, std::string_view why) {
        auto it = legs_.find(domain);
        if (it == legs_.end() || it->second->stream) return;
        svc_.count("out", "edge_refused");
        fail_leg(domain, status, why);
    }

  private:
    struct Leg final : link::StreamHandler {
        ImpSipOut* out = nullptr;
        std::string domain;
        link::LinkStream* stream = nullptr;
        std::deque<std::string> held;
        size_t held_bytes = 0;
        std::unique_ptr<core::Timer> timer;
        sip::LinkDecoder dec{kMaxFromLink};

        void on_data(link::LinkStream& s, const char* data, size_t len) override {
            s.consumed(len);
            bool ok = dec.feed_each(std::string_view(data, len), [this](std::string_view msg) {
                out->from_remote(domain, msg);
                return true;
            });
            if (!ok) out->leg_gone(domain);
        }
        void on_end(link::LinkStream&) override {
            // edge-e closed the remote connection: our side ends too, and the next request dials anew.
            let_go(By::End);
            out->leg_gone(domain);
        }
        void on_close(link::LinkStream&, const core::Failure&) override {
            stream = nullptr;
            out->leg_gone(domain);
        }
        // Gives the stream up: with END_STREAM after what is queued, or a reset, which discards it. IM&P
        // closing its connection ends the stream, since what it wrote before closing (often the last answer
        // of a dialog, a 200 to a NOTIFY) must still reach the remote.
        enum class By { End, Reset };
        void let_go(By by) {
            if (!stream) return;
            auto* s = stream;
            stream = nullptr;
            s->set_handler(nullptr);
            if (by == By::Reset)
                s->reset(link::kCancel);
            else
                s->end();
        }
    };

    void on_imp_data(const char* data, size_t len) {
        if (closing_) return;
        framer_.feed(std::string_view(data, len));
        while (!closing_) {
            auto ev = framer_.next();
            if (ev.type == sip::FrameEventType::need_more) return;
            if (ev.type == sip::FrameEventType::keepalive_ping) conn_->write("\r\n");
            if (ev.type == sip::FrameEventType::message) from_imp(ev.message);
            if (ev.type == sip::FrameEventType::error && ev.error->fatal) {
                closing_ = true;
                conn_->abort("unframeable message from IM&P");
                return;
            }
        }
    }

    void reply(const sip::Message& req, int status, std::string_view why) {
        if (req.method() == "ACK") return;
        conn_->write(sip::make_response(req, status, printable(why)).serialize());
    }

    void from_imp(std::string_view raw) {
        auto m = sip::Message::parse(raw);
        if (!m) return;
        std::string cid = call_id(*m);
        std::string domain;
        if (auto d = dialogs_.find(cid); d != dialogs_.end()) domain = d->second;
        if (!m->is_request()) {
            // A response goes back on the leg its request came from.
            if (domain.empty()) return;
            return send(domain, raw, *m);
        }
        // Our own Record-Route entry names the dialog's remote domain: it wins over what this connection
        // remembers (IM&P may send a dialog's requests on any connection, and after a link reconnect).
        const auto hop = svc_.hop();
        bool changed = false;
        if (hop && m->find(sip::HeaderId::route)) {
            auto popped = sip::fed_pop_own_routes(*m, hop->host, hop->port);
            if (!popped) return reply(*m, 400, "Malformed Route");
            changed = popped->count > 0;
            if (popped->domain && !svc_.local_domain(*popped->domain)) {
                domain = *popped->domain;
                remember(cid, domain);
            }
        }
        if (domain.empty()) {
            auto ruri = sip::Uri::parse(m->request_uri());
            if (!ruri || ruri->host.empty()) return reply(*m, 400, "Bad Request-URI");
            domain = lower(ruri->host);
            if (!domain.empty() && domain.front() == '[') return reply(*m, 403, "No federation by address");
            if (svc_.local_domain(domain)) {
                svc_.count_refusal("local_target");
                return reply(*m, 403, "Not a remote domain");
            }
            remember(cid, domain);
        }
        // Now with the remote domain known: Record-Route a dialog-forming request with it.
        if (hop && sip::fed_record(*m, *hop, domain)) changed = true;
        send(domain, changed ? m->serialize() : std::string(raw), *m);
    }

    void remember(const std::string& cid, const std::string& domain) {
        if (cid.empty()) return;
        if (dialogs_.size() >= kMaxDialogs) dialogs_.clear();
        dialogs_[cid] = domain;
    }

    void send(const std::string& domain, std::string_view bytes, const sip::Message& m) {
        auto it = legs_.find(domain);
        if (it == legs_.end()) {
            if (!m.is_request()) return;
            it = legs_.emplace(domain, std::make_unique<Leg>()).first;
            auto& leg = *it->second;
            leg.out = this;
            leg.domain = domain;
            link::LinkConn* link = w_.pick_link();
            if (!link) {
                svc_.count("out", "no_link");
                legs_.erase(it);
                return reply(m, 503, "Traversal link to edge-e is down");
            }
            uint64_t id = svc_.register_dial(this, domain);
            link->send_control(nlohmann::json{{"type", "sipfed_dial"}, {"id", id}, {"to", domain}}.dump());
            leg.timer = std::make_unique<core::Timer>(w_.worker().loop(), [this, domain] {
                svc_.count("out", "timeout");
                fail_leg(domain, 408, "No answer from edge-e");
            });
            leg.timer->arm(uint64_t(svc_.cfg().dial_timeout.count()));
            EP_INFO(kLog, "IM&P {}: dialling {} (id {})", peer_, domain, id);
        }
        auto& leg = *it->second;
        if (leg.stream) {
            leg.stream->write(sip::link_encode(bytes));
            return;
        }
        leg.held_bytes += bytes.size();
        if (leg.held_bytes <= kMaxHeld) leg.held.emplace_back(bytes);
    }

    // A message from the remote on a leg: to IM&P; its in-dialog requests' answers go back on this leg.
    void from_remote(const std::string& domain, std::string_view bytes) {
        if (closing_) return;
        auto m = sip::Message::parse(bytes);
        if (m && m->is_request()) {
            remember(call_id(*m), domain);
            if (auto routed = svc_.route_through(bytes, *m, domain)) return conn_->write(*routed);
        }
        conn_->write(bytes);
    }

    void fail_leg(const std::string& domain, int status, std::string_view why) {
        auto it = legs_.find(domain);
        if (it == legs_.end()) return;
        auto held = std::move(it->second->held);
        retire_leg(it);
        for (auto& bytes : held) {
            auto m = sip::Message::parse(bytes);
            if (m && m->is_request()) reply(*m, status, why);
        }
    }

    void leg_gone(const std::string& domain) {
        auto it = legs_.find(domain);
        if (it == legs_.end()) return;
        EP_DEBUG(kLog, "IM&P {}: leg to {} ended", peer_, domain);
        it->second->let_go(Leg::By::Reset);
        retire_leg(it);
    }

    // Inside the leg's own callbacks: the leg is freed on the next loop turn.
    void retire_leg(std::unordered_map<std::string, std::unique_ptr<Leg>>::iterator it) {
        // Possibly inside the leg's own timer callback: cancelled here, freed with the leg.
        if (it->second->timer) it->second->timer->cancel();
        w_.retire(std::move(it->second));
        legs_.erase(it);
    }

    void on_imp_close(std::string_view why) {
        closing_ = true;
        EP_DEBUG(kLog, "IM&P {}: closed: {}", peer_, why);
        for (auto& [d, leg] : legs_)
            leg->let_go(Leg::By::End);
        w_.retire(this);
    }

    SipFedService& svc_;
    CWorker& w_;
    std::unique_ptr<net::Connection> conn_;
    sip::Framer framer_;
    std::string peer_;
    bool closing_ = false;
    std::unordered_map<std::string, std::unique_ptr<Leg>> legs_;
    std::unordered_map<std::string, std::string> dialogs_; // Call-ID -> remote domain
};

// ---- SipFedService
// -------------------------------------------------------------------------------------------

SipFedService::SipFedService(CWorker& w)
    : w_(w), cfg_(*w.gen()->cfg.federation.sip), memo_(w.app().metrics()) {
    next_id_ = (uint64_t(w.worker().index()) << 40) + 1;
    for (auto r :
         {"register", "route", "not_local", "invalid", "imp_unreachable", "not_imp_node", "local_target"})
        memo_.get("edgepair_sip_federation_refusals_total",
                  "SIP federation requests and flows refused, by reason", {{"reason", r}});
    if (!hop())
        EP_WARN(kLog,
                "federation.sip.listen {} and no federation.sip.record_route: federated dialogs are not "
                "record-routed by edge-c, so IM&P's in-dialog requests may bypass the pair",
                cfg_.listen.str());
    auto addr = net::numeric_addr(cfg_.listen.host.empty() ? "*" : cfg_.listen.host, cfg_.listen.port);
    if (!addr) {
        EP_ERROR(kLog, "federation.sip.listen {}: {}", cfg_.listen.str(), addr.error().message);
        return;
    }
    auto l = net::Listener::open(w.worker().loop(), *addr, true,
                                 [this](int fd, const net::SockAddr& peer) { on_accept(fd, peer); });
    if (!l) {
        EP_ERROR(kLog, "worker {}: listener {}: {}", w.worker().index(), cfg_.listen.str(),
                 l.error().message);
        return;
    }
    listener_ = std::move(*l);
}

SipFedService::~SipFedService() = default;

bool SipFedService::local_domain(std::string_view d) const {
    std::string n = lower(d);
    for (const auto& dom : w_.gen()->cfg.domains)
        if (dom.name == n) return true;
    return false;
}

bool SipFedService::imp_node(std::string_view host, std::optional<uint16_t> port) const {
    for (const auto& n : cfg_.imp_nodes)
        if (n.host == host && (!port || *port == n.port)) return true;
    return false;
}

void SipFedService::on_accept(int fd, const net::SockAddr& peer) {
    auto* s = w_.own(std::make_unique<ImpSipOut>(*this, fd));
    // Only the IM&P nodes may send federation out through the pair.
    if (!imp_node(peer.ip(), std::nullopt)) {
        EP_WARN(kLog, "{}: not a configured IM and Presence node: SIP federation refused", peer.str());
        s->refuse_now();
    }
}

uint64_t SipFedService::register_dial(ImpSipOut* s, std::string domain) {
    uint64_t id = next_id_++;
    dials_[id] = Dial{s, std::move(domain)};
    return id;
}

std::optional<sip::FedHop> SipFedService::hop() const {
    auto self = config::fed_self_route(cfg_.record_route, cfg_.listen);
    if (!self) return std::nullopt;
    return sip::FedHop{self->host, self->port, "tcp"};
}

std::optional<std::string> SipFedService::route_through(std::string_view bytes, sip::Message& m,
                                                        std::string_view domain) const {
    auto h = hop();
    // edge-c's entry must name the dialog's remote domain (it picks the leg by it): no entry without one.
    if (!h || domain.empty()) return std::string(bytes);
    return sip::fed_route_through(bytes, m, *h, domain);
}

void SipFedService::forget_dials(ImpSipOut* s) {
    std::erase_if(dials_, [s](const auto& kv) { return kv.second.out == s; });
}

void SipFedService::count_refusal(std::string_view reason) {
    memo_
        .get("edgepair_sip_federation_refusals_total", "SIP federation requests and flows refused, by reason",
             {{"reason", std::string(reason)}})
        .inc();
}

void SipFedService::count(std::string_view direction, std::string_view result) {
    memo_
        .get("edgepair_sip_federation_imp_total",
             "SIP federation flows between edge-c and IM and Presence, by direction and result",
             {{"direction", std::string(direction)}, {"result", std::string(result)}})
        .inc();
}

void SipFedService::serve(link::LinkStream* s, const link::Headers& headers) {
    auto dir = link::header_value(headers, "x-sip-federation");
    if (dir == "in") {
        s->send_headers({{":status", "200"}});
        auto* x = w_.own(std::make_unique<ImpSipIn>(*this, s, headers));
        s->set_handler(x);
        x->start();
        return;
    }
    if (dir == "out") {
        uint64_t id = 0;
        for (char c : link::header_value(headers, "x-sipfed-id")) {
            if (c < '0' || c > '9' || id > (UINT64_MAX - 9) / 10) {
                id = 0;
                break;
            }
            id = id * 10 + uint64_t(c - '0');
        }
        auto it = dials_.find(id);
        if (id == 0 || it == dials_.end()) {
            s->send_headers({{":status", "410"}}, true);
            return;
        }
        auto d = it->second;
        dials_.erase(it);
        d.out->attach(d.domain, s);
        return;
    }
    s->send_headers({{":status", "400"}}, true);
}

void SipFedService::on_control(std::string_view msg) {
    auto j = nlohmann::json::parse(msg, nullptr, false);
    if (j.is_discarded() || !j.is_object() || j.value("type", "") != "sipfed_failed") return;
    uint64_t id = 0;
    if (auto it = j.find("id"); it != j.end() && it->is_number_unsigned()) id = it->get<uint64_t>();
    auto d = dials_.find(id);
    if (d == dials_.end()) return;
    auto dial = d->second;
    dials_.erase(d);
    int status = j.value("status", 503);
    if (status < 400 || status > 699) status = 503;
    dial.out->dial_failed(dial.domain, status, j.value("error", "edge-e refused the federation leg"));
}

} // namespace edgepair::edge_c
