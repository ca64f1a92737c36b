#include "edge-e/federation.h"

#include <algorithm>

#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "common/net/x509_check.h"
#include "common/obs/access_log.h"
#include "common/obs/log.h"
#include "common/xmpp/writer.h"

namespace edgepair::edge_e {

namespace {

constexpr const char* kLog = "xmpp-s2s";
constexpr uint16_t kDefaultS2sPort = 5269;    // RFC 6120 3.2.2: the fallback when there is no SRV record
constexpr size_t kMaxLabelledDomains = 256;   // per worker; later domains are counted as "other"
constexpr size_t kMaxHeldFromImp = 64 * 1024; // IM&P's bytes before the remote's stream is ready
constexpr std::string_view kRefusals[] = {
    "denied",       "not_allowed", "bad_domain",      "tls_required",       "bad_certificate",
    "host_unknown", "no_link",     "imp_unreachable", "remote_unreachable", "bad_stream"};

std::string new_stream_id() {
    unsigned char b[12];
    if (RAND_bytes(b, sizeof b) != 1) throw std::runtime_error("RAND_bytes failed");
    std::string out;
    for (unsigned char c : b)
        out += fmt::format("{:02x}", c);
    return out;
}

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

void set_port(net::SockAddr& a, uint16_t port) {
    if (a.family() == AF_INET6)
        reinterpret_cast<sockaddr_in6*>(&a.ss)->sin6_port = htons(port);
    else
        reinterpret_cast<sockaddr_in*>(&a.ss)->sin_port = htons(port);
}

// The peer certificate of a TLS connection names `domain` in its DNS SANs (RFC 6120 13.7.2.1 / RFC 6125).
bool peer_cert_names(SSL* ssl, std::string_view domain, std::string* why) {
    X509* cert = ssl ? SSL_get1_peer_certificate(ssl) : nullptr;
    if (!cert) {
        *why = "no certificate presented";
        return false;
    }
    net::CertInfo info = net::cert_info(cert);
    X509_free(cert);
    if (net::san_matches(info, domain)) return true;
    *why = fmt::format("certificate does not name {}", domain);
    return false;
}

// ---- inbound: a remote server -> edge-e -> link -> edge-c -> IM&P --------------------------------------

class S2sInSession final : public ClientSession, public link::StreamHandler {
  public:
    S2sInSession(Federation& fed, int fd)
        : fed_(fed), ws_(fed.ws()), gen_(ws_.gen()), sec_(fed.security()),
          conn_(std::make_unique<net::Connection>(ws_.worker().loop(), fd, nullptr, true)) {
        fr_ = std::make_unique<xmpp::Framer>(framer_options());
        conn_->set_callbacks(
            {[this] { on_ready(); }, [this](const char* d, size_t n) { on_remote_data(d, n); },
             [this](std::string_view why) { on_remote_close(why); }, [this] { on_drained(); }});
        conn_->set_idle_timeout(uint64_t(gen_->cfg.limits.client_idle_timeout.count()));
        access_.open(gen_->access_log, "xmpp-s2s", ws_.next_request_id(), peer());
        conn_->start();
    }
    ~S2sInSession() override { detach_stream(); }

    void on_headers(link::LinkStream&, const link::Headers& h) override;
    void on_data(link::LinkStream& s, const char* data, size_t len) override;
    void on_end(link::LinkStream&) override;
    void on_writable(link::LinkStream&) override;
    void on_close(link::LinkStream&, const core::Failure& failure) override;

  private:
    enum class Phase { Plain, Handshake, Tls, Done };

    xmpp::FramerOptions framer_options() {
        auto o = xmpp::s2s_framer_options(size_t(gen_->cfg.federation.xmpp->max_stanza_size));
        o.accept_to = [this](std::string_view to) { return fed_.local_domain(to); };
        return o;
    }

    void on_ready() {
        if (phase_ != Phase::Handshake) return;
        phase_ = Phase::Tls;
        EP_DEBUG(kLog, "{}: TLS up with {}, waiting for the restarted stream", peer(), from_);
    }

    void on_remote_data(const char* data, size_t len) {
        if (phase_ == Phase::Done) return;
        access_.add_in(len);
        fr_->feed(std::string_view(data, len));
        while (phase_ == Phase::Plain || phase_ == Phase::Tls) {
            auto ev = fr_->next();
            if (!ev) break;
            if (phase_ == Phase::Plain && !stream_)
                plain_event(*ev);
            else
                relay_event(*ev);
        }
    }

