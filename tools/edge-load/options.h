#pragma once
// edge-load's command line. Parsing is separate from running so that a bad option or a refused target
// exits 2 before any thread or socket exists.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/core/result.h"
#include "common/net/address.h"

namespace edgepair::load {

enum class Scenario {
    Handshake,
    Http,
    EdgeConfig,
    OAuthSignIn,
    Idle,
    SipRegister,
    SipCall,
    Xmpp,
    MraLogin,
    Hold,
    SignIn
};

// hold: what each connection leaves unfinished.
enum class HoldMode {
    Head,  // a request head cut off in the middle of a header line (slowloris)
    Body,  // a complete head announcing --body-length bytes, then only --body-sent of them
    H2Body // HTTP/2: --streams streams per connection, each a complete head and an unfinished body
};

// The long-lived-session scenarios run on SessionDriver, the others on Driver.
inline bool is_session_scenario(Scenario s) {
    return s == Scenario::SipRegister || s == Scenario::SipCall || s == Scenario::Xmpp ||
           s == Scenario::MraLogin || s == Scenario::SignIn;
}

struct Options {
    Scenario scenario = Scenario::Http;
    std::string scenario_name;
    std::string target;               // as given (the first one, when several)
    std::vector<std::string> targets; // sign-in: every --target, in order
    std::string host;                 // without brackets
    uint16_t port = 0;
    std::string sni;
    std::string cafile;
    bool insecure = false;
    bool plain = false; // no TLS at all (plain HTTP targets, tests)
    unsigned threads = 1;
    unsigned connections = 0; // 0 = scenario default
    double rate = 0;          // arrivals per second; 0 = closed loop
    std::optional<uint64_t> requests;
    double duration_s = 60;
    std::string path = "/";
    std::string domain = "example.com";
    std::string user, password;
    std::string bearer;   // oauth-sign-in: the access token, read from --bearer-file (never the command line)
    bool request = false; // handshake/idle: one request on each connection
    bool json = false;
    bool progress = true;
    double timeout_s = 10;
    std::optional<int> expect_status; // unset: any status below 400 succeeds
    std::string ready_file;           // idle: touched once every connection has been tried
    // sip-register, xmpp, mra-login
    uint32_t expires = 3600;           // SIP REGISTER Expires asked for
    std::optional<double> interval_s;  // closed loop: pause between one client's operations
    std::optional<double> keepalive_s; // SIP CRLF / XMPP whitespace keep-alive period (0 = off)
    std::optional<uint64_t> messages;  // xmpp: messages per session
    std::string dns;                   // mra-login: the DNS server (loopback HOST:PORT)
    std::string dns_host;              // without brackets
    uint16_t dns_port = 53;
    uint16_t tftp_port = 6970; // mra-login: the configuration file fetched through http/<node>/<port>
    std::string tftp_file = "/jabber-config.xml";
    std::string resource = "edge-load"; // xmpp: resource prefix (the session index is appended)
    std::string callee;                 // sip-call: the user called, sip:<callee>@<domain>
    double media_s = 0;                 // sip-call: seconds of SRTP audio per call (0: BYE at once)
    // hold
    HoldMode hold_mode = HoldMode::Body;
    std::string method = "POST";
    uint64_t body_length = 1000000; // announced in Content-Length
    uint64_t body_sent = 16;        // of which this many are sent
    unsigned streams = 100;         // h2-body: streams per connection
    unsigned ramp = 64;             // connections being set up at once, per thread
    double trickle_s = 0;           // send one more byte per request every this many seconds (0 = never)
    bool reopen = false;            // open a connection again when the server closes it
    uint32_t source_lo = 0, source_hi = 0; // IPv4 source addresses, host order (0: the kernel's choice)
    // sign-in
    uint32_t users = 1;       // distinct users: --user's %d takes 0..users-1
    uint32_t wrong_every = 0; // every K-th sign-in (per target) with a wrong password (0 = never)
};

// --user with "%d" replaced by the session index (so that N sessions can be N different users).
std::string user_for(const Options& o, unsigned index);

// The usage text (stdout for --help, stderr on errors).
std::string usage_text();

enum class ParseOutcome { Run, Help, Version };
// Errors are usage errors (exit 2). "not yet implemented" scenarios are errors too.
Result<ParseOutcome> parse_options(int argc, char** argv, Options& out);

// The address to dial. Refuses anything that is not loopback (127.0.0.0/8, ::1, ::ffff:127.x): edge-load
// is a load generator, and CI must never be able to point it at somebody else's server.
Result<net::SockAddr> resolve_loopback_target(const std::string& host, uint16_t port);
bool is_loopback(const net::SockAddr& a);

} // namespace edgepair::load
