// SIP over TLS on 5061 (issue #6).
//
// edge-e is a framing relay, not a SIP proxy element: one link stream per client TLS connection, each
// complete message sent onto it with its boundary (common/sip/link_codec.h), and each message edge-c sends
// back written to the client. edge-c is the only element that adds Via / Record-Route / Path, so the client
// sees one proxy hop and the flow identity (which stream a request must go back on) lives in one place. What
// edge-e does itself is what must happen before a message may cross the link: framing (Content-Length, CRLF
// keep-alives answered here so they cost the link nothing), the size limit (513, the message skipped, the
// connection kept), the checks routing depends on (a message edge-c could not route is refused at the
// edge, a malformed header line gets 400, an unsupported Proxy-Require 420), the clean 503 when no link
// is up, and STUN keep-alives (RFC 5626 4.4.2, which Jabber sends every 30 s once it sees
// X-cisco-supports-AR_SK) answered here with a Binding success response, like the CRLF ones.
//
// edge-c writes the outside Record-Route (the edge-e address this client reached) and recognises the Route
// the pair advertises in get_edge_config, so each link stream tells it how the client reached edge-e:
// x-sni, x-edge-local (the local address of the client's connection), x-edge-host and x-edge-sip-port (the
// name and port get_edge_config advertises).
#include <array>
#include <functional>
#include <string_view>

#include <fmt/format.h>

#include "common/link/link_conn.h"
#include "common/obs/access_log.h"
#include "common/obs/log.h"
#include "common/protection/classify.h"
#include "common/sip/framer.h"
#include "common/sip/link_codec.h"
#include "common/sip/message.h"
#include "common/sip/mra_policy.h"
#include "common/sip/proxy.h"
#include "common/sip/stun.h"
#include "edge-e/sessions.h"

namespace edgepair::edge_e {

namespace {

// What edge-c may send in one message: its own framer limit toward Unified CM is at most 1 MiB, plus the
// headers it adds. More is a broken peer.
constexpr size_t kMaxFromLink = 2 * 1024 * 1024;

sip::FramerLimits client_limits(const config::EdgeEConfig& cfg) {
    sip::FramerLimits l;
    l.max_message_size = cfg.listeners.sip_tls ? size_t(cfg.listeners.sip_tls->max_message_size) : 10000;
    l.max_headers = 128;
    l.recover = true;
    l.stun = true;
    return l;
}

class SipSession final : public ClientSession, public link::StreamHandler {
  public:
    SipSession(WorkerState& ws, int fd, SSL* ssl)
        : ws_(ws), conn_(std::make_unique<net::Connection>(ws.worker().loop(), fd, ssl, true)),
          framer_(client_limits(ws.gen()->cfg)), from_link_(kMaxFromLink) {
        conn_->set_callbacks({[this] { on_ready(); },
                              [this](const char* d, size_t n) { on_client_data(d, n); },
                              [this](std::string_view why) { on_client_close(why); }, nullptr});
        conn_->set_idle_timeout(uint64_t(ws.gen()->cfg.limits.client_idle_timeout.count()));
        peer_ = conn_->peer().str();
        peer_ip_ = conn_->peer().ip();
        peer_port_ = conn_->peer().port();
        local_ = net::local_of(fd).str();
        access_.open(ws.gen()->access_log, "sip-flow", ws.next_request_id(), peer_);
        conn_->start();
    }

    ~SipSession() override { detach_stream(); }

    // ---- link::StreamHandler (edge-c's side of this client's flow) ----

    void on_headers(link::LinkStream&, const link::Headers& h) override {
        auto status = link::header_value(h, ":status");
        if (status != "200") EP_INFO("sip", "{}: edge-c refused the sip stream: {}", peer_, status);
    }

    void on_data(link::LinkStream& s, const char* data, size_t len) override {
        s.consumed(len);
        if (closing_) return;
        bool framed = from_link_.feed_each(std::string_view(data, len), [this](std::string_view msg) {
            note_auth_answer(msg);
            access_.add_out(msg.size());
            if (access_.active()) log_transaction(msg, false);
            conn_->write(msg);
            return true;
        });
        if (framed) return;
        count_error(SipError::LinkFormat);
        EP_WARN("sip", "{}: edge-c sent a message without a valid boundary", peer_);
        close_client();
    }

