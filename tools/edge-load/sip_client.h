#pragma once
// One SIP user agent as Jabber runs it over MRA: a TLS connection to edge-e 5061 carrying its REGISTERs
// (with a digest answer when the registrar challenges) and RFC 5626 CRLF keep-alives. Framing and message
// parsing are common/sip's; this class only drives the registration.
//
// The owner must not destroy a SipClient from inside one of its callbacks except on_closed (the last
// one); stopping it from a callback goes through abort().
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <string_view>

#include "common/core/loop.h"
#include "common/net/address.h"
#include "common/net/connection.h"
#include "common/net/tls_context.h"
#include "common/sip/framer.h"
#include "tools/edge-load/digest.h"
#include "tools/edge-load/stats.h"

namespace edgepair::load {

struct SipClientConfig {
    net::SockAddr addr;
    std::shared_ptr<net::TlsClientContext> tls;
    std::string tls_name; // SNI and the name verified
    std::string user, password, domain;
    uint32_t expires = 3600;
};

class SipClient {
  public:
    struct Events {
        std::function<void()> on_connected; // TLS is up: register() may be called
        // The registration succeeded; `granted` is the expiry the registrar stored for our Contact.
        std::function<void(uint32_t granted, bool challenged)> on_registered;
        // The registration failed; the connection stays up.
        std::function<void(ErrKind, std::string_view why)> on_failed;
        std::function<void()> on_pong;
        // The connection is gone: before on_connected (kind Connect or Tls) or after it (Closed). Last call.
        std::function<void(ErrKind, std::string_view why)> on_closed;
    };

    SipClient(core::Loop& loop, const SipClientConfig& cfg, std::mt19937_64& rng, Events ev);
    ~SipClient();
    SipClient(const SipClient&) = delete;
    SipClient& operator=(const SipClient&) = delete;

    // False (with `err`) when the connection could not even be started; no callback follows then.
    bool connect(std::string* err);
    // A new REGISTER transaction (refresh when already registered). Ignored while one is in flight.
    void register_now(uint32_t expires);
    // RFC 5626 4.4.1 ping; the pong is reported through on_pong.
    void ping();
    void abort(std::string_view why);
    bool connected() const { return connected_; }
    bool registered() const { return registered_; }
    bool in_transaction() const { return in_tx_; }

  private:
    void on_ready();
    void on_data(const char* data, size_t len);
    void on_close(std::string_view why);
    void handle(std::string_view bytes);
    void send_register(const std::string* authorization, bool proxy);
    std::string rand_token(size_t bytes);

    core::Loop& loop_;
    const SipClientConfig& cfg_;
    std::mt19937_64& rng_;
    Events ev_;
    std::unique_ptr<net::Connection> conn_;
    sip::Framer framer_;
    std::string local_; // our address as edge-e sees it, for Via and Contact
    std::string local_ip_;
    uint16_t local_port_ = 0;
    std::string call_id_, tag_, instance_;
    uint32_t cseq_ = 0;
    uint32_t tx_expires_ = 0;
    bool connected_ = false, registered_ = false, in_tx_ = false, challenged_ = false;
    uint32_t nc_ = 0;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

} // namespace edgepair::load
