// edge-c's half of XMPP over MRA (issue #7). edge-e terminated the client's TLS and sends the client's
// restarted stream (header, SASL, everything after) down one link stream. edge-c picks an IM&P node of the
// domain's deployment, connects to it on 5222, and negotiates STARTTLS itself, as Expressway-C does (the hop
// inside the enterprise is encrypted and the node's certificate checked when discovery runs with TLS verify),
// then replays the client's bytes into the protected stream and relays both ways. IM&P therefore sees a TLS
// stream whose header is the client's: it offers SASL next, and authentication happens at IM&P.
//
// Until the upstream stream is ready the client's bytes are held unconsumed, so the link's per-stream window
// bounds them. Failures before that are answered with a non-200 status and x-xmpp-error (the condition
// edge-e sends to the client); after it, an abrupt upstream loss resets the stream and edge-e turns that into
// a stream error.
#include "edge-c/xmpp_service.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <fmt/format.h>

#include "common/net/connection.h"
#include "common/obs/access_log.h"
#include "common/obs/log.h"
#include "common/xmpp/framer.h"
#include "common/xmpp/writer.h"
#include "edge-c/edge_c.h"
#include "edge-c/mra_access_policy.h"
#include "edge-c/oauth_validator.h"

namespace edgepair::edge_c {

namespace {

constexpr const char* kLog = "xmpp";
constexpr uint16_t kImpXmppPort = 5222;
constexpr uint64_t kNegotiateTimeoutMs = 10000; // connect + stream header + STARTTLS + TLS, per node

struct Candidate {
    std::string name;
    bool verify = true;
};

class XmppUpstream final : public link::StreamHandler {
  public:
    XmppUpstream(CWorker& w, link::LinkStream* s, const link::Headers& h)
        : w_(w), s_(s), domain_(link::header_value(h, "x-domain")),
          client_(link::header_value(h, "x-client-addr")),
          id_(obs::checked_request_id(link::header_value(h, obs::kRequestIdHeader))) {}

    void start();

    void on_data(link::LinkStream& s, const char* data, size_t len) override;
    void on_end(link::LinkStream&) override;
    void on_writable(link::LinkStream&) override;
    void on_close(link::LinkStream&, const core::Failure& failure) override;

  private:
    enum class Phase { Connecting, Header, Proceed, Handshake, Relaying, Done };

    void try_next();
    void connect_to(const net::SockAddr& addr);
    void on_up_ready();
    void on_up_data(const char* data, size_t len);
    void on_up_close(std::string_view why);
    void attempt_failed(std::string why);
    void refuse(int status, std::string_view condition, std::string reason, std::string_view result);
    // MRA access policy (issue #15): the client's bytes go through the SASL watch until its <auth> is judged.
    void relay_client(std::string_view data);
    void forward_up(std::string_view data);
    void check_policy();
    void refuse_in_stream(std::string_view condition, std::string text, std::string_view reason);
    void count(std::string_view result);
    void destroy_later();

