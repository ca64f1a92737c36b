#include "edge-c/s2s_service.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <openssl/rand.h>

#include "common/net/connection.h"
#include "common/obs/access_log.h"
#include "common/obs/log.h"
#include "common/xmpp/s2s.h"
#include "common/xmpp/writer.h"
#include "edge-c/edge_c.h"

namespace edgepair::edge_c {

namespace {

constexpr const char* kLog = "xmpp-s2s";
constexpr size_t kMaxHeld = 64 * 1024; // bytes from one side before the other is ready

xmpp::S2sSecurity to_security(config::FederationSecurity s) {
    switch (s) {
    case config::FederationSecurity::Required:
        return xmpp::S2sSecurity::Required;
    case config::FederationSecurity::Optional:
        return xmpp::S2sSecurity::Optional;
    case config::FederationSecurity::None:
        return xmpp::S2sSecurity::None;
    }
    return xmpp::S2sSecurity::Required;
}

std::string new_stream_id() {
    unsigned char b[12];
    if (RAND_bytes(b, sizeof b) != 1) throw std::runtime_error("RAND_bytes failed");
    std::string out;
    for (unsigned char c : b)
        out += fmt::format("{:02x}", c);
    return out;
}

size_t max_stanza(CWorker& w) {
    return size_t(w.gen()->cfg.limits.max_xmpp_stanza);
}

// ---- inbound: link stream from edge-e -> an IM&P node's s2s port ----------------------------------------

class ImpS2sIn final : public link::StreamHandler {
  public:
    ImpS2sIn(S2sService& svc, link::LinkStream* s, const link::Headers& h)
        : svc_(svc), w_(svc.worker()), s_(s), to_(link::header_value(h, "x-domain")),
          from_(link::header_value(h, "x-xmpp-from")),
          fr_(xmpp::s2s_framer_options(max_stanza(svc.worker()))) {
        access_.open(w_.gen()->access_log, "xmpp-s2s",
                     obs::checked_request_id(link::header_value(h, obs::kRequestIdHeader)),
                     std::string(link::header_value(h, "x-client-addr")));
    }

    void start() {
        const auto& fx = svc_.cfg();
        nodes_ = fx.imp_nodes;
        sec_ = to_security(fx.imp_security);
        timer_ = std::make_unique<core::Timer>(w_.worker().loop(), [this] {
            attempt_failed(fmt::format("no stream within {} ms", svc_.cfg().connect_timeout.count()));
        });
        next_node();
    }

    void on_data(link::LinkStream& s, const char* data, size_t len) override {
        if (phase_ == Phase::Done) return s.consumed(len);
        access_.add_in(len);
        if (phase_ == Phase::Relaying) {
            up_->write(std::string_view(data, len));
            if (up_->above_high_watermark())
                owed_ += len;
            else
                s.consumed(len);
            return;
        }
        if (header_.empty()) {
            fr_.feed(std::string_view(data, len));
            while (auto ev = fr_.next()) {
                if (ev->type == xmpp::EventType::stream_open)
                    header_ = ev->header.raw;
                else if (ev->type == xmpp::EventType::error)
                    return fail(502, "the remote's stream header is unreadable");
                else if (!header_.empty())
                    held_ += ev->type == xmpp::EventType::stream_close ? xmpp::stream_close() : ev->raw;
            }
            s.consumed(len);
            if (phase_ == Phase::Negotiating && !sent_header_) {
                sent_header_ = true;
                up_->write(header_);
            }
            return;
        }
        held_.append(data, len);
        s.consumed(len);
        if (held_.size() > kMaxHeld) fail(502, "too much data before IM&P answered");
    }
    void on_end(link::LinkStream&) override {
        if (phase_ == Phase::Relaying && up_) return up_->close();
        finish("client_closed");
    }
    void on_writable(link::LinkStream&) override {
        if (!paused_ || !up_) return;
        paused_ = false;
        up_->resume_reading();
    }
    void on_close(link::LinkStream&, const core::Failure& failure) override {
        s_ = nullptr;
        if (phase_ == Phase::Relaying && up_ && !failure) {
            phase_ = Phase::Done;
            up_->close(); // flush what the remote sent last; on its close we go
            return;
        }
        finish(failure ? "link_closed" : "client_closed");
    }