    void plain_event(xmpp::Event& ev) {
        switch (ev.type) {
        case xmpp::EventType::stream_open: {
            to_ = ev.header.to;
            from_ = xmpp::normalise_domain(ev.header.from);
            if (from_.empty())
                return refuse(xmpp::StreamErrorCondition::improper_addressing,
                              "a server-to-server stream needs a valid 'from' domain", "bad_domain");
            if (auto why = fed_.policy().refusal(from_); !why.empty())
                return refuse(xmpp::StreamErrorCondition::policy_violation,
                              fmt::format("{} may not federate with {}", from_, to_), why);
            if (sec_ != xmpp::S2sSecurity::Required) {
                // Plaintext first: the stream goes through from its first header, so IM&P's stream id is the
                // one a remote that stays in plaintext computes its dialback key over. In optional mode
                // IM&P's first features get a STARTTLS offer (edge-e's own, IM&P's inside hop being TLS
                // already); a remote that takes it restarts on a new link stream after the handshake.
                if (!open_link(ev.header, "none")) return;
                if (sec_ == xmpp::S2sSecurity::Optional)
                    s2c_ = std::make_unique<xmpp::Framer>(
                        xmpp::s2s_framer_options(size_t(gen_->cfg.federation.xmpp->max_stanza_size)));
                return;
            }
            // Required: edge-e answers the pre-TLS stream itself and insists on STARTTLS (a remote that went
            // on without TLS would use our stream id for dialback with IM&P, which chose another).
            id_ = new_stream_id();
            conn_->write(xmpp::s2s_stream_header(to_, from_, id_) + xmpp::s2s_features(true, true, false));
            header_sent_ = true;
            return;
        }
        case xmpp::EventType::starttls:
            conn_->write(xmpp::starttls_proceed());
            phase_ = Phase::Handshake;
            fr_->restart();
            if (!conn_->start_tls(gen_->s2s_tls->new_ssl())) {
                phase_ = Phase::Done;
                conn_->abort("starttls: connection not upgradable");
            }
            return;
        case xmpp::EventType::stanza:
            return refuse(xmpp::StreamErrorCondition::policy_violation, "STARTTLS is required",
                          "tls_required");
        case xmpp::EventType::keepalive:
            return;
        case xmpp::EventType::stream_close:
            phase_ = Phase::Done;
            conn_->write(xmpp::stream_close());
            conn_->close();
            return;
        case xmpp::EventType::error:
            return refuse(ev.condition, ev.detail,
                          ev.condition == xmpp::StreamErrorCondition::host_unknown ? "host_unknown"
                                                                                   : "bad_stream");
        }
    }

    // After TLS (or from the first header in plaintext mode): every event goes to IM&P as received.
    void relay_event(xmpp::Event& ev) {
        switch (ev.type) {
        case xmpp::EventType::stream_open: {
            if (stream_)
                return refuse(xmpp::StreamErrorCondition::policy_violation, "stream restarted", "bad_stream");
            std::string from = xmpp::normalise_domain(ev.header.from);
            if (from.empty() || from != from_)
                return refuse(xmpp::StreamErrorCondition::invalid_from,
                              "the restarted stream names another domain", "bad_domain");
            std::string why;
            if (sec_ == xmpp::S2sSecurity::Required && !peer_cert_names(conn_->ssl(), from_, &why))
                return refuse(xmpp::StreamErrorCondition::not_authorized, why, "bad_certificate");
            to_ = ev.header.to;
            open_link(ev.header, sec_ == xmpp::S2sSecurity::Required ? "verified" : "tls");
            return;
        }
        case xmpp::EventType::stanza:
            // A dialback request asserts a sending domain of its own (XEP-0220 2.1.1; several may share one
            // connection, XEP-0220 2.3): it is held to the domain lists too.
            if (ev.ns == xmpp::kDialbackNs && (ev.name == "result" || ev.name == "verify")) {
                std::string from = xmpp::start_tag_attr(ev.raw, "from");
                if (auto why = fed_.policy().refusal(from); !why.empty())
                    return refuse(xmpp::StreamErrorCondition::policy_violation,
                                  fmt::format("{} may not federate", from), why);
            }
            return to_link(ev.raw);
        case xmpp::EventType::keepalive:
            return to_link(ev.raw);
        case xmpp::EventType::stream_close:
            return to_link(ev.raw.empty() ? xmpp::stream_close() : ev.raw);
        case xmpp::EventType::starttls:
            if (offered_ && !conn_->ssl()) {
                // The remote takes the offer: this plaintext stream (and IM&P's side of it) ends here.
                detach_stream();
                s2c_.reset();
                offered_ = false;
                relayed_ = false;
                conn_->write(xmpp::starttls_proceed());
                phase_ = Phase::Handshake;
                fr_->restart();
                if (!conn_->start_tls(gen_->s2s_tls->new_ssl())) {
                    phase_ = Phase::Done;
                    conn_->abort("starttls: connection not upgradable");
                }
                return;
            }
            return refuse(xmpp::StreamErrorCondition::policy_violation,
                          conn_->ssl() ? "TLS is already established" : "STARTTLS was not offered",
                          "bad_stream");
        case xmpp::EventType::error:
            return refuse(ev.condition, ev.detail,
                          ev.condition == xmpp::StreamErrorCondition::host_unknown ? "host_unknown"
                                                                                   : "bad_stream");
        }
    }

