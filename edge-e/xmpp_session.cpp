// XMPP client session on 5222 (issue #7). edge-e answers the client's first stream itself: its header, the
// mandatory STARTTLS feature and <proceed/>, then the TLS handshake with the SNI-selected certificate. From
// the restarted stream on, everything is the IM&P node's business: the client's bytes go to edge-c over a
// link stream of kind xmpp and IM&P's come back unchanged, so SASL happens end to end with IM&P.
//
// edge-e keeps framing the client's side after TLS for two reasons only: the stanza size limit
// (limits.max_xmpp_stanza -> policy-violation) and well-formedness, both enforced here at the DMZ rather
// than inside the enterprise. That framer must follow the stream restart after SASL success, which only
// the server's side announces, so IM&P's bytes are framed too until <success/> (pre-auth traffic is a few
// small elements); after it they are relayed as raw chunks.
#include "edge-e/sessions.h"

#include <optional>

#include <fmt/format.h>
#include <openssl/rand.h>

#include "common/obs/access_log.h"
#include "common/obs/log.h"
#include "common/protection/category.h"
#include "common/xmpp/framer.h"
#include "common/xmpp/writer.h"

namespace edgepair::edge_e {

namespace {

constexpr const char* kLog = "xmpp";
constexpr std::string_view kSaslNs = "urn:ietf:params:xml:ns:xmpp-sasl";
// The client's framer gives its XML parser back (about 11 kB) once the stream has been quiet this long: a
// held session mostly waits, and a busy one does not pay the parser's rebuild (Framer::release_parser) at
// every read.
constexpr uint64_t kFramerQuietMs = 1000;

std::string new_stream_id() {
    unsigned char b[12];
    if (RAND_bytes(b, sizeof b) != 1) throw std::runtime_error("RAND_bytes failed");
    std::string out;
    for (unsigned char c : b)
        out += fmt::format("{:02x}", c);
    return out;
}

// SCRAM-*-PLUS binds the authentication to the TLS channel the server sees; that is edge-c's connection
// to IM&P, not the client's to us, so a client choosing it would always fail. The mechanisms are removed
// from the server's stream features before the client sees them. Only unprefixed <mechanism> elements (as
// every server writes them) are recognised.
std::string strip_plus_mechanisms(std::string_view raw) {
    std::string out;
    size_t i = 0;
    for (;;) {
        size_t open = raw.find("<mechanism", i);
        if (open == std::string_view::npos) break;
        size_t after = open + 10;
        if (after >= raw.size() || (raw[after] != '>' && raw[after] != ' ')) {
            out.append(raw.substr(i, after - i));
            i = after;
            continue;
        }
        size_t gt = raw.find('>', after);
        size_t close = gt == std::string_view::npos ? gt : raw.find("</mechanism>", gt);
        if (close == std::string_view::npos) break;
        std::string_view name = raw.substr(gt + 1, close - gt - 1);
        size_t end = close + 12;
        out.append(raw.substr(i, open - i));
        if (!name.ends_with("-PLUS")) out.append(raw.substr(open, end - open));
        i = end;
    }
    out.append(raw.substr(i));
    return out;
}

class XmppSession final : public ClientSession, public link::StreamHandler {
  public:
    XmppSession(WorkerState& ws, int fd)
        : ws_(ws), gen_(ws.gen()),
          conn_(std::make_unique<net::Connection>(ws.worker().loop(), fd, nullptr, true)),
          writer_(xmpp::ServerHeader{new_stream_id(), gen_->cfg.node_name, {}, "en"}) {
        c2s_ = std::make_unique<xmpp::Framer>(client_framer_options());
        quiet_ = std::make_unique<core::Timer>(ws.worker().loop(), [this] { c2s_->release_parser(); });
        conn_->set_callbacks(
            {[this] { on_ready(); }, [this](const char* d, size_t n) { on_client_data(d, n); },
             [this](std::string_view why) { on_client_close(why); }, [this] { on_drained(); }});
        conn_->set_idle_timeout(uint64_t(gen_->cfg.limits.client_idle_timeout.count()));
        access_.open(gen_->access_log, "xmpp", ws.next_request_id(), peer());
        conn_->start();
    }