  private:
    enum class Phase { Connecting, Negotiating, Handshake, Relaying, Done };

    void next_node() {
        if (phase_ == Phase::Done) return;
        if (next_ >= nodes_.size()) return fail(502, "IM and Presence unreachable: " + last_error_);
        const auto& n = nodes_[next_++];
        cur_ = n.str();
        auto a = net::numeric_addr(n.host, n.port);
        if (!a) return attempt_failed(a.error().message);
        std::string err;
        up_ = net::Connection::connect(w_.worker().loop(), *a, nullptr, &err);
        if (!up_) return attempt_failed(err);
        const uint64_t at = ++attempt_;
        sent_header_ = false;
        neg_ = std::make_unique<xmpp::DialNegotiator>(sec_, max_stanza(w_));
        up_->set_callbacks({[this, at] {
                                if (at == attempt_) on_up_ready();
                            },
                            [this, at](const char* d, size_t n) {
                                if (at == attempt_) on_up_data(d, n);
                            },
                            [this, at](std::string_view why) {
                                if (at == attempt_) on_up_close(why);
                            },
                            [this, at] {
                                if (at != attempt_) return;
                                if (owed_ && s_) s_->consumed(owed_);
                                owed_ = 0;
                            }});
        phase_ = Phase::Connecting;
        timer_->arm(uint64_t(svc_.cfg().connect_timeout.count()));
        up_->start();
    }

    void on_up_ready() {
        if (phase_ == Phase::Connecting) {
            phase_ = Phase::Negotiating;
            if (!header_.empty()) {
                sent_header_ = true;
                up_->write(header_);
            }
            return;
        }
        if (phase_ != Phase::Handshake) return;
        phase_ = Phase::Relaying;
        timer_->cancel();
        up_->write(header_);
        if (!held_.empty()) up_->write(held_);
        held_.clear();
        answer_ok("tls");
    }

    void on_up_data(const char* d, size_t n) {
        if (phase_ == Phase::Relaying) {
            access_.add_out(n);
            if (s_ && !s_->write(std::string_view(d, n)) && !paused_) {
                paused_ = true;
                up_->pause_reading();
            }
            return;
        }
        if (phase_ != Phase::Negotiating) return;
        auto step = neg_->feed(std::string_view(d, n));
        switch (step.kind) {
        case xmpp::DialStep::More:
            return;
        case xmpp::DialStep::SendStarttls:
            up_->write(xmpp::DialNegotiator::starttls_request());
            return;
        case xmpp::DialStep::Handshake: {
            phase_ = Phase::Handshake;
            auto& g = w_.gen();
            auto& ctx = svc_.cfg().imp_tls_verify ? g->upstream_verify : g->upstream_noverify;
            if (!up_->start_tls(ctx->new_ssl(nodes_[next_ - 1].host))) attempt_failed("TLS upgrade refused");
            return;
        }
        case xmpp::DialStep::Plain:
            phase_ = Phase::Relaying;
            timer_->cancel();
            answer_ok("none");
            if (s_) s_->write(step.bytes);
            if (!held_.empty()) up_->write(held_);
            held_.clear();
            return;
        case xmpp::DialStep::Fail:
            return attempt_failed(step.reason);
        }
    }

    void answer_ok(const char* tls) {
        EP_INFO(kLog, "federation stream {} -> {} relayed to IM&P {} (tls: {})", from_, to_, cur_, tls);
        svc_.count("in", "ok");
        if (s_) s_->send_headers({{":status", "200"}});
    }