    void on_end(link::LinkStream&) override {
        // edge-c finished the flow (its upstream is gone or it refused the stream): the client must
        // reconnect and re-register, which is what a closed connection tells it.
        close_client();
    }

    void on_writable(link::LinkStream&) override {
        if (paused_) {
            paused_ = false;
            conn_->resume_reading();
        }
    }

    void on_close(link::LinkStream&, const core::Failure& failure) override {
        stream_ = nullptr;
        if (failure) EP_INFO("sip", "{}: sip stream closed: {}", peer_, failure.str());
        close_client();
    }

  private:
    void on_ready() {
        handshake_done_ = true;
        sni_ = net::sni_of(conn_->ssl());
    }

    void on_client_data(const char* data, size_t len) {
        access_.add_in(len);
        if (closing_) return;
        framer_.feed(std::string_view(data, len));
        while (!closing_) {
            auto ev = framer_.next();
            switch (ev.type) {
            case sip::FrameEventType::need_more:
                return;
            case sip::FrameEventType::keepalive_ping:
                conn_->write("\r\n");
                break;
            case sip::FrameEventType::keepalive_pong:
                break;
            case sip::FrameEventType::stun:
                on_stun(ev.message);
                break;
            case sip::FrameEventType::message:
                on_message(ev.message);
                break;
            case sip::FrameEventType::error:
                on_frame_error(*ev.error);
                if (ev.error->fatal) return;
                break;
            }
        }
    }

    template <class Reason> void count_error(Reason r) { ws_.counters().sip_error(r).inc(); }

    // A Binding request is answered with the address the flow comes from; a Binding indication (RFC 5389
    // 7.3.2) and any other STUN message need no answer and leave the flow as it is.
    void on_stun(std::string_view msg) {
        auto h = sip::stun::parse_header(msg);
        bool request = h && h->type == sip::stun::kBindingRequest;
        ws_.app()
            .metrics()
            .counter("edgepair_sip_stun_keepalives_total",
                     "STUN messages on client SIP/TLS flows (RFC 5626 keep-alives)",
                     {{"type", request ? "binding_request" : "other"}})
            .inc();
        if (!request) return;
        std::string answer = sip::stun::binding_success(*h, peer_ip_, peer_port_);
        if (!answer.empty()) conn_->write(answer);
        EP_DEBUG("sip", "{}: STUN Binding request answered", peer_);
    }

    void reply(const sip::Message& req, int status, std::string_view detail = {},
               const sip::Header* extra = nullptr) {
        if (req.method() == "ACK") return; // never answered (RFC 3261 17.2.1 / 17.2.3)
        // The detail may quote what the client sent; only printable ASCII goes into the status line.
        std::string reason;
        for (char c : detail.substr(0, 120))
            reason += (c >= 0x20 && c < 0x7f) ? c : '?';
        sip::Message in = req;
        sip::fill_received_rport(in, peer_ip_, peer_port_);
        auto r = sip::make_response(in, status, reason);
        if (extra) r.append_header(extra->name, extra->value);
        if (access_.active()) {
            auto key = transaction_key(req);
            if (!key.empty()) txns().finish(access_, key, status, "edge", req.method(), "in", call_tag(req));
        }
        conn_->write(r.serialize());
    }

    void on_frame_error(const sip::FrameError& e) {
        count_error(e.code);
        EP_INFO("sip", "{}: {} message: {} ({})", peer_, e.fatal ? "unframeable" : "refused",
                sip::metric_label(e.code), e.detail);
        if (e.can_reply) {
            if (auto m = sip::Message::parse_head(e.head); m && m->is_request()) {
                int status = sip::reply_status(e.code);
                reply(*m, status, status == 400 ? std::string_view(e.detail) : std::string_view{});
            }
        }
        // Fatal: the stream position is lost, nothing after this point can be trusted to start a message.
        // Otherwise the framer skipped just this message (a response is dropped: nothing answers one).
        if (e.fatal) close_client();
    }