    ~XmppSession() override { detach_stream(); }

    // link::StreamHandler
    void on_headers(link::LinkStream&, const link::Headers& h) override;
    void on_data(link::LinkStream& s, const char* data, size_t len) override;
    void on_end(link::LinkStream&) override;
    void on_writable(link::LinkStream&) override;
    void on_close(link::LinkStream&, const core::Failure& failure) override;

  private:
    enum class Phase { Plain, Handshake, Tls, Done };

    xmpp::FramerOptions client_framer_options() {
        xmpp::FramerOptions o;
        o.max_stanza_size = size_t(gen_->cfg.limits.max_xmpp_stanza);
        // Domains come from edge-c's snapshot; before edge-c has pushed one there is nothing to check
        // against, and the client learns the real problem (no link) after STARTTLS instead of host-unknown.
        o.accept_to = [this](std::string_view to) {
            auto snap = ws_.snapshot();
            if (!snap) return true;
            const mra::Domain* d = snap->find_domain(to);
            return d != nullptr && d->services.imp;
        };
        return o;
    }

    void on_ready() {
        if (phase_ != Phase::Handshake) return; // the plain connection's on_ready
        phase_ = Phase::Tls;
        sni_ = net::sni_of(conn_->ssl());
        EP_DEBUG(kLog, "{}: TLS up (sni {}), waiting for the restarted stream", peer(), sni_);
    }

    void on_client_data(const char* data, size_t len) {
        if (phase_ == Phase::Done) return;
        // A stream whose address was banned since it opened ends at its next input (docs/SECURITY.md).
        if (ws_.banned(conn_->peer()))
            return fail(xmpp::StreamErrorCondition::policy_violation, "source address banned");
        access_.add_in(len);
        c2s_->feed(std::string_view(data, len));
        quiet_->arm(kFramerQuietMs);
        while (phase_ == Phase::Plain || phase_ == Phase::Tls) {
            auto ev = c2s_->next();
            if (!ev) break;
            if (phase_ == Phase::Plain)
                plain_event(*ev);
            else
                tls_event(*ev);
        }
    }

    void plain_event(xmpp::Event& ev) {
        switch (ev.type) {
        case xmpp::EventType::stream_open:
            domain_ = ev.header.to;
            if (ev.header.version.empty()) {
                // A pre-1.0 stream cannot negotiate STARTTLS, and plaintext is never accepted here.
                return client_fault(xmpp::StreamErrorCondition::unsupported_version,
                                    "XMPP 1.0 with STARTTLS is required");
            }
            writer_ = xmpp::ServerStreamWriter(xmpp::ServerHeader{
                writer_.header().id, domain_.empty() ? gen_->cfg.node_name : domain_, {}, "en"});
            conn_->write(writer_.features());
            return;
        case xmpp::EventType::starttls: {
            conn_->write(xmpp::starttls_proceed());
            phase_ = Phase::Handshake;
            c2s_->restart();
            writer_.restart(new_stream_id());
            if (!conn_->start_tls(gen_->https_tls->new_ssl())) {
                phase_ = Phase::Done;
                conn_->abort("starttls: connection not upgradable");
            }
            return;
        }
        case xmpp::EventType::stanza:
            return client_fault(xmpp::StreamErrorCondition::policy_violation, "STARTTLS is required");
        case xmpp::EventType::keepalive:
            return;
        case xmpp::EventType::stream_close:
            phase_ = Phase::Done;
            conn_->write(xmpp::stream_close());
            conn_->close();
            return;
        case xmpp::EventType::error:
            return client_fault(ev.condition, ev.detail);
        }
    }

    void tls_event(xmpp::Event& ev) {
        switch (ev.type) {
        case xmpp::EventType::stream_open:
            if (!stream_ && !open_link(ev.header.to)) return;
            return to_link(ev.header.raw);
        case xmpp::EventType::stanza:
        case xmpp::EventType::keepalive:
            return to_link(ev.raw);
        case xmpp::EventType::stream_close:
            return to_link(ev.raw.empty() ? xmpp::stream_close() : ev.raw);
        case xmpp::EventType::starttls:
            return client_fault(xmpp::StreamErrorCondition::policy_violation, "TLS is already established");
        case xmpp::EventType::error:
            return client_fault(ev.condition, ev.detail);
        }
    }