    void on_up_close(std::string_view why) {
        if (phase_ == Phase::Done) return finish("server_closed");
        if (phase_ != Phase::Relaying) return attempt_failed(std::string(why));
        EP_INFO(kLog, "federation stream {} -> {}: IM&P {} ended: {}", from_, to_, cur_, why);
        if (s_) {
            auto* s = s_;
            s_ = nullptr;
            s->set_handler(nullptr);
            s->end();
        }
        finish("server_closed");
    }

    void attempt_failed(std::string why) {
        if (phase_ == Phase::Done || phase_ == Phase::Relaying) return;
        EP_WARN(kLog, "federation stream {} -> {}: IM&P {} failed: {}", from_, to_, cur_, why);
        last_error_ = fmt::format("{}: {}", cur_, why);
        ++attempt_;
        if (timer_) timer_->cancel();
        if (up_) w_.retire(std::move(up_));
        phase_ = Phase::Connecting;
        std::weak_ptr<bool> alive = alive_;
        w_.worker().loop().post([this, alive] {
            if (!alive.expired() && phase_ == Phase::Connecting) next_node();
        });
    }

    void fail(int status, std::string reason) {
        if (phase_ == Phase::Done) return;
        svc_.count("in", "unreachable");
        EP_WARN(kLog, "federation stream {} -> {} refused: {}", from_, to_, reason);
        for (auto& c : reason)
            if (c == '\r' || c == '\n') c = ' ';
        if (s_) {
            auto* s = s_;
            s_ = nullptr;
            s->set_handler(nullptr);
            s->send_headers({{":status", std::to_string(status)},
                             {"x-xmpp-error", "remote-connection-failed"},
                             {"x-xmpp-reason", reason}},
                            true);
        }
        finish("unreachable");
    }

    void finish(std::string_view reason) {
        if (dying_) return;
        dying_ = true;
        phase_ = Phase::Done;
        *alive_ = false;
        if (timer_) timer_->cancel();
        ++attempt_;
        if (up_) {
            up_->close();
            w_.retire(std::move(up_));
        }
        if (s_) {
            auto* s = s_;
            s_ = nullptr;
            s->set_handler(nullptr);
            s->reset(link::kCancel);
        }
        access_.close(reason);
        w_.retire(this);
    }

    S2sService& svc_;
    CWorker& w_;
    link::LinkStream* s_;
    std::string to_, from_;
    xmpp::Framer fr_;
    std::string header_, held_;
    std::vector<config::Address> nodes_;
    size_t next_ = 0;
    std::string cur_, last_error_;
    xmpp::S2sSecurity sec_ = xmpp::S2sSecurity::Required;
    Phase phase_ = Phase::Connecting;
    std::unique_ptr<net::Connection> up_;
    std::unique_ptr<xmpp::DialNegotiator> neg_;
    std::unique_ptr<core::Timer> timer_;
    uint64_t attempt_ = 0;
    size_t owed_ = 0;
    bool paused_ = false, sent_header_ = false, dying_ = false;
    obs::FlowAccess access_;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

} // namespace

// ---- outbound: IM&P -> edge-c's inside listener -> link -> edge-e -> the remote domain -------------------

class ImpS2sOut final : public link::StreamHandler {
  public:
    ImpS2sOut(S2sService& svc, int fd)
        : svc_(svc), w_(svc.worker()),
          conn_(std::make_unique<net::Connection>(w_.worker().loop(), fd, nullptr, true)),
          fr_(std::make_unique<xmpp::Framer>(xmpp::s2s_framer_options(max_stanza(w_)))) {
        sec_ = to_security(svc_.cfg().imp_security);
        conn_->set_callbacks({[this] { on_ready(); }, [this](const char* d, size_t n) { on_imp_data(d, n); },
                              [this](std::string_view why) { on_imp_close(why); },
                              [this] {
                                  if (owed_ && s_) s_->consumed(owed_);
                                  owed_ = 0;
                              }});
        access_.open(w_.gen()->access_log, "xmpp-s2s-out", "-", conn_->peer().str());
        conn_->start();
    }
    ~ImpS2sOut() override {
        if (id_) svc_.forget_dial(id_);
    }

