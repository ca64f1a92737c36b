#pragma once
// One XMPP client session as Jabber opens it over MRA: TCP to edge-e 5222, stream header, STARTTLS, SASL
// PLAIN, resource binding, the (legacy, still sent by Jabber) session establishment, initial presence; then
// chat messages out and in. Stanza boundaries come from common/xmpp's Framer run over the server's bytes.
//
// The owner must not destroy an XmppClient from inside one of its callbacks except on_closed (the last
// one); stopping it from a callback goes through abort().
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/core/loop.h"
#include "common/net/address.h"
#include "common/net/connection.h"
#include "common/net/tls_context.h"
#include "common/xmpp/framer.h"
#include "tools/edge-load/stats.h"

namespace edgepair::load {

struct XmppClientConfig {
    net::SockAddr addr;
    std::shared_ptr<net::TlsClientContext> tls;
    std::string tls_name; // STARTTLS: SNI and the name verified (the domain, as Jabber does)
    std::string domain, user, password, resource;
    uint32_t source = 0; // IPv4 source address, host order (0: the kernel's choice)
};

// Microseconds spent in each login phase.
struct XmppLoginTimes {
    uint64_t connect = 0;  // TCP connect until the first stream features
    uint64_t starttls = 0; // <starttls/> until the TLS handshake is done
    uint64_t auth = 0;     // second stream header until SASL <success/>
    uint64_t bind = 0;     // third stream header until the session is bound and presence sent
    uint64_t total = 0;
};

class XmppClient {
  public:
    struct Events {
        // Logged in and available; `jid` is the full JID the server bound.
        std::function<void(const std::string& jid, const XmppLoginTimes&)> on_up;
        // A <message/> arrived: its id, and whether it is a bounce (type='error').
        std::function<void(std::string_view id, bool error)> on_message;
        // The login failed (SASL failure, iq error, missing feature): kind and reason. The connection is
        // closed next; on_closed follows.
        std::function<void(ErrKind, std::string_view why)> on_failed;
        // The connection is gone (last call). Kind: Connect/Tls before the stream opened, Xmpp for a stream
        // error, Closed otherwise.
        std::function<void(ErrKind, std::string_view why)> on_closed;
    };

    XmppClient(core::Loop& loop, const XmppClientConfig& cfg, Events ev);
    ~XmppClient();
    XmppClient(const XmppClient&) = delete;
    XmppClient& operator=(const XmppClient&) = delete;

    bool connect(std::string* err);
    bool up() const { return phase_ == Phase::Up; }
    const std::string& jid() const { return jid_; }
    void send_message(std::string_view to, std::string_view id, std::string_view body);
    void keepalive();
    // </stream:stream> and a TLS close: the clean end of a session.
    void close();
    void abort(std::string_view why);

  private:
    enum class Phase {
        Connecting,
        Features1,
        Proceed,
        Tls,
        Features2,
        Auth,
        Features3,
        Bind,
        Session,
        Up,
        Closing
    };
    void on_ready();
    void on_data(const char* data, size_t len);
    void on_close(std::string_view why);
    void open_stream();
    void handle(const xmpp::Event& e);
    void fail(ErrKind k, std::string why);
    void send_presence_up();

    core::Loop& loop_;
    const XmppClientConfig& cfg_;
    Events ev_;
    std::unique_ptr<net::Connection> conn_;
    std::unique_ptr<xmpp::Framer> framer_;
    Phase phase_ = Phase::Connecting;
    std::string jid_;
    bool session_needed_ = false;
    bool stream_error_ = false;
    uint64_t t_start_ = 0, t_mark_ = 0;
    XmppLoginTimes times_;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// The value of attribute `name` on the start tag of `raw` (an element as received), either quote style;
// empty when absent. Entities are not decoded: ids and types we compare contain none.
std::string_view start_tag_attr(std::string_view raw, std::string_view name);

} // namespace edgepair::load