    bool open_link(const std::string& to) {
        link::LinkConn* lc = ws_.pick_link();
        if (!lc) {
            fail(xmpp::StreamErrorCondition::remote_connection_failed, "traversal link to edge-c is down");
            return false;
        }
        domain_ = to;
        stream_ = lc->open_stream(link::StreamKind::Xmpp,
                                  {{"x-client-addr", peer()},
                                   {"x-sni", sni_},
                                   {"x-domain", domain_},
                                   {std::string(obs::kRequestIdHeader), access_.id()}},
                                  this);
        if (!stream_) {
            fail(xmpp::StreamErrorCondition::remote_connection_failed, "traversal link to edge-c is down");
            return false;
        }
        // The server framer sees IM&P's replies up to SASL success; it bounds them like the client's.
        xmpp::FramerOptions o;
        o.max_stanza_size = size_t(gen_->cfg.limits.max_xmpp_stanza);
        s2c_ = std::make_unique<xmpp::Framer>(o);
        EP_DEBUG(kLog, "{}: stream for {} on link stream {}", peer(), domain_, stream_->id());
        return true;
    }

    void to_link(std::string_view bytes) {
        if (!stream_) return;
        if (!stream_->write(bytes) && !paused_) {
            paused_ = true;
            conn_->pause_reading();
        }
    }

    void relay_to_client(std::string_view bytes) {
        if (bytes.empty()) return;
        // From now on a stream error (link loss) must not repeat the header IM&P already sent.
        if (!writer_.header_sent()) (void)writer_.open();
        access_.add_out(bytes.size());
        conn_->write(bytes);
    }

    // A stream error the client caused (malformed XML, a policy it broke): xmpp-intrusion. Link losses and
    // IM&P's own faults go through fail() alone.
    void client_fault(xmpp::StreamErrorCondition c, std::string_view text) {
        if (phase_ == Phase::Done) return;
        ws_.report(protection::Category::XmppIntrusion, conn_->peer());
        fail(c, text);
    }

    void fail(xmpp::StreamErrorCondition c, std::string_view text) {
        if (phase_ == Phase::Done) return;
        phase_ = Phase::Done;
        auto name = std::string(xmpp::condition_name(c));
        ws_.counters().xmpp_error(c).inc();
        if (close_reason_.empty()) close_reason_ = name;
        EP_INFO(kLog, "{}: stream error {}: {}", peer(), name, text);
        conn_->write(writer_.error(c, text));
        conn_->close();
        detach_stream();
    }

    // Gives the link stream up: with a reset (what is queued on it is discarded), or with END_STREAM after
    // it.
    enum class By { Reset, End };
    void detach_stream(By by = By::Reset) {
        if (!stream_) return;
        auto* s = stream_;
        stream_ = nullptr;
        s->set_handler(nullptr);
        if (by == By::End)
            s->end();
        else
            s->reset(link::kCancel);
    }

    void on_drained() {
        if (owed_ && stream_) stream_->consumed(owed_);
        owed_ = 0;
    }

    void on_client_close(std::string_view why) {
        EP_DEBUG(kLog, "{}: closed: {}", peer(), why);
        if (phase_ == Phase::Handshake) ws_.app().counters().tls_handshake_failures->inc();
        phase_ = Phase::Done;
        // END_STREAM, not a reset: the client's last stanzas and its </stream:stream> often arrive in the
        // same read as the close, and a reset would discard them while still queued on the link.
        detach_stream(By::End);
        access_.close(close_reason_.empty() ? "client_closed" : close_reason_);
        ws_.remove(this);
    }

    std::string peer() const { return conn_->peer().str(); }