    // Refused before any XMPP: our header and the error, then close.
    void refuse_now(xmpp::StreamErrorCondition c, std::string_view text, std::string_view result) {
        fail(c, text, result);
    }

    // edge-e's stream for our s2s_dial.
    void attach(link::LinkStream* s) {
        if (phase_ != Phase::Dialling) {
            s->send_headers({{":status", "410"}}, true);
            return;
        }
        svc_.forget_dial(id_);
        id_ = 0;
        if (dial_timer_) dial_timer_->cancel();
        s_ = s;
        s->set_handler(this);
        s->send_headers({{":status", "200"}});
        phase_ = Phase::Relaying;
        svc_.count("out", "ok");
        EP_INFO(kLog, "IM&P {}: federation stream {} -> {} on link stream {}", conn_->peer().str(), from_,
                to_, s->id());
        s_->write(header_);
        if (!held_.empty()) s_->write(held_);
        held_.clear();
    }

    void dial_failed(std::string why) {
        if (phase_ != Phase::Dialling) return;
        fail(xmpp::StreamErrorCondition::remote_connection_failed, why, "edge_refused");
    }

    void on_data(link::LinkStream& s, const char* data, size_t len) override {
        if (phase_ == Phase::Done) return s.consumed(len);
        access_.add_out(len);
        conn_->write(std::string_view(data, len));
        if (conn_->above_high_watermark())
            owed_ += len;
        else
            s.consumed(len);
    }
    void on_end(link::LinkStream&) override {
        // edge-e (the remote) finished: close towards IM&P after the bytes.
        if (phase_ == Phase::Done) return;
        phase_ = Phase::Done;
        conn_->close();
    }
    void on_writable(link::LinkStream&) override {
        if (!paused_) return;
        paused_ = false;
        conn_->resume_reading();
    }
    void on_close(link::LinkStream&, const core::Failure& failure) override {
        s_ = nullptr;
        if (phase_ == Phase::Done) return;
        phase_ = Phase::Done;
        if (failure) {
            EP_INFO(kLog, "IM&P {}: federation stream to {} lost: {}", conn_->peer().str(), to_,
                    failure.str());
            conn_->write(xmpp::stream_error(xmpp::StreamErrorCondition::remote_connection_failed,
                                            "connection to the remote server lost"));
        }
        conn_->close();
    }

  private:
    enum class Phase { Plain, Handshake, Tls, Dialling, Relaying, Done };

    void on_ready() {
        if (phase_ != Phase::Handshake) return;
        phase_ = Phase::Tls;
    }

    void on_imp_data(const char* d, size_t n) {
        if (phase_ == Phase::Done) return;
        access_.add_in(n);
        if (phase_ == Phase::Relaying) {
            if (s_ && !s_->write(std::string_view(d, n)) && !paused_) {
                paused_ = true;
                conn_->pause_reading();
            }
            return;
        }
        if (phase_ == Phase::Dialling) {
            held_.append(d, n);
            if (held_.size() > kMaxHeld)
                fail(xmpp::StreamErrorCondition::policy_violation, "too much data before the remote answered",
                     "bad_stream");
            return;
        }
        fr_->feed(std::string_view(d, n));
        while (phase_ == Phase::Plain || phase_ == Phase::Tls || phase_ == Phase::Dialling) {
            auto ev = fr_->next();
            if (!ev) break;
            if (phase_ == Phase::Dialling) {
                held_ += ev->type == xmpp::EventType::stream_close ? xmpp::stream_close() : ev->raw;
                continue;
            }
            switch (ev->type) {
            case xmpp::EventType::stream_open:
                to_ = xmpp::normalise_domain(ev->header.to);
                from_ = ev->header.from;
                if (to_.empty()) {
                    fail(xmpp::StreamErrorCondition::host_unknown, "no remote domain in 'to'", "bad_stream");
                    break;
                }
                if (phase_ == Phase::Tls || sec_ == xmpp::S2sSecurity::None) {
                    header_ = ev->header.raw;
                    dial();
                    break;
                }
                conn_->write(xmpp::s2s_stream_header(to_, from_, new_stream_id()) +
                             xmpp::s2s_features(true, sec_ == xmpp::S2sSecurity::Required, false));
                header_sent_ = true;
                break;
            case xmpp::EventType::starttls:
                conn_->write(xmpp::starttls_proceed());
                phase_ = Phase::Handshake;
                fr_->restart();
                if (!conn_->start_tls(svc_.inside_tls().new_ssl())) {
                    phase_ = Phase::Done;
                    conn_->abort("starttls: connection not upgradable");
                }
                return;
            case xmpp::EventType::stanza:
                fail(xmpp::StreamErrorCondition::policy_violation, "STARTTLS is required", "tls_required");
                break;
            case xmpp::EventType::keepalive:
                break;
            case xmpp::EventType::stream_close:
                phase_ = Phase::Done;
                conn_->write(xmpp::stream_close());
                conn_->close();
                break;
            case xmpp::EventType::error:
                fail(ev->condition, ev->detail, "bad_stream");
                break;
            }
        }
    }

