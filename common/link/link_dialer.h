#pragma once
// edge-c's side of one link: dial an edge-e peer, run the link, and redial with jittered back-off when it
// ends. One LinkDialer per (edge-e peer x link connection) per worker. The back-off resets only once a
// link is up, so a peer that refuses our credentials is retried slowly rather than hammered.
//
// With a resolver and a host name, every dial looks the name up again (asynchronously, on the dialer's
// loop): an edge-e peer that moved to another address, or whose name did not resolve when edge-c started,
// is reached on the next attempt without a restart. A failed look-up counts as a failed attempt.
#include <memory>
#include <string>

#include "common/core/loop.h"
#include "common/link/backoff.h"
#include "common/link/link_conn.h"
#include "common/net/address.h"
#include "common/net/dns.h"
#include "common/net/tls_context.h"
#include "common/obs/metrics.h"

namespace edgepair::link {

class LinkDialer {
  public:
    struct Config {
        net::SockAddr address;                      // the peer's address when `resolver` is unset
        std::string host;                           // with `resolver`: looked up before every dial
        uint16_t port = 0;                          // with `resolver`: the peer's link port
        net::Resolver* resolver = nullptr;          // the dialer's loop's resolver; outlives the dialer
        std::string peer_name;                      // what we dial: SNI and the SAN the peer must present
        std::shared_ptr<net::TlsClientContext> tls; // nullptr = plain TCP (tests only)
        LinkOptions link;                           // role is forced to Acceptor
        uint64_t backoff_min_ms = 500;
        uint64_t backoff_max_ms = 30000;
    };

    // `app` callbacks are passed through to every LinkConn the dialer makes (on_close once per link).
    LinkDialer(core::Loop& loop, Config cfg, obs::Registry& metrics, LinkCallbacks app);
    ~LinkDialer();
    LinkDialer(const LinkDialer&) = delete;
    LinkDialer& operator=(const LinkDialer&) = delete;

    void start();
    // Drain the current link (GOAWAY) and dial no more.
    void stop();
    LinkConn* link() const { return link_.get(); } // current link, maybe not up; nullptr between attempts
    bool up() const { return link_ && link_->up(); }
    unsigned attempts() const { return backoff_.attempts(); }
    const std::string& last_error() const { return last_error_; }
    const std::string& peer_name() const { return cfg_.peer_name; }
    // The address of the last attempt (empty before the first look-up answered).
    const net::SockAddr& address() const { return cfg_.address; }

  private:
    void dial();
    void connect_to(const net::SockAddr& addr);
    void retry_later(const std::string& why);

    core::Loop& loop_;
    Config cfg_;
    obs::Registry& reg_;
    LinkCallbacks app_;
    Backoff backoff_;
    core::Timer retry_;
    std::unique_ptr<LinkConn> link_;
    std::unique_ptr<LinkConn> dead_; // the link whose on_close we are inside; freed on the next turn
    std::string last_error_;
    bool stopped_ = true;
    bool resolving_ = false;
    size_t turn_ = 0; // rotates over a name's addresses, one per attempt
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true); // look-ups answer after we are gone
    obs::Counter* m_dials_;
};

} // namespace edgepair::link