    WorkerState& ws_;
    std::shared_ptr<const Generation> gen_; // certificates and limits stay those the session started with
    std::unique_ptr<net::Connection> conn_;
    std::unique_ptr<xmpp::Framer> c2s_, s2c_;
    std::unique_ptr<core::Timer> quiet_; // armed at every client read: c2s_ frees its parser when it fires
    xmpp::ServerStreamWriter writer_;
    link::LinkStream* stream_ = nullptr;
    Phase phase_ = Phase::Plain;
    std::string domain_, sni_;
    size_t owed_ = 0;          // link bytes written to the client while it was above its watermark
    bool paused_ = false;      // client reads paused: the link stream is above its watermark
    obs::FlowAccess access_;   // log.access: open at accept, close with the reason below
    std::string close_reason_; // first of: stream error condition, "server_closed"; else "client_closed"
};

void XmppSession::on_headers(link::LinkStream&, const link::Headers& h) {
    auto status = link::header_value(h, ":status");
    if (status == "200") return;
    // edge-c could not reach IM&P (or refused the domain); nothing of IM&P's went to the client yet.
    auto cond = link::header_value(h, "x-xmpp-error");
    auto c = cond == "host-unknown" ? xmpp::StreamErrorCondition::host_unknown
                                    : xmpp::StreamErrorCondition::remote_connection_failed;
    std::string why(link::header_value(h, "x-xmpp-reason"));
    fail(c, why.empty() ? fmt::format("edge-c answered {}", status) : why);
}

void XmppSession::on_data(link::LinkStream& s, const char* data, size_t len) {
    if (phase_ == Phase::Done) {
        s.consumed(len);
        return;
    }
    if (!s2c_) {
        relay_to_client(std::string_view(data, len));
    } else {
        s2c_->feed(std::string_view(data, len));
        while (s2c_ && phase_ != Phase::Done) {
            auto ev = s2c_->next();
            if (!ev) break;
            switch (ev->type) {
            case xmpp::EventType::stream_open:
                relay_to_client(ev->header.raw);
                break;
            case xmpp::EventType::stanza:
                if (ev->name == "features" && ev->ns == xmpp::kStreamsNs)
                    relay_to_client(strip_plus_mechanisms(ev->raw));
                else
                    relay_to_client(ev->raw);
                if (ev->name == "success" && ev->ns == kSaslNs) {
                    // The client opens a new stream next (RFC 6120 6.4.6); IM&P says nothing before it, so
                    // raw relaying from here loses nothing.
                    c2s_->restart();
                    while (auto rest = s2c_->next())
                        relay_to_client(rest->raw);
                    s2c_.reset();
                }
                break;
            case xmpp::EventType::keepalive:
            case xmpp::EventType::starttls:
                relay_to_client(ev->raw);
                break;
            case xmpp::EventType::stream_close:
                relay_to_client(xmpp::stream_close());
                break;
            case xmpp::EventType::error:
                EP_WARN(kLog, "{}: IM&P sent a malformed stream: {} ({})", peer(),
                        xmpp::condition_name(ev->condition), ev->detail);
                fail(xmpp::StreamErrorCondition::internal_server_error, "IM&P sent a malformed stream");
                break;
            }
        }
    }
    if (!stream_) return; // fail() reset it: no window to give back
    if (phase_ == Phase::Done) {
        s.consumed(len);
    } else if (conn_->above_high_watermark()) {
        owed_ += len;
    } else {
        s.consumed(len);
    }
}

void XmppSession::on_end(link::LinkStream&) {
    // IM&P ended its side (after its </stream:stream>): finish sending and close.
    if (phase_ == Phase::Done) return;
    phase_ = Phase::Done;
    if (close_reason_.empty()) close_reason_ = "server_closed";
    conn_->close();
}

void XmppSession::on_writable(link::LinkStream&) {
    if (!paused_) return;
    paused_ = false;
    conn_->resume_reading();
}

void XmppSession::on_close(link::LinkStream&, const core::Failure& failure) {
    stream_ = nullptr;
    if (!failure) {
        if (phase_ != Phase::Done) {
            phase_ = Phase::Done;
            if (close_reason_.empty()) close_reason_ = "server_closed";
            conn_->close();
        }
        return;
    }
    EP_INFO(kLog, "{}: link stream lost: {}", peer(), failure.str());
    fail(xmpp::StreamErrorCondition::remote_connection_failed,
         "connection to the IM and Presence server lost");
}

} // namespace

std::unique_ptr<ClientSession> make_xmpp_session(WorkerState& ws, int fd) {
    return std::make_unique<XmppSession>(ws, fd);
}

} // namespace edgepair::edge_e