    bool open_link(const xmpp::StreamHeader& h, const char* tls) {
        link::LinkConn* lc = ws_.pick_link();
        if (lc)
            stream_ = lc->open_stream(link::StreamKind::Xmpp,
                                      {{std::string(kS2sHeader), "in"},
                                       {"x-client-addr", peer()},
                                       {"x-domain", h.to},
                                       {"x-xmpp-from", from_},
                                       {"x-s2s-tls", tls},
                                       {std::string(obs::kRequestIdHeader), access_.id()}},
                                      this);
        if (!stream_) {
            refuse(xmpp::StreamErrorCondition::remote_connection_failed, "traversal link to edge-c is down",
                   "no_link");
            return false;
        }
        EP_INFO(kLog, "{}: federation stream from {} to {} on link stream {} (tls: {})", peer(), from_, h.to,
                stream_->id(), tls);
        to_link(h.raw);
        return true;
    }

    void to_link(std::string_view bytes) {
        if (!stream_) return;
        if (!stream_->write(bytes) && !paused_) {
            paused_ = true;
            conn_->pause_reading();
        }
    }

    void refuse(xmpp::StreamErrorCondition c, std::string_view text, std::string_view reason) {
        if (phase_ == Phase::Done) return;
        phase_ = Phase::Done;
        fed_.count_refusal(reason);
        ws_.counters().xmpp_error(c).inc();
        if (close_reason_.empty()) close_reason_ = std::string(reason);
        EP_INFO(kLog, "{}: refused ({}): {}: {}", peer(), reason, xmpp::condition_name(c), text);
        // RFC 6120 4.9.1.3: our stream header first when the remote has not seen one (ours or IM&P's).
        std::string out =
            relayed_ || header_sent_ ? std::string() : xmpp::s2s_stream_header(to_, from_, new_stream_id());
        out += xmpp::stream_error(c, text);
        conn_->write(out);
        conn_->close();
        detach_stream();
    }

    void detach_stream() {
        if (!stream_) return;
        auto* s = stream_;
        stream_ = nullptr;
        s->set_handler(nullptr);
        s->reset(link::kCancel);
    }

    void on_drained() {
        if (owed_ && stream_) stream_->consumed(owed_);
        owed_ = 0;
    }

    void on_remote_close(std::string_view why) {
        EP_DEBUG(kLog, "{}: closed: {}", peer(), why);
        if (phase_ == Phase::Handshake) {
            ws_.app().counters().tls_handshake_failures->inc();
            if (sec_ == xmpp::S2sSecurity::Required) fed_.count_refusal("bad_certificate");
        }
        phase_ = Phase::Done;
        if (stream_) {
            // The remote went away: IM&P sees its side end.
            auto* s = stream_;
            stream_ = nullptr;
            s->set_handler(nullptr);
            s->end();
        }
        access_.close(close_reason_.empty() ? "client_closed" : close_reason_);
        ws_.remove(this);
    }

    std::string peer() const { return conn_->peer().str(); }