    void dial() {
        link::LinkConn* lc = w_.pick_link();
        if (!lc)
            return fail(xmpp::StreamErrorCondition::remote_connection_failed,
                        "traversal link to edge-e is down", "no_link");
        id_ = svc_.register_dial(this);
        phase_ = Phase::Dialling;
        if (!lc->send_control(
                nlohmann::json{{"type", "s2s_dial"}, {"id", id_}, {"to", to_}, {"from", from_}}.dump()))
            return fail(xmpp::StreamErrorCondition::remote_connection_failed,
                        "traversal link to edge-e is down", "no_link");
        dial_timer_ = std::make_unique<core::Timer>(w_.worker().loop(), [this] {
            fail(xmpp::StreamErrorCondition::remote_connection_failed,
                 "edge-e did not open the stream in time", "timeout");
        });
        dial_timer_->arm(uint64_t(svc_.cfg().dial_timeout.count()));
        EP_DEBUG(kLog, "IM&P {}: asked edge-e for a stream {} -> {} (id {})", conn_->peer().str(), from_, to_,
                 id_);
    }

    void fail(xmpp::StreamErrorCondition c, std::string_view text, std::string_view result) {
        if (phase_ == Phase::Done) return;
        phase_ = Phase::Done;
        svc_.count("out", result);
        if (close_reason_.empty()) close_reason_ = std::string(result);
        if (dial_timer_) dial_timer_->cancel();
        if (id_) svc_.forget_dial(id_);
        id_ = 0;
        EP_INFO(kLog, "IM&P {}: federation stream to {} refused ({}): {}", conn_->peer().str(), to_, result,
                text);
        std::string out = header_sent_ ? std::string() : xmpp::s2s_stream_header(to_, from_, new_stream_id());
        conn_->write(out + xmpp::stream_error(c, text));
        conn_->close();
    }

    void on_imp_close(std::string_view why) {
        EP_DEBUG(kLog, "IM&P {}: closed: {}", conn_->peer().str(), why);
        phase_ = Phase::Done;
        if (dial_timer_) dial_timer_->cancel();
        if (s_) {
            auto* s = s_;
            s_ = nullptr;
            s->set_handler(nullptr);
            s->end();
        }
        access_.close(close_reason_.empty() ? "client_closed" : close_reason_);
        w_.retire(this);
    }

