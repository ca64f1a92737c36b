#include "tools/edge-load/sip_client.h"

#include <fmt/format.h>

#include "common/core/version.h"
#include "common/sip/message.h"
#include "common/sip/proxy.h"
#include "tools/edge-load/source_addr.h"

namespace edgepair::load {

SipClient::SipClient(core::Loop& loop, const SipClientConfig& cfg, std::mt19937_64& rng, Events ev)
    : loop_(loop), cfg_(cfg), rng_(rng), ev_(std::move(ev)) {
    call_id_ = rand_token(12) + "@edge-load";
    tag_ = rand_token(6);
    // Jabber sends a stable +sip.instance (RFC 5626); a random UUID per client stands in for it.
    std::string h = rand_token(16);
    instance_ = fmt::format("{}-{}-{}-{}-{}", h.substr(0, 8), h.substr(8, 4), h.substr(12, 4),
                            h.substr(16, 4), h.substr(20, 12));
}

SipClient::~SipClient() {
    *alive_ = false;
    if (conn_) conn_->set_callbacks({});
}

std::string SipClient::rand_token(size_t bytes) {
    std::string s;
    for (size_t i = 0; i < bytes; ++i)
        s += fmt::format("{:02x}", unsigned(rng_() & 0xff));
    return s;
}

bool SipClient::connect(std::string* err) {
    SSL* ssl = cfg_.tls->new_ssl(cfg_.tls_name);
    conn_ = connect_from(loop_, cfg_.addr, cfg_.source, ssl, err);
    if (!conn_) return false;
    conn_->set_callbacks({[this] { on_ready(); }, [this](const char* d, size_t n) { on_data(d, n); },
                          [this](std::string_view why) { on_close(why); }, nullptr});
    conn_->start(); // may call on_close before it returns
    return true;
}

void SipClient::on_ready() {
    connected_ = true;
    auto la = net::local_of(conn_->fd());
    local_ = la.str();
    local_ip_ = la.ip();
    local_port_ = la.port();
    if (ev_.on_connected) ev_.on_connected();
}

void SipClient::register_now(uint32_t expires) {
    if (!conn_ || !connected_ || in_tx_) return;
    in_tx_ = true;
    challenged_ = false;
    tx_expires_ = expires;
    send_register(nullptr, false);
}

std::string SipClient::new_branch() {
    return sip::make_branch([this](uint8_t* out, size_t n) {
        for (size_t i = 0; i < n; ++i)
            out[i] = uint8_t(rng_());
    });
}

void SipClient::send_register(const std::string* authorization, bool proxy) {
    auto m = sip::Message::request("REGISTER", "sip:" + cfg_.domain);
    sip::push_via(m, {"TLS", local_ip_, local_port_, new_branch(), false});
    m.append_header("Max-Forwards", "70");
    m.append_header("From", fmt::format("<sip:{}@{}>;tag={}", cfg_.user, cfg_.domain, tag_));
    m.append_header("To", fmt::format("<sip:{}@{}>", cfg_.user, cfg_.domain));
    m.append_header("Call-ID", call_id_);
    m.append_header("CSeq", fmt::format("{} REGISTER", ++cseq_));
    m.append_header("Contact", fmt::format("<sip:{}@{};transport=tls>;+sip.instance=\"<urn:uuid:{}>\"",
                                           cfg_.user, local_, instance_));
    m.append_header("Expires", std::to_string(tx_expires_));
    m.append_header("User-Agent", fmt::format("edge-load/{}", kVersion));
    if (authorization) m.append_header(proxy ? "Proxy-Authorization" : "Authorization", *authorization);
    conn_->write(m.serialize());
}

void SipClient::call(std::string_view callee) {
    if (!conn_ || !connected_ || in_transaction()) return;
    call_ = Call{};
    call_.state = CallState::Inviting;
    call_.call_id = rand_token(12) + "@edge-load";
    call_.tag = rand_token(6);
    call_.uri = fmt::format("sip:{}@{}", callee, cfg_.domain);
    call_.branch = new_branch();
    media_.reset();
    if (cfg_.media_s > 0) {
        auto cm = CallMedia::open(loop_, local_ip_, rng_);
        if (cm)
            media_ = std::move(*cm);
        else // reported when the call ends, so that no callback runs from inside call()
            call_.bad_answer = fmt::format("media: {}", cm.error().message);
    }
    auto m = sip::Message::request("INVITE", call_.uri);
    sip::push_via(m, {"TLS", local_ip_, local_port_, call_.branch, false});
    m.append_header("Max-Forwards", "70");
    m.append_header("From", fmt::format("<sip:{}@{}>;tag={}", cfg_.user, cfg_.domain, call_.tag));
    m.append_header("To", fmt::format("<{}>", call_.uri));
    m.append_header("Call-ID", call_.call_id);
    m.append_header("CSeq", "1 INVITE");
    m.append_header("Contact", fmt::format("<sip:{}@{};transport=tls>", cfg_.user, local_));
    m.append_header("User-Agent", fmt::format("edge-load/{}", kVersion));
    m.set_body(sdp_offer(), "application/sdp");
    conn_->write(m.serialize());
}

// Jabber's audio offer in the shape the pair's media relay takes (tests/integration/test_media.py's client):
// RTP/SAVP with one SDES key (RFC 4568), G.711 and telephone events. Without media_ (media_s 0) no media is
// sent: the run measures call set-up, and the port named here is never bound.
std::string SipClient::sdp_offer() {
    std::string crypto = media_ ? media_->crypto_attr() : CallMedia::unused_crypto_attr();
    uint16_t port = media_ ? media_->port() : uint16_t(16384 + 2 * (local_port_ % 8192));
    const char* ipv = local_ip_.find(':') != std::string::npos ? "IP6" : "IP4";
    return fmt::format("v=0\r\no=edge-load {} 1 IN {} {}\r\ns=-\r\nc=IN {} {}\r\nt=0 0\r\n"
                       "m=audio {} RTP/SAVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
                       "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n"
                       "a=crypto:{}\r\na=sendrecv\r\n",
                       rng_() % 1000000000, ipv, local_ip_, ipv, local_ip_, port, crypto);
}

sip::Message SipClient::call_request(std::string_view method, uint32_t cseq, bool in_dialog,
                                     std::string_view to) {
    auto m = sip::Message::request(std::string(method), in_dialog ? call_.target : call_.uri);
    // RFC 3261 17.1.1.3: the ACK of a non-2xx final response is hop-by-hop, on the INVITE's branch; an ACK
    // of a 2xx and a BYE are new transactions.
    sip::push_via(m, {"TLS", local_ip_, local_port_, in_dialog ? new_branch() : call_.branch, false});
    if (in_dialog)
        for (const auto& r : call_.routes)
            m.append_header("Route", r);
    m.append_header("Max-Forwards", "70");
    m.append_header("From", fmt::format("<sip:{}@{}>;tag={}", cfg_.user, cfg_.domain, call_.tag));
    m.append_header("To", std::string(to));
    m.append_header("Call-ID", call_.call_id);
    m.append_header("CSeq", fmt::format("{} {}", cseq, method));
    return m;
}

void SipClient::ping() {
    if (conn_ && connected_) conn_->write("\r\n\r\n");
}

void SipClient::abort(std::string_view why) {
    if (conn_) conn_->abort(why);
}

void SipClient::on_data(const char* data, size_t len) {
    auto alive = alive_;
    // Between messages a lone CRLF from the server is the pong to our ping (RFC 5626 4.4.1). The framer,
    // written for the server side, holds a lone CRLF back to see whether a second one makes it a ping, so
    // two pongs in a row would read as a ping: a client takes them off before framing.
    while (framer_.buffered() == 0 && len >= 2 && data[0] == '\r' && data[1] == '\n') {
        data += 2;
        len -= 2;
        if (ev_.on_pong) ev_.on_pong();
        if (!*alive || !conn_) return;
    }
    if (len == 0) return;
    framer_.feed(std::string_view(data, len));
    // Each event consumes buffered bytes, so this ends; the bound is a second guard.
    for (size_t guard = 0; guard < len + 2; ++guard) {
        auto e = framer_.next();
        switch (e.type) {
        case sip::FrameEventType::need_more:
            return;
        case sip::FrameEventType::keepalive_ping:
            conn_->write("\r\n"); // the server pinged us: RFC 5626 says answer
            break;
        case sip::FrameEventType::keepalive_pong:
            if (ev_.on_pong) ev_.on_pong();
            break;
        case sip::FrameEventType::stun: // never reported: this framer has FramerLimits::stun off
            break;
        case sip::FrameEventType::error:
            if (in_transaction()) {
                in_tx_ = false;
                call_.state = CallState::Idle;
                if (ev_.on_failed) ev_.on_failed(ErrKind::Protocol, e.error ? e.error->detail : "framing");
                if (!*alive) return;
            }
            if (conn_) conn_->abort("unframable SIP from the server");
            return;
        case sip::FrameEventType::message:
            handle(e.message);
            break;
        }
        if (!*alive || !conn_) return;
    }
}

void SipClient::handle(std::string_view bytes) {
    auto parsed = sip::Message::parse(bytes);
    if (!parsed) {
        if (in_transaction()) {
            in_tx_ = false;
            call_.state = CallState::Idle;
            if (ev_.on_failed) ev_.on_failed(ErrKind::Protocol, parsed.error().message);
        }
        return;
    }
    sip::Message& m = *parsed;
    if (m.is_request()) {
        // Nothing is expected towards a client that only registers (an OPTIONS ping from Unified CM at
        // most): answer so that the server's transaction ends instead of retransmitting.
        if (m.method() == "ACK") return;
        int st = m.method() == "OPTIONS" || m.method() == "NOTIFY" ? 200 : 480;
        conn_->write(sip::make_response(m, st, {}, st > 100 ? tag_ : std::string_view{}).serialize());
        return;
    }
    auto cs = m.cseq();
    if (!cs) return;
    if (cs->method == "REGISTER") return handle_register_response(m);
    if (cs->method == "INVITE") return handle_invite_response(m);
    if (cs->method == "BYE") return handle_bye_response(m);
}

void SipClient::handle_register_response(const sip::Message& m) {
    auto cs = m.cseq();
    const sip::Header* cid = m.find(sip::HeaderId::call_id);
    if (!in_tx_ || !cs || cs->number != cseq_ || !cid || cid->value != call_id_)
        return; // a late answer to a transaction we gave up on
    int st = m.status();
    if (st < 200) return;
    if ((st == 401 || st == 407) && !challenged_) {
        const sip::Header* h = m.find(st == 401 ? "WWW-Authenticate" : "Proxy-Authenticate");
        auto ch = h ? parse_digest_challenge(h->value) : std::nullopt;
        if (!ch) {
            in_tx_ = false;
            if (ev_.on_failed) ev_.on_failed(ErrKind::Auth, "challenge without a usable Digest");
            return;
        }
        challenged_ = true;
        std::string auth = digest_authorization(*ch, cfg_.user, cfg_.password, "REGISTER",
                                                "sip:" + cfg_.domain, ++nc_, rand_token(8));
        send_register(&auth, st == 407);
        return;
    }
    in_tx_ = false;
    if (st == 401 || st == 407 || st == 403) {
        if (ev_.on_failed) ev_.on_failed(ErrKind::Auth, fmt::format("{} {}", st, m.reason()));
        return;
    }
    if (st >= 300) {
        if (ev_.on_failed) ev_.on_failed(ErrKind::SipStatus, fmt::format("{} {}", st, m.reason()));
        return;
    }
    // The granted expiry: our Contact's expires parameter (RFC 3261 10.3 step 8), else Expires.
    uint32_t granted = tx_expires_;
    bool found = false;
    for (std::string_view c : m.values(sip::HeaderId::contact)) {
        auto na = sip::NameAddr::parse(c);
        if (!na) continue;
        auto inst = na->params.get("+sip.instance");
        bool ours = (inst && inst->find(instance_) != std::string_view::npos) ||
                    c.find(local_) != std::string_view::npos;
        if (!ours) continue;
        if (auto e = na->params.get("expires")) {
            uint32_t v = 0;
            bool ok = !e->empty();
            for (char ch : *e) {
                if (ch < '0' || ch > '9' || v > 100000000) {
                    ok = false;
                    break;
                }
                v = v * 10 + uint32_t(ch - '0');
            }
            if (ok) {
                granted = v;
                found = true;
            }
        }
        break;
    }
    if (!found)
        if (const sip::Header* e = m.find(sip::HeaderId::expires))
            granted = uint32_t(std::strtoul(e->value.c_str(), nullptr, 10));
    registered_ = tx_expires_ > 0;
    if (ev_.on_registered) ev_.on_registered(granted, challenged_);
}

void SipClient::handle_invite_response(const sip::Message& m) {
    const sip::Header* cid = m.find(sip::HeaderId::call_id);
    if (!cid) return;
    int st = m.status();
    if (call_.state != CallState::Inviting || cid->value != call_.call_id) {
        // A 2xx again for the call we acknowledged: the ACK is lost or late, send it again.
        if (st >= 200 && st < 300 && !acked_call_id_.empty() && cid->value == acked_call_id_)
            conn_->write(ack_bytes_);
        return;
    }
    if (st < 200) return;
    const sip::Header* to = m.find(sip::HeaderId::to);
    if (!to) {
        call_.state = CallState::Idle;
        if (ev_.on_failed) ev_.on_failed(ErrKind::Protocol, fmt::format("{} to INVITE without To", st));
        return;
    }
    if (st >= 300) {
        conn_->write(call_request("ACK", 1, false, to->value).serialize());
        call_.state = CallState::Idle;
        ErrKind k = st == 401 || st == 407 || st == 403 ? ErrKind::Auth : ErrKind::SipStatus;
        if (ev_.on_failed) ev_.on_failed(k, fmt::format("INVITE answered {} {}", st, m.reason()));
        return;
    }
    // The dialog (RFC 3261 12.1.2): the callee's tag in To, the remote target from Contact, the route set
    // from Record-Route in reverse order.
    call_.to = to->value;
    auto tna = sip::NameAddr::parse(call_.to);
    if (!tna || !tna->tag()) call_.bad_answer = "2xx without a To tag";
    call_.target = call_.uri; // without a usable Contact the call still ends, towards the callee's AOR
    auto contacts = m.values(sip::HeaderId::contact);
    auto cna = sip::NameAddr::parse(contacts.empty() ? std::string_view{} : contacts.front());
    if (!contacts.empty() && cna)
        call_.target = cna->uri.to_string();
    else if (call_.bad_answer.empty())
        call_.bad_answer = "2xx without a usable Contact";
    auto rr = m.values(sip::HeaderId::record_route);
    for (auto it = rr.rbegin(); it != rr.rend(); ++it)
        call_.routes.emplace_back(*it);
    // The answer must keep audio: a refused stream has port 0 (RFC 3264 6).
    std::string_view body = m.body();
    auto mline = body.find("m=audio ");
    if (call_.bad_answer.empty() && (mline == std::string_view::npos || body.substr(mline + 8, 2) == "0 "))
        call_.bad_answer = "2xx without an audio answer in SDP";
    auto ack = call_request("ACK", 1, true, call_.to);
    ack_bytes_ = ack.serialize();
    acked_call_id_ = call_.call_id;
    call_.state = CallState::Ending;
    auto alive = alive_;
    if (ev_.on_answered) ev_.on_answered();
    if (!*alive || !conn_) return;
    conn_->write(ack_bytes_);
    if (media_ && call_.bad_answer.empty()) {
        auto started = media_->start(body, cfg_.media_s, [this] { send_bye(); });
        if (started) return; // the BYE follows the media
        call_.bad_answer = fmt::format("media: {}", started.error().message);
    }
    send_bye();
}

void SipClient::send_bye() {
    if (!conn_ || call_.state != CallState::Ending) return;
    conn_->write(call_request("BYE", 2, true, call_.to).serialize());
}

void SipClient::handle_bye_response(const sip::Message& m) {
    const sip::Header* cid = m.find(sip::HeaderId::call_id);
    if (call_.state != CallState::Ending || !cid || cid->value != call_.call_id) return;
    int st = m.status();
    if (st < 200) return;
    call_.state = CallState::Idle;
    if (st >= 300) {
        if (ev_.on_failed)
            ev_.on_failed(ErrKind::SipStatus, fmt::format("BYE answered {} {}", st, m.reason()));
        return;
    }
    if (!call_.bad_answer.empty()) {
        if (ev_.on_failed) ev_.on_failed(ErrKind::Protocol, call_.bad_answer);
        return;
    }
    if (media_) {
        const MediaCounts c = media_->counts();
        auto alive = alive_;
        if (ev_.on_media) ev_.on_media(c);
        if (!*alive) return;
        if (c.received == 0 || c.bad > 0) {
            if (ev_.on_failed)
                ev_.on_failed(ErrKind::Media, fmt::format("{} SRTP packets sent, {} came back, {} came back "
                                                          "failing authentication or from elsewhere",
                                                          c.sent, c.received, c.bad));
            return;
        }
    }
    if (ev_.on_call_done) ev_.on_call_done();
}

void SipClient::on_close(std::string_view why) {
    bool was_connected = connected_;
    conn_.reset(); // inside the connection's last callback: allowed
    media_.reset();
    connected_ = registered_ = false;
    in_tx_ = false;
    call_.state = CallState::Idle;
    ErrKind k = was_connected                ? ErrKind::Closed
                : why.starts_with("connect") ? ErrKind::Connect
                                             : ErrKind::Tls;
    if (ev_.on_closed) ev_.on_closed(k, why);
}

} // namespace edgepair::load
