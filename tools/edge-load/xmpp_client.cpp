#include "tools/edge-load/xmpp_client.h"

#include <fmt/format.h>

#include "common/http/b64_domain.h"
#include "common/xmpp/stream_error.h"
#include "common/xmpp/writer.h"
#include "tools/edge-load/driver.h"
#include "tools/edge-load/source_addr.h"

namespace edgepair::load {

namespace {
constexpr std::string_view kSaslNs = "urn:ietf:params:xml:ns:xmpp-sasl";
constexpr std::string_view kBindNs = "urn:ietf:params:xml:ns:xmpp-bind";
constexpr std::string_view kSessionNs = "urn:ietf:params:xml:ns:xmpp-session";

std::string_view inner_text(std::string_view raw, std::string_view element) {
    std::string open = fmt::format("<{}>", element), close = fmt::format("</{}>", element);
    size_t a = raw.find(open);
    if (a == std::string_view::npos) return {};
    a += open.size();
    size_t b = raw.find(close, a);
    return b == std::string_view::npos ? std::string_view{} : raw.substr(a, b - a);
}
} // namespace

std::string_view start_tag_attr(std::string_view raw, std::string_view name) {
    size_t end = raw.find('>');
    std::string_view tag = raw.substr(0, end);
    for (char q : {'\'', '"'}) {
        std::string pat = fmt::format(" {}={}", name, q);
        size_t p = tag.find(pat);
        if (p == std::string_view::npos) continue;
        p += pat.size();
        size_t e = tag.find(q, p);
        if (e != std::string_view::npos) return tag.substr(p, e - p);
    }
    return {};
}

XmppClient::XmppClient(core::Loop& loop, const XmppClientConfig& cfg, Events ev)
    : loop_(loop), cfg_(cfg), ev_(std::move(ev)) {}

XmppClient::~XmppClient() {
    *alive_ = false;
    if (conn_) conn_->set_callbacks({});
}

bool XmppClient::connect(std::string* err) {
    t_start_ = t_mark_ = now_ns();
    conn_ = connect_from(loop_, cfg_.addr, cfg_.source, nullptr, err);
    if (!conn_) return false;
    conn_->set_callbacks({[this] { on_ready(); }, [this](const char* d, size_t n) { on_data(d, n); },
                          [this](std::string_view why) { on_close(why); }, nullptr});
    conn_->start();
    return true;
}

void XmppClient::open_stream() {
    // Every stream restart (after TLS, after SASL) starts a fresh parse of the server's new stream.
    framer_ = std::make_unique<xmpp::Framer>();
    conn_->write(fmt::format("<?xml version='1.0'?><stream:stream xmlns='{}' xmlns:stream='{}' to='{}' "
                             "version='1.0' xml:lang='en'>",
                             xmpp::kClientNs, xmpp::kStreamsNs, xmpp::escape_xml(cfg_.domain)));
}

void XmppClient::on_ready() {
    if (phase_ == Phase::Connecting) {
        phase_ = Phase::Features1;
        open_stream();
    } else if (phase_ == Phase::Tls) {
        uint64_t now = now_ns();
        times_.starttls = (now - t_mark_) / 1000;
        t_mark_ = now;
        phase_ = Phase::Features2;
        open_stream();
    }
}

void XmppClient::fail(ErrKind k, std::string why) {
    if (phase_ == Phase::Closing) return;
    phase_ = Phase::Closing;
    auto alive = alive_;
    if (ev_.on_failed) ev_.on_failed(k, why);
    if (!*alive) return;
    if (conn_) {
        conn_->write(xmpp::stream_close());
        conn_->close();
    }
}

void XmppClient::on_data(const char* data, size_t len) {
    if (!framer_) return;
    framer_->feed(std::string_view(data, len));
    auto alive = alive_;
    xmpp::Framer* f = framer_.get();
    // A restart replaces the framer: what the old one still holds belongs to the stream that ended.
    while (framer_.get() == f) {
        auto e = f->next();
        if (!e) return;
        handle(*e);
        if (!*alive || !conn_) return;
    }
}

void XmppClient::handle(const xmpp::Event& e) {
    using xmpp::EventType;
    switch (e.type) {
    case EventType::stream_open:
    case EventType::keepalive:
        return;
    case EventType::starttls: // only a client sends it
    case EventType::error:
        return fail(ErrKind::Protocol, e.detail.empty() ? "malformed XML from the server" : e.detail);
    case EventType::stream_close:
        if (phase_ != Phase::Closing) return fail(ErrKind::Closed, "the server closed the stream");
        return;
    case EventType::stanza:
        break;
    }
    if (e.name == "error" && e.ns == xmpp::kStreamsNs) {
        stream_error_ = true;
        return fail(ErrKind::Xmpp, e.raw);
    }
    uint64_t now = now_ns();
    switch (phase_) {
    case Phase::Features1:
        if (e.name != "features") return;
        if (e.raw.find(xmpp::kTlsNs) == std::string::npos)
            return fail(ErrKind::Protocol, "no STARTTLS offered");
        times_.connect = (now - t_mark_) / 1000;
        t_mark_ = now;
        phase_ = Phase::Proceed;
        conn_->write(fmt::format("<starttls xmlns='{}'/>", xmpp::kTlsNs));
        return;
    case Phase::Proceed:
        if (e.name == "proceed" && e.ns == xmpp::kTlsNs) {
            phase_ = Phase::Tls;
            framer_.reset();
            if (!conn_->start_tls(cfg_.tls->new_ssl(cfg_.tls_name)))
                return fail(ErrKind::Tls, "STARTTLS upgrade refused");
            return;
        }
        return fail(ErrKind::Tls, "STARTTLS refused: " + e.raw);
    case Phase::Features2: {
        if (e.name != "features") return;
        if (e.raw.find("<mechanism>PLAIN</mechanism>") == std::string::npos)
            return fail(ErrKind::Protocol, "SASL PLAIN not offered");
        phase_ = Phase::Auth;
        std::string plain;
        plain += '\0';
        plain += cfg_.user;
        plain += '\0';
        plain += cfg_.password;
        conn_->write(
            fmt::format("<auth xmlns='{}' mechanism='PLAIN'>{}</auth>", kSaslNs, http::base64_encode(plain)));
        return;
    }
    case Phase::Auth:
        if (e.name == "success" && e.ns == kSaslNs) {
            times_.auth = (now - t_mark_) / 1000;
            t_mark_ = now;
            phase_ = Phase::Features3;
            open_stream();
            return;
        }
        if (e.name == "failure" && e.ns == kSaslNs) return fail(ErrKind::Auth, "SASL failure: " + e.raw);
        return;
    case Phase::Features3:
        if (e.name != "features") return;
        if (e.raw.find(kBindNs) == std::string::npos)
            return fail(ErrKind::Protocol, "no resource binding offered");
        // RFC 6121 dropped session establishment, but servers that still offer it without <optional/>
        // expect it, and Jabber sends it regardless.
        session_needed_ = e.raw.find(kSessionNs) != std::string::npos;
        phase_ = Phase::Bind;
        conn_->write(
            fmt::format("<iq type='set' id='bind1'><bind xmlns='{}'><resource>{}</resource></bind></iq>",
                        kBindNs, xmpp::escape_xml(cfg_.resource)));
        return;
    case Phase::Bind:
        if (e.name != "iq" || start_tag_attr(e.raw, "id") != "bind1") return;
        if (start_tag_attr(e.raw, "type") != "result") return fail(ErrKind::Xmpp, "bind refused: " + e.raw);
        jid_ = std::string(inner_text(e.raw, "jid"));
        if (jid_.empty()) return fail(ErrKind::Protocol, "bind result without a JID");
        if (session_needed_) {
            phase_ = Phase::Session;
            conn_->write(fmt::format("<iq type='set' id='sess1'><session xmlns='{}'/></iq>", kSessionNs));
            return;
        }
        return send_presence_up();
    case Phase::Session:
        if (e.name != "iq" || start_tag_attr(e.raw, "id") != "sess1") return;
        if (start_tag_attr(e.raw, "type") != "result")
            return fail(ErrKind::Xmpp, "session refused: " + e.raw);
        return send_presence_up();
    case Phase::Up:
        if (e.name == "message") {
            if (ev_.on_message)
                ev_.on_message(start_tag_attr(e.raw, "id"), start_tag_attr(e.raw, "type") == "error");
        } else if (e.name == "iq") {
            // Unanswered get/set iqs make a server wait (XEP-0199 pings end the session): answer them.
            auto type = start_tag_attr(e.raw, "type");
            if (type == "get" || type == "set") {
                std::string_view id = start_tag_attr(e.raw, "id"), from = start_tag_attr(e.raw, "from");
                bool ping = e.raw.find("urn:xmpp:ping") != std::string::npos;
                conn_->write(fmt::format("<iq type='{}' id='{}'{}>{}</iq>", ping ? "result" : "error", id,
                                         from.empty() ? std::string() : fmt::format(" to='{}'", from),
                                         ping ? ""
                                              : "<error type='cancel'><service-unavailable "
                                                "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>"));
            }
        }
        return;
    default:
        return;
    }
}

void XmppClient::send_presence_up() {
    conn_->write("<presence/>");
    uint64_t now = now_ns();
    times_.bind = (now - t_mark_) / 1000;
    times_.total = (now - t_start_) / 1000;
    phase_ = Phase::Up;
    if (ev_.on_up) ev_.on_up(jid_, times_);
}

void XmppClient::send_message(std::string_view to, std::string_view id, std::string_view body) {
    if (!conn_ || phase_ != Phase::Up) return;
    conn_->write(fmt::format("<message to='{}' id='{}' type='chat'><body>{}</body></message>",
                             xmpp::escape_xml(to), id, xmpp::escape_xml(body)));
}

void XmppClient::keepalive() {
    if (conn_ && phase_ == Phase::Up) conn_->write(" ");
}

void XmppClient::close() {
    if (!conn_) return;
    bool was_up = phase_ == Phase::Up;
    phase_ = Phase::Closing;
    if (was_up) conn_->write(xmpp::stream_close());
    conn_->close();
}

void XmppClient::abort(std::string_view why) {
    if (conn_) conn_->abort(why);
}

void XmppClient::on_close(std::string_view why) {
    Phase was = phase_;
    conn_.reset();
    framer_.reset();
    phase_ = Phase::Closing;
    ErrKind k = stream_error_              ? ErrKind::Xmpp
                : was == Phase::Connecting ? ErrKind::Connect
                : was == Phase::Tls        ? ErrKind::Tls
                                           : ErrKind::Closed;
    if (ev_.on_closed) ev_.on_closed(k, why);
}

} // namespace edgepair::load