    // sip-auth (issue #17): which REGISTER/INVITE transactions of this flow carried credentials, so that a
    // 401/407 to them counts as a failure and the first challenge does not. Only 40x answers are parsed
    // (below), so a transaction answered otherwise is never looked up again: the table is a small ring that
    // the next transactions overwrite, held in the session itself (a map of keys grew by one entry per
    // REGISTER refresh: about 5 kB per held flow). A flow has one or two authenticating transactions in
    // flight; one overwritten before its 401 is taken for a challenge, erring towards not banning.
    struct AuthTxn {
        uint64_t key = 0; // auth_key(); 0 = free
        bool credentials = false;
    };
    static constexpr size_t kAuthTxns = 4;
    // The transaction as transaction_key() names it (Call-ID, CSeq number and method), hashed.
    static uint64_t auth_key(const sip::Message& m) {
        auto cseq = m.cseq();
        const auto* call = m.find(sip::HeaderId::call_id);
        if (!cseq || !call) return 0;
        std::hash<std::string_view> h;
        uint64_t k =
            h(call->value) ^ (uint64_t(cseq->number) * 0x9E3779B97F4A7C15ull) ^ (h(cseq->method) << 1);
        return k ? k : 1;
    }
    void note_auth_request(const sip::Message& m) {
        if (m.method() != "REGISTER" && m.method() != "INVITE") return;
        uint64_t key = auth_key(m);
        if (!key) return;
        bool credentials = m.find("Authorization") || m.find("Proxy-Authorization");
        for (auto& t : auth_txns_)
            if (t.key == key) {
                t.credentials = credentials;
                return;
            }
        auth_txns_[auth_next_++ % kAuthTxns] = {key, credentials};
    }
    // Only 401, 403 and 407 are parsed here; every other answer costs a prefix comparison.
    void note_auth_answer(std::string_view msg) {
        if (msg.size() < 12 || msg.substr(0, 10) != "SIP/2.0 40" ||
            (msg[10] != '1' && msg[10] != '3' && msg[10] != '7'))
            return;
        auto m = sip::Message::parse_head(msg.substr(0, msg.find("\r\n\r\n")));
        if (!m || m->is_request()) return;
        auto cseq = m->cseq();
        if (!cseq) return;
        bool had = false;
        if (uint64_t key = auth_key(*m))
            for (auto& t : auth_txns_)
                if (t.key == key) {
                    had = t.credentials;
                    t = {};
                }
        if (protection::sip_auth_failure(m->status(), cseq->method, had))
            ws_.report(protection::Category::SipAuth, conn_->peer());
    }

    void on_message(std::string_view bytes) {
        // A flow whose address was banned since it opened ends at its next message (docs/SECURITY.md).
        if (ws_.banned(conn_->peer())) {
            EP_INFO("sip", "{}: flow closed: source address banned", peer_);
            close_client();
            return;
        }
        auto m = sip::Message::parse(bytes);
        if (!m) {
            // Framed but not parseable: there is no Via to answer on, so the flow cannot continue.
            count_error(SipError::Unparseable);
            EP_INFO("sip", "{}: unparseable message: {}", peer_, m.error().message);
            close_client();
            return;
        }
        sip::RoutingInfo info;
        auto v = sip::validate(*m, {}, &info);
        if (!v.ok()) {
            count_error(SipError::Invalid);
            EP_INFO("sip", "{}: {} refused: {}", peer_, m->is_request() ? m->method() : "response", v.detail);
            if (m->is_request()) reply(*m, v.status, v.detail);
            return;
        }
        if (m->is_request()) {
            // RFC 3261 16.3 step 5: the pair is the proxy a Proxy-Require addresses.
            auto unsupported = sip::unsupported_proxy_require(*m, sip::mra_supported_proxy_extensions());
            if (!unsupported.empty()) {
                count_error(SipError::BadExtension);
                sip::Header h;
                h.name = "Unsupported";
                for (const auto& t : unsupported)
                    h.value += (h.value.empty() ? "" : ", ") + t;
                reply(*m, 420, {}, &h);
                return;
            }
        }
        if (!ensure_stream(*m, info)) {
            count_error(SipError::NoLink);
            if (m->is_request()) reply(*m, 503, "Traversal link to edge-c is down");
            return;
        }
        if (access_.active()) log_transaction(*m, true);
        if (m->is_request()) note_auth_request(*m);
        if (!stream_->write(sip::link_encode(bytes))) {
            // The link stream's queue is full: stop reading this client until edge-c catches up.
            paused_ = true;
            conn_->pause_reading();
        }
    }