    Federation& fed_;
    WorkerState& ws_;
    std::shared_ptr<const Generation> gen_;
    xmpp::S2sSecurity sec_;
    std::unique_ptr<net::Connection> conn_;
    std::unique_ptr<xmpp::Framer> fr_;
    std::unique_ptr<xmpp::Framer> s2c_; // optional mode, plaintext: IM&P's side until its first features
    bool offered_ = false;              // ... which went out with edge-e's STARTTLS offer added
    link::LinkStream* stream_ = nullptr;
    Phase phase_ = Phase::Plain;
    std::string to_, from_, id_;
    bool header_sent_ = false; // our own pre-TLS header went out
    bool relayed_ = false;     // IM&P's bytes reached the remote (its header is out)
    obs::GaugeHold open_;      // taken when the stream is relayed (edgepair_xmpp_federation_open)
    size_t owed_ = 0;
    bool paused_ = false;
    obs::FlowAccess access_;
    std::string close_reason_;
};

void S2sInSession::on_headers(link::LinkStream&, const link::Headers& h) {
    auto status = link::header_value(h, ":status");
    if (status == "200") {
        if (!open_.held()) open_ = fed_.count_session("in", from_);
        return;
    }
    std::string why(link::header_value(h, "x-xmpp-reason"));
    refuse(xmpp::StreamErrorCondition::remote_connection_failed,
           why.empty() ? fmt::format("edge-c answered {}", status) : why, "imp_unreachable");
}

void S2sInSession::on_data(link::LinkStream& s, const char* data, size_t len) {
    if (phase_ == Phase::Done) return s.consumed(len);
    relayed_ = true;
    access_.add_out(len);
    if (s2c_) {
        s2c_->feed(std::string_view(data, len));
        std::string out;
        while (auto ev = s2c_->next()) {
            switch (ev->type) {
            case xmpp::EventType::stream_open:
                out += ev->header.raw;
                break;
            case xmpp::EventType::stream_close:
                out += xmpp::stream_close();
                break;
            case xmpp::EventType::error:
                s.consumed(len);
                conn_->write(out);
                return refuse(xmpp::StreamErrorCondition::internal_server_error,
                              "IM&P sent a malformed stream", "bad_stream");
            case xmpp::EventType::stanza:
                if (!offered_ && ev->ns == xmpp::kStreamsNs && ev->name == "features") {
                    out += xmpp::add_starttls_feature(ev->raw);
                    offered_ = true;
                    break;
                }
                out += ev->raw;
                break;
            default:
                out += ev->raw;
                break;
            }
        }
        if (offered_) {
            // The offer is out: raw relaying from here, starting with what the framer holds unfinished.
            out += s2c_->unparsed();
            s2c_.reset();
        }
        conn_->write(out);
    } else {
        conn_->write(std::string_view(data, len));
    }
    if (conn_->above_high_watermark())
        owed_ += len;
    else
        s.consumed(len);
}

void S2sInSession::on_end(link::LinkStream&) {
    if (phase_ == Phase::Done) return;
    phase_ = Phase::Done;
    if (close_reason_.empty()) close_reason_ = "server_closed";
    conn_->close();
}

void S2sInSession::on_writable(link::LinkStream&) {
    if (!paused_) return;
    paused_ = false;
    conn_->resume_reading();
}

void S2sInSession::on_close(link::LinkStream&, const core::Failure& failure) {
    stream_ = nullptr;
    if (phase_ == Phase::Done) return;
    if (!failure) {
        phase_ = Phase::Done;
        if (close_reason_.empty()) close_reason_ = "server_closed";
        conn_->close();
        return;
    }
    EP_INFO(kLog, "{}: link stream lost: {}", peer(), failure.str());
    if (relayed_) {
        // IM&P's header went out already: only the error element and the close.
        phase_ = Phase::Done;
        if (close_reason_.empty()) close_reason_ = "link_closed";
        conn_->write(xmpp::stream_error(xmpp::StreamErrorCondition::remote_connection_failed,
                                        "connection to the IM and Presence server lost"));
        conn_->close();
        return;
    }
    refuse(xmpp::StreamErrorCondition::remote_connection_failed,
           "connection to the IM and Presence server lost", "imp_unreachable");
}

// ---- outbound: IM&P -> edge-c -> link -> edge-e -> a remote server ---------------------------------------

class S2sOutSession final : public ClientSession, public link::StreamHandler {
  public:
    S2sOutSession(Federation& fed, uint64_t id, std::string to, std::string from)
        : fed_(fed), ws_(fed.ws()), gen_(ws_.gen()), sec_(fed.security()), id_(id), to_(std::move(to)),
          from_(std::move(from)),
          fr_(xmpp::s2s_framer_options(size_t(gen_->cfg.federation.xmpp->max_stanza_size))) {}
    ~S2sOutSession() override {
        *alive_ = false;
        detach_stream();
    }

    void start(link::LinkConn* link);