    CWorker& w_;
    link::LinkStream* s_; // null once the stream is gone
    std::string domain_, client_;
    std::vector<Candidate> nodes_;
    size_t next_ = 0;
    Candidate cur_;
    std::string last_error_;
    Phase phase_ = Phase::Connecting;
    std::unique_ptr<net::Connection> up_;
    std::unique_ptr<xmpp::Framer> neg_; // IM&P's side while edge-c negotiates STARTTLS
    std::unique_ptr<core::Timer> timer_;
    std::string pending_; // the client's bytes received before the upstream stream is ready (unconsumed)
    size_t owed_ = 0;     // bytes written upstream while it was above its watermark, consumed once drained
    bool up_paused_ = false;
    bool dying_ = false;
    uint64_t attempt_ = 0;
    std::string id_;                       // edge-e's request id for this stream
    obs::FlowAccess access_;               // log.access: open at start(), close in destroy_later()
    std::string close_reason_;             // first cause of the end; "client_closed" when edge-e ended it
    std::unique_ptr<XmppSaslWatch> watch_; // mra_policy.enabled: until the user's policy is known
    std::string deployment_;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

void XmppUpstream::start() {
    access_.open(w_.gen()->access_log, "xmpp", id_, client_);
    auto snap = w_.snapshot();
    if (!snap)
        return refuse(503, "remote-connection-failed", "edge-c has no valid MRA configuration", "no_config");
    const mra::Domain* d = snap->find_domain(domain_);
    if (!d || !d->services.imp)
        return refuse(404, "host-unknown", fmt::format("domain {} has no IM and Presence service", domain_),
                      "unknown_domain");
    std::string dep = snap->resolve_deployment(d->deployment);
    deployment_ = dep;
    // The SASL watch reads the client's <auth>: for the MRA access policy, and to check OAuth tokens at the
    // edge.
    if (w_.gen()->cfg.mra_policy.enabled || w_.gen()->oauth) watch_ = std::make_unique<XmppSaslWatch>();
    std::vector<Candidate> unreachable;
    for (const mra::UcNode* n : snap->nodes_of(dep, mra::NodeType::ImP)) {
        // Nodes discovery could not reach are tried last, not skipped: the state may be stale.
        (n->status == mra::NodeStatus::Unreachable ? unreachable : nodes_)
            .push_back({n->name, n->tls_verify});
    }
    if (nodes_.size() > 1) {
        // Spread sessions over the deployment's nodes; failover walks the rest in order.
        std::rotate(nodes_.begin(), nodes_.begin() + long(w_.xmpp().next_start() % nodes_.size()),
                    nodes_.end());
    }
    nodes_.insert(nodes_.end(), unreachable.begin(), unreachable.end());
    if (nodes_.empty())
        return refuse(503, "remote-connection-failed",
                      fmt::format("no IM and Presence node discovered in deployment {}", dep), "no_node");
    timer_ = std::make_unique<core::Timer>(w_.worker().loop(), [this] {
        attempt_failed(fmt::format("{}: no XMPP stream within {} ms", cur_.name, kNegotiateTimeoutMs));
    });
    try_next();
}

void XmppUpstream::try_next() {
    neg_.reset();
    if (next_ >= nodes_.size()) {
        return refuse(502, "remote-connection-failed", "IM and Presence unreachable: " + last_error_,
                      "unreachable");
    }
    cur_ = nodes_[next_++];
    phase_ = Phase::Connecting;
    timer_->arm(kNegotiateTimeoutMs);
    std::weak_ptr<bool> alive = alive_;
    w_.resolver().resolve(cur_.name, [this, alive](Result<std::vector<net::SockAddr>> r) {
        if (alive.expired() || dying_) return;
        if (!r || r->empty())
            return attempt_failed(
                fmt::format("{} does not resolve{}", cur_.name, r ? "" : ": " + r.error().message));
        net::SockAddr a = r->front();
        if (a.family() == AF_INET6)
            reinterpret_cast<sockaddr_in6*>(&a.ss)->sin6_port = htons(kImpXmppPort);
        else
            reinterpret_cast<sockaddr_in*>(&a.ss)->sin_port = htons(kImpXmppPort);
        connect_to(a);
    });
}

void XmppUpstream::connect_to(const net::SockAddr& addr) {
    std::string err;
    up_ = net::Connection::connect(w_.worker().loop(), addr, nullptr, &err);
    if (!up_) return attempt_failed(err);
    // Callbacks of an abandoned attempt's connection (freed a loop turn later) must not reach this one.
    const uint64_t a = ++attempt_;
    up_->set_callbacks({[this, a] {
                            if (a == attempt_ && !dying_) on_up_ready();
                        },
                        [this, a](const char* d, size_t n) {
                            if (a == attempt_ && !dying_) on_up_data(d, n);
                        },
                        [this, a](std::string_view why) {
                            if (a == attempt_) on_up_close(why);
                        },
                        [this, a] {
                            if (a != attempt_ || dying_) return;
                            if (owed_ && s_) s_->consumed(owed_);
                            owed_ = 0;
                        }});
    EP_DEBUG(kLog, "{} ({}): connecting to IM&P {} at {}", client_, domain_, cur_.name, addr.str());
    up_->start();
}

void XmppUpstream::on_up_ready() {
    if (phase_ == Phase::Connecting) {
        phase_ = Phase::Header;
        neg_ = std::make_unique<xmpp::Framer>();
        up_->write(fmt::format("<?xml version='1.0'?><stream:stream xmlns='{}' xmlns:stream='{}' to='{}' "
                               "version='1.0'>",
                               xmpp::kClientNs, xmpp::kStreamsNs, xmpp::escape_xml(domain_)));
        return;
    }
    if (phase_ != Phase::Handshake) return;
    // The protected stream is ready: IM&P waits for a stream header, which is the client's, held in pending_.
    phase_ = Phase::Relaying;
    timer_->cancel();
    neg_.reset();
    count("ok");
    EP_INFO(kLog, "{} ({}): relaying to IM&P {} over TLS", client_, domain_, cur_.name);
    if (!s_ || !s_->send_headers({{":status", "200"}})) return;
    if (!pending_.empty()) relay_client(std::exchange(pending_, {}));
}

void XmppUpstream::forward_up(std::string_view data) {
    if (data.empty()) return;
    up_->write(data);
    if (up_->above_high_watermark())
        owed_ += data.size();
    else if (s_)
        s_->consumed(data.size());
}

void XmppUpstream::relay_client(std::string_view data) {
    if (!watch_) return forward_up(data);
    // Held bytes are not consumed: the link's per-stream window bounds what waits for the decision.
    auto st = watch_->feed(data);
    forward_up(watch_->take());
    if (st == XmppSaslWatch::State::Pass) {
        auto rest = watch_->release();
        watch_.reset();
        forward_up(rest);
    } else if (st == XmppSaslWatch::State::Auth) {
        check_policy();
    }
}

void XmppUpstream::check_policy() {
    std::string user = watch_ ? watch_->user() : std::string();
    if (watch_ && !watch_->token().empty()) {
        // A token mechanism: edge-c checks the token itself (as on HTTP and SIP) before IM&P sees it, and the
        // policy applies to the token's user.
        const auto& v = w_.gen()->oauth;
        std::variant<OAuthIdentity, OAuthRefusal> r = OAuthRefusal::Malformed;
        const char* reason = nullptr;
        if (!v) {
            reason = "not_configured";
        } else {
            const uint64_t now_s = uint64_t(std::chrono::duration_cast<std::chrono::seconds>(
                                                std::chrono::system_clock::now().time_since_epoch())
                                                .count());
            r = v->validate(watch_->token(), deployment_, now_s);
            if (auto* why = std::get_if<OAuthRefusal>(&r)) reason = refusal_label(*why);
        }
        if (reason) {
            w_.counters()
                .get("edgepair_oauth_refused_total", "OAuth access tokens refused, by reason",
                     {{"reason", std::string(reason)}})
                .inc();
            EP_INFO(kLog, "{} ({}): SASL {} refused: OAuth token refused: {}", client_, domain_,
                    watch_->mechanism(), reason);
            return refuse_in_stream("not-authorized", "invalid access token", "oauth_refused");
        }
        user = std::get<OAuthIdentity>(r).user;
    }
    if (!watch_ || user.empty() || !w_.gen()->cfg.mra_policy.enabled) {
        // No user edge-c can read, or no policy to apply: IM&P decides alone.
        if (watch_) {
            auto rest = watch_->release();
            watch_.reset();
            forward_up(rest);
        }
        return;
    }
    std::weak_ptr<bool> alive = alive_;
    w_.mra_access().lookup(user, deployment_, [this, alive, user](Result<UserAccess> r) {
        if (alive.expired() || dying_ || phase_ != Phase::Relaying || !watch_) return;
        const auto& pc = w_.gen()->cfg.mra_policy;
        if (!r && !pc.allow_on_lookup_error)
            return refuse_in_stream("remote-connection-failed", "user directory unavailable",
                                    "policy_lookup_failed");
        // The resource (which names the platform) is bound only after SASL: the class is not known yet.
        MraPolicy pol =
            r ? effective_policy(*r, DeviceClass::Unknown, pc.unknown_device_class) : MraPolicy::ImVoiceVideo;
        if (!policy_allows(pol, MraService::Xmpp)) {
            w_.mra_access().count_refusal(MraService::Xmpp, pol);
            EP_INFO(kLog, "{} ({}): user {} refused: MRA access policy {}", client_, domain_, user,
                    policy_label(pol));
            return refuse_in_stream("policy-violation",
                                    fmt::format("MRA access policy: {}", policy_label(pol)), "mra_policy");
        }
        auto rest = watch_->release();
        watch_.reset();
        forward_up(rest);
    });
}

void XmppUpstream::refuse_in_stream(std::string_view condition, std::string text, std::string_view reason) {
    // IM&P's stream is open towards the client (its header and features went through): the error goes in it,
    // and IM&P never sees the held <auth>.
    close_reason_ = reason;
    phase_ = Phase::Done;
    size_t held = watch_ ? watch_->release().size() : 0;
    watch_.reset();
    ++attempt_;
    if (up_) w_.retire(std::move(up_));
    if (!s_) return destroy_later();
    if (held) s_->consumed(held);
    s_->write(
        fmt::format("<stream:error><{} xmlns='{}'/><text xmlns='{}'>{}</text></stream:error></stream:stream>",
                    condition, xmpp::kStreamErrorNs, xmpp::kStreamErrorNs, xmpp::escape_xml(text)));
    // The stream's on_close frees us (the handler must outlive the stream).
    s_->end();
}

void XmppUpstream::on_up_data(const char* data, size_t len) {
    if (phase_ == Phase::Relaying) {
        access_.add_out(len);
        if (s_ && !s_->write(std::string_view(data, len)) && !up_paused_) {
            up_paused_ = true;
            up_->pause_reading();
        }
        return;
    }
    if (!neg_ || (phase_ != Phase::Header && phase_ != Phase::Proceed)) return;
    neg_->feed(std::string_view(data, len));
    while (auto ev = neg_->next()) {
        switch (ev->type) {
        case xmpp::EventType::stream_open:
        case xmpp::EventType::keepalive:
            break;
        case xmpp::EventType::stanza:
            if (phase_ == Phase::Header && ev->name == "features" && ev->ns == xmpp::kStreamsNs) {
                if (ev->raw.find(xmpp::kTlsNs) == std::string::npos)
                    return attempt_failed(fmt::format("{} does not offer STARTTLS", cur_.name));
                phase_ = Phase::Proceed;
                up_->write(fmt::format("<starttls xmlns='{}'/>", xmpp::kTlsNs));
            } else if (phase_ == Phase::Proceed && ev->name == "proceed" && ev->ns == xmpp::kTlsNs) {
                auto& gen = w_.gen();
                auto& ctx = cur_.verify ? gen->upstream_verify : gen->upstream_noverify;
                phase_ = Phase::Handshake;
                neg_.reset();
                if (!up_->start_tls(ctx->new_ssl(cur_.name)))
                    return attempt_failed(fmt::format("{}: TLS upgrade refused", cur_.name));
                return; // the rest arrives encrypted
            } else if (ev->name == "error" && ev->ns == xmpp::kStreamsNs) {
                return attempt_failed(fmt::format("{} sent a stream error: {}", cur_.name, ev->raw));
            } else if (ev->name == "failure") {
                return attempt_failed(fmt::format("{} refused STARTTLS", cur_.name));
            }
            break;
        case xmpp::EventType::starttls:
        case xmpp::EventType::stream_close:
            return attempt_failed(fmt::format("{} closed the stream during negotiation", cur_.name));
        case xmpp::EventType::error:
            return attempt_failed(fmt::format("{} sent malformed XML: {}", cur_.name, ev->detail));
        }
    }
}

void XmppUpstream::on_up_close(std::string_view why) {
    if (dying_) return;
    if (phase_ == Phase::Done) return destroy_later(); // we closed it after the link stream went away
    if (phase_ != Phase::Relaying) return attempt_failed(fmt::format("{}: {}", cur_.name, why));
    phase_ = Phase::Done;
    if (close_reason_.empty())
        close_reason_ = why == "closed by peer" || why == "closed" ? "server_closed" : "server_cut";
    EP_INFO(kLog, "{} ({}): IM&P {} connection ended: {}", client_, domain_, cur_.name, why);
    if (s_) {
        // A TLS close after </stream:stream> is a clean end; anything else cut the stream mid-way and edge-e
        // must tell the client so.
        if (why == "closed by peer" || why == "closed")
            s_->end();
        else
            s_->reset(link::kInternalError);
        if (why != "closed by peer" && why != "closed") s_ = nullptr;
    }
    if (!s_) destroy_later();
}

void XmppUpstream::attempt_failed(std::string why) {
    if (dying_ || phase_ == Phase::Relaying || phase_ == Phase::Done) return;
    EP_WARN(kLog, "{} ({}): IM&P attempt failed: {}", client_, domain_, why);
    last_error_ = std::move(why);
    // Not inline: this may run inside the upstream connection's own callback.
    std::weak_ptr<bool> alive = alive_;
    phase_ = Phase::Connecting;
    ++attempt_;
    if (up_) {
        // Freed on the next turn: this may run inside that connection's own callback.
        w_.retire(std::move(up_));
    }
    w_.worker().loop().post([this, alive] {
        if (!alive.expired() && !dying_) try_next();
    });
}

void XmppUpstream::refuse(int status, std::string_view condition, std::string reason,
                          std::string_view result) {
    count(result);
    if (close_reason_.empty()) close_reason_ = result;
    EP_INFO(kLog, "{} ({}): refused: {}", client_, domain_, reason);
    phase_ = Phase::Done;
    if (timer_) timer_->cancel();
    if (s_) {
        if (!pending_.empty()) s_->consumed(pending_.size());
        pending_.clear();
        for (auto& c : reason)
            if (c == '\r' || c == '\n') c = ' ';
        s_->send_headers({{":status", std::to_string(status)},
                          {"x-xmpp-error", std::string(condition)},
                          {"x-xmpp-reason", reason}},
                         true);
        // The stream's on_close (edge-e resets it on the refusal, or the link ends) frees us: the handler
        // must outlive the stream.
        return;
    }
    destroy_later();
}

void XmppUpstream::count(std::string_view result) {
    w_.xmpp().count(result);
}

void XmppUpstream::on_data(link::LinkStream& s, const char* data, size_t len) {
    if (phase_ == Phase::Done) return s.consumed(len);
    access_.add_in(len);
    if (phase_ != Phase::Relaying) {
        pending_.append(data, len);
        return;
    }
    (void)s;
    relay_client(std::string_view(data, len));
}

void XmppUpstream::on_end(link::LinkStream&) {
    // The client side is finished (edge-e closed the client connection): let IM&P know.
    if (phase_ == Phase::Relaying && up_) up_->close();
}

void XmppUpstream::on_writable(link::LinkStream&) {
    if (!up_paused_ || !up_) return;
    up_paused_ = false;
    up_->resume_reading();
}

void XmppUpstream::on_close(link::LinkStream&, const core::Failure& failure) {
    s_ = nullptr;
    if (close_reason_.empty()) close_reason_ = failure ? "link_closed" : "client_closed";
    if (failure) EP_DEBUG(kLog, "{} ({}): link stream closed: {}", client_, domain_, failure.str());
    if (up_ && phase_ == Phase::Relaying) {
        // Flush what the client sent last, then close; the upstream's on_close frees us.
        phase_ = Phase::Done;
        up_->close();
        return;
    }
    destroy_later();
}

void XmppUpstream::destroy_later() {
    if (dying_) return;
    dying_ = true;
    *alive_ = false;
    if (timer_) timer_->cancel();
    access_.close(close_reason_.empty() ? "closed" : close_reason_);
    // Not inline: this may run inside a LinkStream or Connection callback that still holds `this`.
    w_.retire(this);
}

} // namespace

XmppService::XmppService(CWorker& w) : w_(w) {
    for (size_t i = 0; i < kResults.size(); ++i)
        results_[i] = &w.app().metrics().counter("edgepair_xmpp_upstream_total",
                                                 "XMPP sessions edge-c set up towards IM and Presence",
                                                 {{"result", std::string(kResults[i])}});
}

void XmppService::count(std::string_view result) {
    for (size_t i = 0; i < kResults.size(); ++i)
        if (kResults[i] == result) return results_[i]->inc();
}

void XmppService::serve(link::LinkStream* s, const link::Headers& headers) {
    auto* x = w_.own(std::make_unique<XmppUpstream>(w_, s, headers));
    s->set_handler(x);
    x->start();
}

} // namespace edgepair::edge_c
