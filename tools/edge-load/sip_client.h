#pragma once
// One SIP user agent as Jabber runs it over MRA: a TLS connection to edge-e 5061 carrying its REGISTERs
// (with a digest answer when the registrar challenges), RFC 5626 CRLF keep-alives, and calls: INVITE with
// an SRTP (SDES) audio offer, ACK of the answer, BYE at once. Framing and message parsing are common/sip's;
// this class drives the registration and the caller's side of each call (RFC 3261 12, 13, 15: route set,
// remote target, ACK and BYE within the dialog). One transaction or call at a time.
//
// The owner must not destroy a SipClient from inside one of its callbacks except on_closed (the last
// one); stopping it from a callback goes through abort().
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "common/core/loop.h"
#include "common/net/address.h"
#include "common/net/connection.h"
#include "common/net/tls_context.h"
#include "common/sip/framer.h"
#include "common/sip/message.h"
#include "tools/edge-load/call_media.h"
#include "tools/edge-load/digest.h"
#include "tools/edge-load/stats.h"

namespace edgepair::load {

struct SipClientConfig {
    net::SockAddr addr;
    std::shared_ptr<net::TlsClientContext> tls;
    std::string tls_name; // SNI and the name verified
    std::string user, password, domain;
    uint32_t expires = 3600;
    double media_s = 0;  // sip-call: seconds of SRTP audio per call (0: none, BYE at once)
    uint32_t source = 0; // IPv4 source address, host order (0: the kernel's choice)
};

class SipClient {
  public:
    struct Events {
        std::function<void()> on_connected; // TLS is up: register() may be called
        // The registration succeeded; `granted` is the expiry the registrar stored for our Contact.
        std::function<void(uint32_t granted, bool challenged)> on_registered;
        // The REGISTER or the call in progress failed; the connection stays up.
        std::function<void(ErrKind, std::string_view why)> on_failed;
        // The call's INVITE got its 2xx (set-up ends here); the ACK and the BYE follow from this class.
        std::function<void()> on_answered;
        // The call's media (with media_s > 0), just before on_call_done or on_failed of its call.
        std::function<void(const MediaCounts&)> on_media;
        // The call's BYE got its 2xx: the call is over and another may start.
        std::function<void()> on_call_done;
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
    // A call to sip:<callee>@<domain>: INVITE, ACK of its 2xx, media_s seconds of SRTP (when set), then BYE.
    // A call whose media did not come back, or came back failing SRTP authentication, fails (ErrKind::Media)
    // after its BYE. Ignored while a REGISTER or a call
    // is in progress.
    void call(std::string_view callee);
    // RFC 5626 4.4.1 ping; the pong is reported through on_pong.
    void ping();
    void abort(std::string_view why);
    bool connected() const { return connected_; }
    bool registered() const { return registered_; }
    bool in_transaction() const { return in_tx_ || call_.state != CallState::Idle; }

  private:
    enum class CallState : uint8_t { Idle, Inviting, Ending };
    struct Call {
        CallState state = CallState::Idle;
        std::string call_id, tag, uri, branch; // uri: the INVITE's Request-URI; branch: its Via branch
        std::string to;                        // the To of the 2xx, with the callee's tag
        std::string target;                    // the remote target (the 2xx's Contact URI)
        std::vector<std::string> routes;       // the route set: the 2xx's Record-Route, reversed
        std::string bad_answer;                // what was wrong with the 2xx, reported after the BYE
    };

    void on_ready();
    void on_data(const char* data, size_t len);
    void on_close(std::string_view why);
    void handle(std::string_view bytes);
    void send_register(const std::string* authorization, bool proxy);
    void handle_register_response(const sip::Message& m);
    void handle_invite_response(const sip::Message& m);
    void handle_bye_response(const sip::Message& m);
    void send_bye();
    // A request within the call's dialog (ACK or BYE of a 2xx-answered INVITE), or the hop-by-hop ACK of
    // a failed INVITE (in_dialog false: the INVITE's Request-URI and branch).
    sip::Message call_request(std::string_view method, uint32_t cseq, bool in_dialog, std::string_view to);
    std::string sdp_offer();
    std::string new_branch();
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
    Call call_;
    std::unique_ptr<CallMedia> media_; // the current or last call's
    // The last call's ACK, sent again when its 2xx comes again (the callee retransmits 2xx until the ACK
    // reaches it, RFC 3261 13.3.1.4).
    std::string acked_call_id_, ack_bytes_;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

} // namespace edgepair::load