    void on_headers(link::LinkStream&, const link::Headers&) override {}
    void on_data(link::LinkStream& s, const char* data, size_t len) override;
    void on_end(link::LinkStream&) override;
    void on_writable(link::LinkStream&) override;
    void on_close(link::LinkStream&, const core::Failure& failure) override;

  private:
    enum class Phase { Resolving, Connecting, Negotiating, Handshake, Relaying, Done };

    void maybe_dial();
    void next_attempt();
    void connect_to(const net::SockAddr& a);
    void on_remote_ready();
    void on_remote_data(const char* d, size_t n);
    void on_remote_close(std::string_view why);
    void attempt_failed(std::string why);
    void fail_to_imp(xmpp::StreamErrorCondition c, std::string text, std::string_view reason);
    void to_imp(std::string_view bytes);
    void finish(std::string_view reason);
    void detach_stream() {
        if (!stream_) return;
        auto* s = stream_;
        stream_ = nullptr;
        s->set_handler(nullptr);
        s->reset(link::kCancel);
    }

    Federation& fed_;
    WorkerState& ws_;
    std::shared_ptr<const Generation> gen_;
    xmpp::S2sSecurity sec_;
    uint64_t id_;
    std::string to_, from_;
    link::LinkStream* stream_ = nullptr;
    xmpp::Framer fr_;        // IM&P's side until its stream header
    std::string imp_header_; // IM&P's stream header: sent to the remote before and after STARTTLS
    std::string held_;       // IM&P's bytes after its header, before the remote stream is ready
    bool have_targets_ = false;
    std::vector<Federation::Target> targets_;
    size_t next_target_ = 0;
    std::vector<net::SockAddr> addrs_;
    size_t next_addr_ = 0;
    std::string cur_; // "host:port" being tried
    std::string last_error_;
    Phase phase_ = Phase::Resolving;
    std::unique_ptr<net::Connection> up_;
    std::vector<std::unique_ptr<net::Connection>> dead_; // abandoned attempts, freed with the session
    std::unique_ptr<xmpp::DialNegotiator> neg_;
    std::unique_ptr<core::Timer> timer_;
    uint64_t attempt_ = 0;
    size_t owed_ = 0;
    bool up_paused_ = false;
    bool tls_ = false;
    obs::FlowAccess access_;
    obs::GaugeHold open_; // taken when the stream is relayed (edgepair_xmpp_federation_open)
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

void S2sOutSession::start(link::LinkConn* link) {
    access_.open(gen_->access_log, "xmpp-s2s-out", ws_.next_request_id(), to_);
    stream_ = link ? link->open_stream(link::StreamKind::Xmpp,
                                       {{std::string(kS2sHeader), "out"},
                                        {"x-s2s-id", std::to_string(id_)},
                                        {"x-domain", to_},
                                        {"x-xmpp-from", from_},
                                        {std::string(obs::kRequestIdHeader), access_.id()}},
                                       this)
                   : nullptr;
    if (!stream_) {
        // edge-c times its request out and tells IM&P.
        fed_.count_refusal("no_link");
        return finish("no_link");
    }
    if (auto why = fed_.policy().refusal(to_); !why.empty())
        return fail_to_imp(xmpp::StreamErrorCondition::policy_violation,
                           fmt::format("federation with {} is not permitted", to_), why);
    timer_ = std::make_unique<core::Timer>(ws_.worker().loop(), [this] {
        attempt_failed(fmt::format("{}: no stream within {} ms", cur_,
                                   gen_->cfg.federation.xmpp->connect_timeout.count()));
    });
    std::weak_ptr<bool> alive = alive_;
    fed_.targets(to_, [this, alive](std::vector<Federation::Target> t) {
        if (alive.expired() || phase_ == Phase::Done) return;
        targets_ = std::move(t);
        have_targets_ = true;
        if (targets_.empty())
            return fail_to_imp(xmpp::StreamErrorCondition::remote_connection_failed,
                               fmt::format("no XMPP server found for {}", to_), "remote_unreachable");
        maybe_dial();
    });
}

void S2sOutSession::maybe_dial() {
    if (phase_ != Phase::Resolving || !have_targets_ || imp_header_.empty()) return;
    phase_ = Phase::Connecting;
    next_attempt();
}

void S2sOutSession::next_attempt() {
    if (phase_ == Phase::Done) return;
    if (next_addr_ < addrs_.size()) return connect_to(addrs_[next_addr_++]);
    if (next_target_ >= targets_.size())
        return fail_to_imp(xmpp::StreamErrorCondition::remote_connection_failed,
                           fmt::format("no server of {} answered: {}", to_, last_error_),
                           "remote_unreachable");
    auto t = targets_[next_target_++];
    cur_ = fmt::format("{}:{}", t.host, t.port);
    auto* r = fed_.resolver();
    if (!r) return attempt_failed("no resolver");
    std::weak_ptr<bool> alive = alive_;
    r->resolve(t.host, [this, alive, t](Result<std::vector<net::SockAddr>> res) {
        if (alive.expired() || phase_ == Phase::Done) return;
        addrs_.clear();
        next_addr_ = 0;
        if (!res || res->empty()) {
            fed_.count_dns_failure("address");
            last_error_ = fmt::format("{} does not resolve{}", t.host, res ? "" : ": " + res.error().message);
            EP_INFO(kLog, "to {}: {}", to_, last_error_);
            return next_attempt();
        }
        for (auto a : *res) {
            set_port(a, t.port);
            addrs_.push_back(a);
        }
        next_attempt();
    });
}

void S2sOutSession::connect_to(const net::SockAddr& addr) {
    std::string err;
    if (up_) dead_.push_back(std::move(up_));
    cur_ = addr.str();
    up_ = net::Connection::connect(ws_.worker().loop(), addr, nullptr, &err);
    if (!up_) return attempt_failed(err);
    const uint64_t a = ++attempt_;
    tls_ = false;
    neg_ = std::make_unique<xmpp::DialNegotiator>(sec_, size_t(gen_->cfg.federation.xmpp->max_stanza_size));
    up_->set_callbacks({[this, a] {
                            if (a == attempt_) on_remote_ready();
                        },
                        [this, a](const char* d, size_t n) {
                            if (a == attempt_) on_remote_data(d, n);
                        },
                        [this, a](std::string_view why) {
                            if (a == attempt_) on_remote_close(why);
                        },
                        [this, a] {
                            if (a != attempt_) return;
                            if (owed_ && stream_) stream_->consumed(owed_);
                            owed_ = 0;
                        }});
    timer_->arm(uint64_t(gen_->cfg.federation.xmpp->connect_timeout.count()));
    // The same bound as the inbound side's (limits.client_idle_timeout): servers keep idle streams open.
    up_->set_idle_timeout(uint64_t(gen_->cfg.limits.client_idle_timeout.count()));
    EP_DEBUG(kLog, "to {}: connecting to {}", to_, cur_);
    up_->start();
}

void S2sOutSession::on_remote_ready() {
    if (phase_ == Phase::Connecting) {
        phase_ = Phase::Negotiating;
        up_->write(imp_header_);
        return;
    }
    if (phase_ != Phase::Handshake) return;
    // TLS is up (and, in required mode, the certificate named the domain): IM&P's stream starts over here.
    phase_ = Phase::Relaying;
    timer_->cancel();
    tls_ = true;
    open_ = fed_.count_session("out", to_);
    EP_INFO(kLog, "to {}: federation stream from {} relayed to {} over TLS", to_, from_, cur_);
    up_->write(imp_header_);
    if (!held_.empty()) up_->write(held_);
    held_.clear();
}

void S2sOutSession::on_remote_data(const char* d, size_t n) {
    if (phase_ == Phase::Relaying) {
        access_.add_out(n);
        to_imp(std::string_view(d, n));
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
        auto& ctx = sec_ == xmpp::S2sSecurity::Required ? gen_->s2s_out_verify : gen_->s2s_out_noverify;
        // The certificate must name the domain, not the SRV target (RFC 6120 13.7.2.1).
        if (!up_->start_tls(ctx->new_ssl(to_))) attempt_failed("TLS upgrade refused");
        return;
    }
    case xmpp::DialStep::Plain:
        // The remote answered IM&P's own header: its header and features go to IM&P as they are.
        phase_ = Phase::Relaying;
        timer_->cancel();
        open_ = fed_.count_session("out", to_);
        EP_INFO(kLog, "to {}: federation stream from {} relayed to {} without TLS", to_, from_, cur_);
        to_imp(step.bytes);
        if (!held_.empty()) up_->write(held_);
        held_.clear();
        return;
    case xmpp::DialStep::Fail:
        return attempt_failed(step.reason);
    }
}

void S2sOutSession::on_remote_close(std::string_view why) {
    if (phase_ == Phase::Done) return;
    if (phase_ != Phase::Relaying) {
        if (phase_ == Phase::Handshake && sec_ == xmpp::S2sSecurity::Required)
            return attempt_failed(
                fmt::format("TLS with {} failed (certificate for {}?): {}", cur_, to_, why));
        return attempt_failed(std::string(why));
    }
    EP_INFO(kLog, "to {}: remote {} ended: {}", to_, cur_, why);
    if (stream_) {
        auto* s = stream_;
        stream_ = nullptr;
        s->set_handler(nullptr);
        s->end();
    }
    finish("server_closed");
}

void S2sOutSession::attempt_failed(std::string why) {
    if (phase_ == Phase::Done || phase_ == Phase::Relaying) return;
    EP_INFO(kLog, "to {}: attempt at {} failed: {}", to_, cur_, why);
    last_error_ = fmt::format("{}: {}", cur_, why);
    ++attempt_;
    if (timer_) timer_->cancel();
    if (up_) {
        // Kept until the session goes: this may run inside that connection's own callback.
        up_->abort("abandoned");
        dead_.push_back(std::move(up_));
    }
    phase_ = Phase::Connecting;
    // Not inline: this may run inside the connection's own callback.
    std::weak_ptr<bool> alive = alive_;
    ws_.worker().loop().post([this, alive] {
        if (!alive.expired() && phase_ == Phase::Connecting) next_attempt();
    });
}

void S2sOutSession::fail_to_imp(xmpp::StreamErrorCondition c, std::string text, std::string_view reason) {
    if (phase_ == Phase::Done) return;
    fed_.count_refusal(reason);
    ws_.counters().xmpp_error(c).inc();
    EP_INFO(kLog, "to {} (from {}): refused ({}): {}", to_, from_, reason, text);
    if (stream_) {
        // What IM&P reads as the remote's answer to its header.
        stream_->write(xmpp::s2s_refusal(to_, from_, new_stream_id(), c, text));
        auto* s = stream_;
        stream_ = nullptr;
        s->set_handler(nullptr);
        s->end();
    }
    finish(reason);
}

void S2sOutSession::to_imp(std::string_view bytes) {
    if (!stream_) return;
    if (!stream_->write(bytes) && !up_paused_ && up_) {
        up_paused_ = true;
        up_->pause_reading();
    }
}

void S2sOutSession::finish(std::string_view reason) {
    if (phase_ == Phase::Done) return;
    phase_ = Phase::Done;
    if (timer_) timer_->cancel();
    ++attempt_;
    if (up_) up_->close();
    access_.close(reason);
    ws_.remove(this);
}

void S2sOutSession::on_data(link::LinkStream& s, const char* data, size_t len) {
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
    if (imp_header_.empty()) {
        fr_.feed(std::string_view(data, len));
        while (auto ev = fr_.next()) {
            if (ev->type == xmpp::EventType::stream_open) {
                imp_header_ = ev->header.raw;
            } else if (ev->type == xmpp::EventType::error) {
                s.consumed(len);
                return fail_to_imp(ev->condition, "IM&P's stream header is unreadable", "bad_stream");
            } else if (!imp_header_.empty()) {
                held_ += ev->type == xmpp::EventType::stream_close ? xmpp::stream_close() : ev->raw;
            }
        }
        s.consumed(len);
        maybe_dial();
        return;
    }
    held_.append(data, len);
    s.consumed(len);
    if (held_.size() > kMaxHeldFromImp)
        fail_to_imp(xmpp::StreamErrorCondition::policy_violation, "too much data before the stream is up",
                    "bad_stream");
}

void S2sOutSession::on_end(link::LinkStream&) {
    // IM&P closed its side: pass the close on.
    if (phase_ == Phase::Relaying && up_) {
        up_->close();
        return;
    }
    finish("client_closed");
}

void S2sOutSession::on_writable(link::LinkStream&) {
    if (!up_paused_ || !up_) return;
    up_paused_ = false;
    up_->resume_reading();
}

void S2sOutSession::on_close(link::LinkStream&, const core::Failure& failure) {
    stream_ = nullptr;
    if (failure) EP_INFO(kLog, "to {}: link stream closed: {}", to_, failure.str());
    if (phase_ == Phase::Relaying && up_ && !failure) {
        up_->close();
        return;
    }
    finish(failure ? "link_closed" : "client_closed");
}

} // namespace

// ---- Federation ------------------------------------------------------------------------------------------

Federation::Federation(WorkerState& ws)
    : ws_(ws), memo_(ws.app().metrics()), dns_(ws.worker().loop(), kDefaultS2sPort) {
    // The fixed label sets exist from the start, so a dashboard sees zeros rather than nothing.
    for (auto r : kRefusals)
        memo_.get("edgepair_xmpp_federation_refusals_total", "XMPP federation streams refused, by reason",
                  {{"reason", std::string(r)}});
    for (auto s : {"srv", "address", "domain"})
        memo_.get("edgepair_xmpp_federation_dns_failures_total",
                  "XMPP federation DNS look-ups that found nothing usable, by stage", {{"stage", s}});
}

Federation::~Federation() {
    *alive_ = false;
}

void Federation::apply(const std::shared_ptr<const Generation>& gen) {
    // A reload that removes the section stops new federation streams; the open ones keep their generation.
    enabled_ = gen->cfg.federation.xmpp.has_value();
    if (!enabled_) return;
    const auto& fx = *gen->cfg.federation.xmpp;
    security_ = to_security(fx.security);
    policy_.allow = fx.allow;
    policy_.deny = fx.deny;
    local_ = fx.local_domains;
    std::vector<std::string> servers;
    for (auto& a : fx.dns_servers)
        servers.push_back(a.str());
    if (auto r = dns_.configure(servers, fx.dns_timeout, fx.dns_cache_ttl); !r)
        EP_ERROR(kLog, "worker {}: federation resolver: {}", ws_.worker().index(), r.error().message);
}

bool Federation::local_domain(std::string_view d) const {
    return federation_local_domain(d, local_, ws_.snapshot().get());
}

std::unique_ptr<ClientSession> Federation::make_inbound(int fd) {
    if (!enabled_) {
        ::close(fd);
        return nullptr;
    }
    return std::make_unique<S2sInSession>(*this, fd);
}

void Federation::on_control(link::LinkConn* link, std::string_view msg) {
    auto j = nlohmann::json::parse(msg, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return;
    if (j.value("type", "") != "s2s_dial") return;
    uint64_t id = 0;
    if (auto it = j.find("id"); it != j.end() && it->is_number_unsigned()) id = it->get<uint64_t>();
    if (!enabled_) {
        link->send_control(nlohmann::json{
            {"type", "s2s_failed"}, {"id", id}, {"error", "XMPP federation not configured on edge-e"}}
                               .dump());
        return;
    }
    std::string to = xmpp::normalise_domain(j.value("to", ""));
    std::string from = xmpp::normalise_domain(j.value("from", ""));
    if (id == 0 || to.empty() || from.empty()) {
        link->send_control(
            nlohmann::json{{"type", "s2s_failed"}, {"id", id}, {"error", "bad s2s_dial"}}.dump());
        return;
    }
    auto s = std::make_unique<S2sOutSession>(*this, id, to, from);
    auto* raw = s.get();
    ws_.add(SessionKind::XmppS2s, std::move(s));
    raw->start(link);
}

void Federation::targets(const std::string& domain, std::function<void(std::vector<Target>)> cb) {
    dns_.targets(
        domain, {{"_xmpp-server._tcp." + domain, "srv"}},
        [this](std::string_view stage) { count_dns_failure(stage); }, std::move(cb));
}

void Federation::count_refusal(std::string_view reason) {
    memo_
        .get("edgepair_xmpp_federation_refusals_total", "XMPP federation streams refused, by reason",
             {{"reason", std::string(reason)}})
        .inc();
}

obs::GaugeHold Federation::count_session(std::string_view direction, std::string_view domain) {
    std::string d(domain);
    if (!labelled_.count(d)) {
        if (labelled_.size() >= kMaxLabelledDomains)
            d = "other";
        else
            labelled_.insert(d);
    }
    obs::Labels labels{{"direction", std::string(direction)}, {"domain", d}};
    memo_
        .get("edgepair_xmpp_federation_sessions_total",
             "XMPP federation streams relayed, by direction and remote domain", labels)
        .inc();
    // Once per stream set-up, not per stanza: the registry's lock is not on a data path.
    return obs::GaugeHold(ws_.app().metrics().gauge(
        "edgepair_xmpp_federation_open", "XMPP federation streams open now, by direction and remote domain",
        labels));
}

void Federation::count_dns_failure(std::string_view stage) {
    memo_
        .get("edgepair_xmpp_federation_dns_failures_total",
             "XMPP federation DNS look-ups that found nothing usable, by stage",
             {{"stage", std::string(stage)}})
        .inc();
}

} // namespace edgepair::edge_e