    // log.access: the transaction a message opens or ends. Only a hash of the Call-ID is logged; the key
    // matches a final response to its request by Call-ID and CSeq (number and method), which is what
    // identifies a transaction end to end across the proxy (the Via branch changes at edge-c).
    static std::string transaction_key(const sip::Message& m) {
        auto cseq = m.cseq();
        const auto* call = m.find(sip::HeaderId::call_id);
        if (!cseq || !call) return {};
        return fmt::format("{}\n{} {}", call->value, cseq->number, cseq->method);
    }
    obs::SipTransactionAccess& txns() {
        if (!txns_) txns_ = std::make_unique<obs::SipTransactionAccess>();
        return *txns_;
    }
    static std::string call_tag(const sip::Message& m) {
        const auto* call = m.find(sip::HeaderId::call_id);
        return call ? obs::hash_tag(call->value) : std::string();
    }
    void log_transaction(const sip::Message& m, bool from_client) {
        auto key = transaction_key(m);
        if (key.empty()) return;
        if (m.is_request()) {
            if (m.method() != "ACK")
                txns().begin(access_, std::move(key), m.method(), from_client ? "in" : "out", call_tag(m));
        } else if (m.status() >= 200) {
            txns().finish(access_, key, m.status());
        }
    }
    void log_transaction(std::string_view msg, bool from_client) {
        auto m = sip::Message::parse(msg);
        if (m) log_transaction(*m, from_client);
    }

    bool ensure_stream(const sip::Message& m, const sip::RoutingInfo& info) {
        if (stream_) return true;
        link::LinkConn* link = ws_.pick_link();
        if (!link) return false;
        // The domain the client serves: its AOR's host (the To of a REGISTER, the From otherwise), used
        // by edge-c to pick the deployment when the Request-URI names no Unified CM node.
        const auto& aor = (m.is_request() && m.method() == "REGISTER") ? info.to : info.from;
        const auto& cfg = ws_.gen()->cfg;
        link::Headers h{{"x-client-addr", peer_},
                        {"x-sni", sni_},
                        {"x-edge-local", local_},
                        {"x-edge-host", cfg.node_name},
                        {"x-edge-sip-port",
                         std::to_string(cfg.listeners.sip_tls ? cfg.listeners.sip_tls->listen.port : 0)},
                        {"x-domain", aor.uri.host},
                        {std::string(obs::kRequestIdHeader), access_.id()},
                        {std::string(sip::kLinkFormatHeader), std::string(sip::kLinkFormat)}};
        stream_ = link->open_stream(link::StreamKind::Sip, h, this);
        return stream_ != nullptr;
    }

    void detach_stream() {
        if (!stream_) return;
        // Half-close: edge-c sees the end of the client's flow and drops it; later bytes are discarded
        // by the link because no handler is attached.
        stream_->set_handler(nullptr);
        stream_->end();
        stream_ = nullptr;
    }

    void close_client() {
        if (closing_) return;
        closing_ = true;
        detach_stream();
        conn_->close();
    }

    void on_client_close(std::string_view why) {
        if (!handshake_done_) {
            ws_.app().counters().tls_handshake_failures->inc();
            EP_DEBUG("sip", "{}: {}", conn_->peer().str(), why);
        }
        if (txns_) txns_->close(closing_ ? "edge_closed" : "client_closed");
        access_.close(closing_ ? "edge_closed" : "client_closed");
        closing_ = true;
        detach_stream();
        ws_.remove(this);
    }

    WorkerState& ws_;
    std::unique_ptr<net::Connection> conn_;
    sip::Framer framer_;
    sip::LinkDecoder from_link_;
    link::LinkStream* stream_ = nullptr;
    std::string peer_, sni_, local_, peer_ip_;
    uint16_t peer_port_ = 0;
    bool handshake_done_ = false;
    bool closing_ = false;
    std::array<AuthTxn, kAuthTxns> auth_txns_{};
    uint8_t auth_next_ = 0;
    bool paused_ = false;
    obs::FlowAccess access_; // log.access: the flow's open and close lines, under the id sent to edge-c
    // log.access: one line per SIP transaction of the flow. Made on first use: its empty queue already
    // costs ~0.5 kB, which every held registration paid with the access log off.
    std::unique_ptr<obs::SipTransactionAccess> txns_;
};

} // namespace

std::unique_ptr<ClientSession> make_sip_session(WorkerState& ws, int fd, SSL* ssl) {
    return std::make_unique<SipSession>(ws, fd, ssl);
}

} // namespace edgepair::edge_e