    S2sService& svc_;
    CWorker& w_;
    std::unique_ptr<net::Connection> conn_;
    std::unique_ptr<xmpp::Framer> fr_;
    xmpp::S2sSecurity sec_;
    Phase phase_ = Phase::Plain;
    std::string to_, from_, header_, held_;
    bool header_sent_ = false;
    uint64_t id_ = 0;
    link::LinkStream* s_ = nullptr;
    std::unique_ptr<core::Timer> dial_timer_;
    size_t owed_ = 0;
    bool paused_ = false;
    obs::FlowAccess access_;
    std::string close_reason_;
};

// ---- S2sService ------------------------------------------------------------------------------------------

S2sService::S2sService(CWorker& w)
    : w_(w), cfg_(*w.gen()->cfg.federation.xmpp), inside_tls_(w.gen()->s2s_inside_tls),
      memo_(w.app().metrics()) {
    // Ids are unique per process: the worker index in the top bits (a stream only ever comes back on the
    // link the request went out on, but logs read better this way).
    next_id_ = (uint64_t(w.worker().index()) << 40) + 1;
    const auto& fx = cfg_;
    auto addr = net::numeric_addr(fx.listen.host.empty() ? "*" : fx.listen.host, fx.listen.port);
    if (!addr) {
        EP_ERROR(kLog, "federation.xmpp.listen {}: {}", fx.listen.str(), addr.error().message);
        return;
    }
    auto l = net::Listener::open(w.worker().loop(), *addr, true,
                                 [this](int fd, const net::SockAddr& peer) { on_accept(fd, peer); });
    if (!l) {
        EP_ERROR(kLog, "worker {}: listener {}: {}", w.worker().index(), fx.listen.str(), l.error().message);
        return;
    }
    listener_ = std::move(*l);
}

S2sService::~S2sService() = default;

void S2sService::on_accept(int fd, const net::SockAddr& peer) {
    auto* s = w_.own(std::make_unique<ImpS2sOut>(*this, fd));
    // Only the IM&P nodes may send federation out through the pair.
    const auto& nodes = cfg_.imp_nodes;
    std::string ip = peer.ip();
    bool known = false;
    for (auto& n : nodes)
        if (n.host == ip) known = true;
    if (!known) {
        EP_WARN(kLog, "{}: not a configured IM and Presence node: federation refused", peer.str());
        s->refuse_now(xmpp::StreamErrorCondition::policy_violation,
                      "only the IM and Presence nodes may federate through this edge", "not_imp_node");
    }
}

uint64_t S2sService::register_dial(ImpS2sOut* s) {
    uint64_t id = next_id_++;
    dials_[id] = s;
    return id;
}

void S2sService::forget_dial(uint64_t id) {
    dials_.erase(id);
}

void S2sService::count(std::string_view direction, std::string_view result) {
    memo_
        .get("edgepair_xmpp_federation_imp_total",
             "XMPP federation streams between edge-c and IM and Presence, by direction and result",
             {{"direction", std::string(direction)}, {"result", std::string(result)}})
        .inc();
}

void S2sService::serve(link::LinkStream* s, const link::Headers& headers) {
    auto dir = link::header_value(headers, "x-xmpp-s2s");
    if (dir == "in") {
        auto* x = w_.own(std::make_unique<ImpS2sIn>(*this, s, headers));
        s->set_handler(x);
        x->start();
        return;
    }
    if (dir == "out") {
        uint64_t id = 0;
        auto v = link::header_value(headers, "x-s2s-id");
        for (char c : v) {
            if (c < '0' || c > '9' || id > (UINT64_MAX - 9) / 10) {
                id = 0;
                break;
            }
            id = id * 10 + uint64_t(c - '0');
        }
        auto it = dials_.find(id);
        if (id == 0 || it == dials_.end()) {
            // The IM&P connection gave up (timeout, closed) before edge-e answered.
            s->send_headers({{":status", "410"}}, true);
            return;
        }
        it->second->attach(s);
        return;
    }
    s->send_headers({{":status", "400"}}, true);
}

void S2sService::on_control(std::string_view msg) {
    auto j = nlohmann::json::parse(msg, nullptr, false);
    if (j.is_discarded() || !j.is_object() || j.value("type", "") != "s2s_failed") return;
    uint64_t id = 0;
    if (auto it = j.find("id"); it != j.end() && it->is_number_unsigned()) id = it->get<uint64_t>();
    auto d = dials_.find(id);
    if (d == dials_.end()) return;
    d->second->dial_failed(j.value("error", "edge-e refused the federation stream"));
}

} // namespace edgepair::edge_c
