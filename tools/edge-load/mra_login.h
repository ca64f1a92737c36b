#pragma once
// One Jabber sign-in over MRA, step by step, as the client does it knowing only its domain:
//   dns          SRV _collab-edge._tls.<domain>, then the SRV target's address (both at --dns)
//   edge_config  TLS to the edge, GET /<b64 domain>/get_edge_config/ with Basic credentials
//   uds          GET /<b64>/https/<UDS node>/<port>/cucm-uds/user/<user> on the same connection
//   tftp         GET /<b64>/http/<TFTP node>/<--tftp-port><--tftp-file> on the same connection
//   sip_register REGISTER on the edge-config's sipEdgeServer (SipClient)
//   xmpp_login   XMPP login on the xmppEdgeServer (XmppClient)
// The sign-in scenario (a storm of many users over several edge-e peers) runs the HTTPS part only, with no
// DNS: start_sign_in() dials a given edge-e from a given source address, and the steps are
//   connect      TCP + TLS to that edge-e
//   edge_config  GET get_edge_config with Basic credentials; the edge token comes back as cookie X-Auth
//   home_cluster GET /<b64>/https/<UDS node>/<port>/cucm-uds/clusterUser?username=<user> with the token
//   uds          GET /<b64>/https/<UDS node>/<port>/cucm-uds/user/<user> with Basic (Unified CM checks the
//                user's own credentials there, and edge-c forwards no credential for a token)
// Steps run one after the other so that each has its own latency. Every address dialled must be loopback:
// a name resolving elsewhere fails the login with a dns error before any connection is made.
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "common/core/loop.h"
#include "common/http/h1_parser.h"
#include "common/net/connection.h"
#include "common/net/dns.h"
#include "common/net/tls_context.h"
#include "tools/edge-load/options.h"
#include "tools/edge-load/sip_client.h"
#include "tools/edge-load/stats.h"
#include "tools/edge-load/xmpp_client.h"

namespace edgepair::load {

enum MraStep : size_t { kStepDns, kStepEdgeConfig, kStepUds, kStepTftp, kStepSip, kStepXmpp, kMraSteps };
const char* mra_step_name(size_t step);
enum SignInStep : size_t { kSiConnect, kSiEdgeConfig, kSiHomeCluster, kSiUds, kSignInSteps };
const char* sign_in_step_name(size_t step);
void set_port(net::SockAddr& a, uint16_t port);

// What get_edge_config told us (the parts a login uses).
struct EdgeConfigInfo {
    std::string uds_host;
    uint16_t uds_port = 8443;
    std::string tftp_host;
    std::string sip_host, xmpp_host;
    uint16_t sip_port = 0, xmpp_port = 0;
};
// nullopt (with `why`) when the document is not a usable getEdgeConfigResponse.
// `need_sip_xmpp` false (sign-in): an edge with only its HTTPS listener advertises no SIP/XMPP edge servers.
std::optional<EdgeConfigInfo> parse_edge_config(std::string_view xml, std::string* why,
                                                bool need_sip_xmpp = true);

class MraLogin {
  public:
    // `step_us[i]` for the steps done; on failure `kind`/`why` say what failed, at step `failed_step`.
    struct Result {
        bool ok = false;
        ErrKind kind = ErrKind::Protocol;
        std::string why;
        size_t failed_step = 0;
        std::array<uint64_t, kMraSteps> step_us{};
        size_t steps_done = 0;
        bool challenged = false;
        uint64_t connects = 0;       // connections that got as far as TLS being up (HTTPS, SIP, XMPP)
        uint64_t signed_in_ns = 0;   // now_ns() when the last step ended (the sign-out runs after it)
        bool token = false;          // sign-in: get_edge_config set the X-Auth cookie
        bool wrong_password = false; // sign-in: this one was sent with a wrong password
    };
    using Done = std::function<void(const Result&)>;

    MraLogin(core::Loop& loop, net::Resolver* resolver, const Options& opt,
             std::shared_ptr<net::TlsClientContext> tls, std::mt19937_64& rng, unsigned index, Done done);
    ~MraLogin();
    MraLogin(const MraLogin&) = delete;
    MraLogin& operator=(const MraLogin&) = delete;

    void start();
    // sign-in: get_edge_config at `to` (TLS name `tls_name`) from `source`, then the UDS look-ups.
    void start_sign_in(const net::SockAddr& to, const std::string& tls_name, uint32_t source,
                       bool wrong_password);
    // The step under way ("login" once all are done and the sign-out is pending).
    const char* current_step() const { return step_name(step_); }
    // Stops without calling `done` (timeout, end of run).
    void cancel();

  private:
    const char* step_name(size_t step) const {
        return sign_in_ ? sign_in_step_name(step) : mra_step_name(step);
    }
    void on_sign_in_response(int status, std::string body);
    void step_done(size_t step);
    void maybe_done();
    void fail(ErrKind k, std::string why);
    void resolve_loopback(const std::string& host, std::function<void(net::SockAddr)> next);
    void http_connect();
    void http_get(std::string path, bool bearer = false);
    void on_http_data(const char* d, size_t n);
    void on_http_response(int status, std::string body);
    void sip_step();
    void xmpp_step();

    core::Loop& loop_;
    net::Resolver* resolver_; // null for sign-in, which uses no DNS
    const Options& opt_;
    std::shared_ptr<net::TlsClientContext> tls_;
    std::mt19937_64& rng_;
    std::string user_;
    Done done_;
    Result res_;
    bool sign_in_ = false;
    std::string password_; // the one sent (sign-in: wrong on purpose now and then)
    std::string token_;    // sign-in: the edge token get_edge_config gave
    size_t step_ = 0;
    uint64_t t_step_ = 0;
    bool finished_ = false;
    bool signing_out_ = false, xmpp_done_ = false;
    std::string edge_host_;
    uint16_t edge_port_ = 0;
    EdgeConfigInfo info_;
    std::unique_ptr<net::Connection> http_;
    std::unique_ptr<http::H1Parser> parser_;
    std::string body_;
    std::string path_; // of the request in flight, for error messages
    SipClientConfig sip_cfg_;
    XmppClientConfig xmpp_cfg_;
    std::unique_ptr<SipClient> sip_;
    std::unique_ptr<XmppClient> xmpp_;
    std::vector<std::unique_ptr<SipClient>> dead_sip_;
    std::vector<std::unique_ptr<XmppClient>> dead_xmpp_;
    std::vector<std::unique_ptr<net::Connection>> dead_http_;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

} // namespace edgepair::load
