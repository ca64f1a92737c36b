#include "tools/edge-load/options.h"

#include <arpa/inet.h>
#include <charconv>
#include <cmath>
#include <fstream>
#include <netinet/in.h>
#include <string_view>

#include <fmt/format.h>

namespace edgepair::load {

std::string usage_text() {
    return R"(usage: edge-load --scenario S --target HOST:PORT [options]
       edge-load --scenario mra-login --dns HOST:PORT --user U --password P [options]
       edge-load --scenario sign-in --target A --target B --user 'load%d' --users N --password P [options]

Loopback-only traffic generator for edgepair and its anchors (HAProxy, nginx). Targets must be
127.0.0.0/8 or ::1, or a name that resolves there; anything else is refused.

scenarios:
  handshake     new TLS connection, full handshake, [--request: one GET --path], close; counts handshakes/s
  http          keep-alive HTTP/1.1 GET --path on --connections connections
  edge-config   keep-alive GET /<base64 --domain>/get_edge_config/?service_name=_cisco-uds&service_name=_cuplogin
                with Basic --user/--password
  oauth-sign-in the same get_edge_config sign-in with `Authorization: Bearer <token>` instead of Basic: the
                token (an OAuth access token Unified CM issued, or the fixture tools/fixtures/oauth_issuer.py)
                is the first line of --bearer-file; edge-c validates it without a round trip
  idle          open --connections TLS connections ([--request] one GET each), hold them for --duration,
                report how many stayed up
  sip-register  --connections clients on SIP/TLS (--target: edge-e 5061), each REGISTERing for
                --user@--domain (answering a 401/407 digest challenge with --password), refreshing its
                registration and sending CRLF keep-alives (RFC 5626); an operation is one registration
                (with its challenge, if any). Closed loop: a client re-REGISTERs --interval after its last
                one (default: half the Expires the registrar granted)
  sip-call      --connections clients on SIP/TLS as sip-register (--user@--domain, digest with --password),
                each registering once, then calling --callee@--domain in a closed loop: INVITE with an SRTP
                audio offer (RTP/SAVP, one SDES a=crypto key), the final response, ACK, then BYE at once and
                its 200. An operation is one call (INVITE .. BYE's 200); the latency is its set-up (INVITE
                to the 2xx), the step "call" the whole call. --interval: pause between a client's calls
                (default 0). --media-seconds S: after the ACK, S seconds of SRTP audio (20 ms packets) to
                the answer's address, the SRTP coming back checked with the answer's key, then the BYE; a
                call whose media did not come back fails (error kind media). Without it no media is sent.
                The registration is not refreshed: keep runs under --expires
  xmpp          --connections sessions to edge-e 5222: stream, STARTTLS, SASL PLAIN (--user, --password),
                bind, session, presence; then each session sends messages to the next session on its thread
                (to itself when alone); an operation is one message, from sending it to its arrival at the
                recipient session (twice through the pair, once through IM&P)
  hold          open --connections TLS connections, each from the next address of --source-range, and leave
                on each a request that never finishes (--hold): report how many stay up, which the server
                answered, and which it closed and when; --ready-file once every connection has been tried
  sign-in       a sign-in storm: many distinct users (--users; --user with %d) sign in over MRA, each
                sign-in as mra-login's HTTPS part without DNS: TLS to the next --target (repeat --target
                for several edge-e peers, round robin) from the next --source-range address,
                get_edge_config with Basic credentials (the edge token comes back as cookie X-Auth), the
                home-cluster look-up UDS /cucm-uds/clusterUser?username=<user> with that token (Bearer),
                then UDS /cucm-uds/user/<user> with Basic, all through https/<UDS node from the edge
                config>. --wrong-password-every K: every K-th sign-in on each target uses a wrong password
                and must be refused 401 (counted apart, not an error; anything else is). A sign-in is new
                TLS and three requests; the connection is closed after it
  mra-login     a Jabber sign-in per operation, --connections at once: SRV _collab-edge._tls.--domain at
                --dns, get_edge_config (Basic --user/--password), UDS /cucm-uds/user/<user> through
                https/<node>, --tftp-file through http/<tftp node>/--tftp-port, SIP REGISTER on the
                sipEdgeServer port and an XMPP login on the xmppEdgeServer port; each step's latency and the
                whole sign-in's (the SIP sign-out that follows is not timed)

options:
  --target HOST:PORT      loopback address or name ([::1]:8443 for IPv6); sign-in: repeat it, one per peer
  --sni NAME              TLS server name (and Host header); default: HOST when it is a name
  --cafile FILE           verify the server against these CAs (name: --sni, else HOST; IP SANs for IPs)
  --insecure              do not verify the server certificate
  --plain                 plain TCP, no TLS (http, edge-config)
  --threads N             worker threads, each with its own event loop (default 1)
  --connections C         closed loop: concurrent connections (default 1; idle: connections to hold,
                          default 100); open loop: at most C connections in use at once (default 10)
  --rate R                open loop: R arrivals/s at fixed intervals, whatever the completions; latency is
                          measured from each arrival's scheduled time (coordinated-omission-safe); session
                          scenarios: arrivals wait for a free logged-in session, and the wait is charged
  --requests N            stop after N operations (requests, handshakes, REGISTERs, calls, messages, sign-ins)
  --duration SECS         stop after SECS (default and cap when --requests is given: 60); idle: hold time
  --timeout SECS          per operation (connect+handshake, or response), and per session set-up (default 10)
  --path P                request path (default /)
  --domain D              edge-config domain (default example.com)
  --user U --password P   edge-config Basic credentials
  --bearer-file F         oauth-sign-in: file whose first line is the access token (kept off the command line,
                          which process listings show)
  --request               handshake/idle: send one GET --path on each connection
  --expect-status CODE    count responses with CODE as successes (default: any status below 400)
  --ready-file F          idle, hold: create F once every connection has been opened (or has failed); it
                          holds the number of connections up
  --expires SECS          sip-register, sip-call, mra-login: REGISTER Expires (default 3600)
  --interval SECS         closed loop: pause between one client's operations (sip-register default: half the
                          granted Expires; xmpp, mra-login default 0)
  --keepalive SECS        sip-register, sip-call: CRLF ping period (default 120, RFC 5626's range for TCP); xmpp:
                          whitespace keep-alive period (default 60); 0 = none
  --callee USER           sip-call: the user called (sip:USER@--domain); it must be reachable through the
                          target (registered at the registrar behind it)
  --media-seconds S       sip-call: S seconds of SRTP audio per call, checked on its way back (default 0:
                          none); --timeout then bounds each call's time without its media
  --messages M            xmpp: stop each session after M messages
  --resource R            xmpp: resource prefix; the session index is appended (default edge-load)
  --dns HOST:PORT         mra-login: the DNS server to ask (loopback only); the edge's names must resolve to
                          loopback addresses too, or the login fails with a dns error and nothing is dialled
  --tftp-file PATH        mra-login: configuration file to fetch (default /jabber-config.xml)
  --tftp-port PORT        mra-login: its port on the TFTP node (default 6970)
  --hold MODE             hold: head (a request head cut off inside a header value: slowloris), body
                          (a complete --method --path head with Content-Length --body-length, then only
                          --body-sent bytes; default), h2-body (HTTP/2, --streams such requests per connection)
  --users N               sign-in: N distinct users, --user's %d replaced by 0..N-1, each signing in
                          in turn (default 1)
  --wrong-password-every K  sign-in: every K-th sign-in per target with a wrong password (expected 401)
  --source-range A-B      every scenario but mra-login: bind each connection (each client or session: its
                          index picks the address) to the next IPv4 address from A to B, both in 127.0.0.0/8
                          (e.g. 127.1.0.1-127.1.255.254), round robin. One source address has about 28,000
                          ephemeral ports to one target: more connections than that need a range
  --method M              hold: request method (default POST)
  --body-length N         hold body, h2-body: Content-Length announced (default 1000000)
  --body-sent N           hold body, h2-body: body bytes actually sent (default 16; less than --body-length)
  --streams N             hold h2-body: streams per connection (default 100)
  --ramp N                hold: connections being set up at once, per thread (default 64)
  --trickle SECS          hold: send one more byte per unfinished request every SECS (defeats idle timeouts)
  --reopen                hold: open a connection again (250 ms later) when the server closes it
  --user U                may contain %d: replaced by the session index (0..C-1), one user per session
  --json                  print the summary as one JSON object on stdout
  --progress/--no-progress  a line per second on stderr (default on)
  --version, --help

exit status: 0 no errors; 1 errors occurred (or, idle, a connection did not stay up; hold: a connection
could not be set up; connections the server closes later are reported, not errors); 2 usage error
or refused target.
)";
}

namespace {

template <class T> bool parse_num(std::string_view s, T& out) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size();
}

bool parse_double(std::string_view s, double& out) {
    // from_chars for double is in GCC 12's libstdc++.
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size() && std::isfinite(out);
}

} // namespace

Result<ParseOutcome> parse_options(int argc, char** argv, Options& o) {
    bool have_conns = false;
    bool hold_opts = false;
    bool source_set = false, signin_opts = false;
    for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i];
        std::string val;
        bool has_inline = false;
        if (a.starts_with("--")) {
            if (auto eq = a.find('='); eq != std::string_view::npos) {
                val = std::string(a.substr(eq + 1));
                a = a.substr(0, eq);
                has_inline = true;
            }
        }
        auto need = [&](std::string& v) -> bool {
            if (has_inline) {
                v = val;
                return true;
            }
            if (i + 1 >= argc) return false;
            v = argv[++i];
            return true;
        };
        auto missing = [&] { return make_error(fmt::format("option {} needs a value", a)); };
        std::string v;
        if (a == "-h" || a == "--help") return ParseOutcome::Help;
        if (a == "--version") return ParseOutcome::Version;
        if (a == "--insecure")
            o.insecure = true;
        else if (a == "--plain")
            o.plain = true;
        else if (a == "--request")
            o.request = true;
        else if (a == "--json")
            o.json = true;
        else if (a == "--progress")
            o.progress = true;
        else if (a == "--no-progress")
            o.progress = false;
        else if (a == "--scenario" || a == "-s") {
            if (!need(v)) return missing();
            o.scenario_name = v;
        } else if (a == "--target" || a == "-t") {
            if (!need(v)) return missing();
            if (o.target.empty()) o.target = v;
            o.targets.push_back(v);
        } else if (a == "--sni") {
            if (!need(v)) return missing();
            o.sni = v;
        } else if (a == "--cafile") {
            if (!need(v)) return missing();
            o.cafile = v;
        } else if (a == "--threads") {
            if (!need(v)) return missing();
            if (!parse_num(v, o.threads) || o.threads < 1 || o.threads > 64)
                return make_error("--threads: a number from 1 to 64");
        } else if (a == "--connections" || a == "-c") {
            if (!need(v)) return missing();
            if (!parse_num(v, o.connections) || o.connections < 1 || o.connections > 1000000)
                return make_error("--connections: a number from 1 to 1000000");
            have_conns = true;
        } else if (a == "--rate") {
            if (!need(v)) return missing();
            if (v.ends_with("/s")) v.resize(v.size() - 2);
            if (!parse_double(v, o.rate) || o.rate <= 0 || o.rate > 10e6)
                return make_error("--rate: arrivals per second, above 0 and at most 10000000");
        } else if (a == "--requests" || a == "-n") {
            if (!need(v)) return missing();
            uint64_t n = 0;
            if (!parse_num(v, n) || n < 1) return make_error("--requests: a positive number");
            o.requests = n;
        } else if (a == "--duration" || a == "-d") {
            if (!need(v)) return missing();
            if (v.ends_with("s")) v.pop_back();
            if (!parse_double(v, o.duration_s) || o.duration_s <= 0 || o.duration_s > 86400)
                return make_error("--duration: seconds, above 0 and at most 86400");
        } else if (a == "--timeout") {
            if (!need(v)) return missing();
            if (v.ends_with("s")) v.pop_back();
            if (!parse_double(v, o.timeout_s) || o.timeout_s <= 0 || o.timeout_s > 3600)
                return make_error("--timeout: seconds, above 0 and at most 3600");
        } else if (a == "--path") {
            if (!need(v)) return missing();
            if (v.empty() || v.front() != '/' || v.find_first_of(" \r\n\t") != std::string::npos)
                return make_error("--path must start with '/' and contain no spaces or line breaks");
            o.path = v;
        } else if (a == "--domain") {
            if (!need(v)) return missing();
            o.domain = v;
        } else if (a == "--user") {
            if (!need(v)) return missing();
            o.user = v;
        } else if (a == "--password") {
            if (!need(v)) return missing();
            o.password = v;
        } else if (a == "--bearer-file") {
            if (!need(v)) return missing();
            std::ifstream f(v);
            if (!f || !std::getline(f, o.bearer))
                return make_error(fmt::format("--bearer-file: cannot read {}", v));
            while (!o.bearer.empty() && (o.bearer.back() == '\r' || o.bearer.back() == ' '))
                o.bearer.pop_back();
            if (o.bearer.empty() || o.bearer.find_first_of(" \t\r\n") != std::string::npos)
                return make_error("--bearer-file: the first line must be one token");
        } else if (a == "--expect-status") {
            if (!need(v)) return missing();
            int s = 0;
            if (!parse_num(v, s) || s < 100 || s > 599) return make_error("--expect-status: 100..599");
            o.expect_status = s;
        } else if (a == "--ready-file") {
            if (!need(v)) return missing();
            o.ready_file = v;
        } else if (a == "--expires") {
            if (!need(v)) return missing();
            if (!parse_num(v, o.expires) || o.expires > 86400 * 7)
                return make_error("--expires: seconds, 0 to 604800");
        } else if (a == "--interval" || a == "--keepalive") {
            if (!need(v)) return missing();
            if (v.ends_with("s")) v.pop_back();
            double d = 0;
            if (!parse_double(v, d) || d < 0 || d > 86400)
                return make_error(fmt::format("{}: seconds, 0 to 86400", a));
            (a == "--interval" ? o.interval_s : o.keepalive_s) = d;
        } else if (a == "--media-seconds") {
            if (!need(v)) return missing();
            if (v.ends_with("s")) v.pop_back();
            if (!parse_double(v, o.media_s) || o.media_s < 0 || o.media_s > 3600)
                return make_error("--media-seconds: seconds, 0 to 3600");
        } else if (a == "--messages") {
            if (!need(v)) return missing();
            uint64_t n = 0;
            if (!parse_num(v, n) || n < 1) return make_error("--messages: a positive number");
            o.messages = n;
        } else if (a == "--callee") {
            if (!need(v)) return missing();
            // A SIP user part without escapes: it goes into the Request-URI and To unquoted.
            if (v.empty() ||
                v.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                                    "-_.!~*'()+") != std::string::npos)
                return make_error("--callee: a SIP user name (letters, digits, -_.!~*'()+)");
            o.callee = v;
        } else if (a == "--resource") {
            if (!need(v)) return missing();
            if (v.empty() || v.find_first_of("<>&'\"/ \r\n\t") != std::string::npos)
                return make_error("--resource: a non-empty name without XML specials, '/' or spaces");
            o.resource = v;
        } else if (a == "--dns") {
            if (!need(v)) return missing();
            o.dns = v;
        } else if (a == "--tftp-file") {
            if (!need(v)) return missing();
            if (v.empty() || v.front() != '/' || v.find_first_of(" \r\n\t") != std::string::npos)
                return make_error("--tftp-file must start with '/' and contain no spaces or line breaks");
            o.tftp_file = v;
        } else if (a == "--hold") {
            if (!need(v)) return missing();
            if (v == "head")
                o.hold_mode = HoldMode::Head;
            else if (v == "body")
                o.hold_mode = HoldMode::Body;
            else if (v == "h2-body")
                o.hold_mode = HoldMode::H2Body;
            else
                return make_error("--hold: head, body or h2-body");
            hold_opts = true;
        } else if (a == "--source-range") {
            if (!need(v)) return missing();
            auto dash = v.find('-');
            in_addr lo{}, hi{};
            if (dash == std::string::npos || inet_pton(AF_INET, v.substr(0, dash).c_str(), &lo) != 1 ||
                inet_pton(AF_INET, v.substr(dash + 1).c_str(), &hi) != 1)
                return make_error("--source-range: FIRST-LAST, two IPv4 addresses");
            o.source_lo = ntohl(lo.s_addr);
            o.source_hi = ntohl(hi.s_addr);
            if ((o.source_lo >> 24) != 127 || (o.source_hi >> 24) != 127)
                return make_error("--source-range: loopback addresses only (127.0.0.0/8)");
            if (o.source_lo > o.source_hi) return make_error("--source-range: FIRST is above LAST");
            source_set = true;
        } else if (a == "--method") {
            if (!need(v)) return missing();
            if (v.empty() || v.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ") != std::string::npos)
                return make_error("--method: upper-case letters only");
            o.method = v;
            hold_opts = true;
        } else if (a == "--body-length" || a == "--body-sent") {
            if (!need(v)) return missing();
            uint64_t n = 0;
            if (!parse_num(v, n) || n > (uint64_t(1) << 40))
                return make_error(fmt::format("{}: bytes, 0 to 2^40", a));
            (a == "--body-length" ? o.body_length : o.body_sent) = n;
            hold_opts = true;
        } else if (a == "--streams") {
            if (!need(v)) return missing();
            if (!parse_num(v, o.streams) || o.streams < 1 || o.streams > 10000)
                return make_error("--streams: 1 to 10000");
            hold_opts = true;
        } else if (a == "--ramp") {
            if (!need(v)) return missing();
            if (!parse_num(v, o.ramp) || o.ramp < 1 || o.ramp > 10000)
                return make_error("--ramp: 1 to 10000");
            hold_opts = true;
        } else if (a == "--trickle") {
            if (!need(v)) return missing();
            if (v.ends_with("s")) v.pop_back();
            if (!parse_double(v, o.trickle_s) || o.trickle_s < 0.01 || o.trickle_s > 3600)
                return make_error("--trickle: seconds, 0.01 to 3600");
            hold_opts = true;
        } else if (a == "--reopen") {
            o.reopen = true;
            hold_opts = true;
        } else if (a == "--users") {
            if (!need(v)) return missing();
            if (!parse_num(v, o.users) || o.users < 1 || o.users > 10000000)
                return make_error("--users: 1 to 10000000");
            signin_opts = true;
        } else if (a == "--wrong-password-every") {
            if (!need(v)) return missing();
            if (!parse_num(v, o.wrong_every) || o.wrong_every < 2 || o.wrong_every > 1000000)
                return make_error("--wrong-password-every: 2 to 1000000 (every K-th sign-in)");
            signin_opts = true;
        } else if (a == "--tftp-port") {
            if (!need(v)) return missing();
            if (!parse_num(v, o.tftp_port) || o.tftp_port == 0) return make_error("--tftp-port: 1..65535");
        } else {
            return make_error(fmt::format("unknown argument \"{}\"", a));
        }
    }

    if (o.scenario_name.empty()) return make_error("--scenario is required");
    if (o.scenario_name == "handshake")
        o.scenario = Scenario::Handshake;
    else if (o.scenario_name == "http")
        o.scenario = Scenario::Http;
    else if (o.scenario_name == "edge-config")
        o.scenario = Scenario::EdgeConfig;
    else if (o.scenario_name == "oauth-sign-in")
        o.scenario = Scenario::OAuthSignIn;
    else if (o.scenario_name == "idle")
        o.scenario = Scenario::Idle;
    else if (o.scenario_name == "sip-register")
        o.scenario = Scenario::SipRegister;
    else if (o.scenario_name == "sip-call")
        o.scenario = Scenario::SipCall;
    else if (o.scenario_name == "xmpp")
        o.scenario = Scenario::Xmpp;
    else if (o.scenario_name == "mra-login")
        o.scenario = Scenario::MraLogin;
    else if (o.scenario_name == "hold")
        o.scenario = Scenario::Hold;
    else if (o.scenario_name == "sign-in")
        o.scenario = Scenario::SignIn;
    else
        return make_error(fmt::format("unknown scenario \"{}\"", o.scenario_name));

    if (o.scenario == Scenario::MraLogin) {
        // A Jabber client knows only its domain: the edge comes from DNS, so there is no --target.
        if (!o.target.empty())
            return make_error("mra-login finds edge-e by DNS SRV at --dns; --target does not apply");
        if (o.dns.empty()) return make_error("mra-login needs --dns HOST:PORT");
        if (o.user.empty()) return make_error("mra-login needs --user and --password");
        if (o.plain) return make_error("--plain does not apply to mra-login");
    } else {
        if (!o.dns.empty()) return make_error("--dns applies to mra-login only");
        if (o.target.empty()) return make_error("--target HOST:PORT is required");
        auto hp = net::split_host_port(o.target);
        if (!hp) return make_error(fmt::format("--target: {}", hp.error().message));
        if (hp->second == 0) return make_error("--target: a port is required (HOST:PORT)");
        o.host = hp->first;
        o.port = hp->second;
        if (o.targets.size() > 1 && o.scenario != Scenario::SignIn)
            return make_error("--target may be repeated for the sign-in scenario only");
        for (const auto& t : o.targets) {
            auto tp = net::split_host_port(t);
            if (!tp) return make_error(fmt::format("--target {}: {}", t, tp.error().message));
            if (tp->second == 0) return make_error(fmt::format("--target {}: a port is required", t));
            if (o.source_lo && tp->first.find(':') != std::string::npos)
                return make_error("--source-range is IPv4: every --target must be IPv4 too");
        }
    }
    if (!o.dns.empty()) {
        auto dp = net::split_host_port(o.dns);
        if (!dp) return make_error(fmt::format("--dns: {}", dp.error().message));
        o.dns_host = dp->first;
        if (dp->second) o.dns_port = dp->second;
    }
    if (o.scenario == Scenario::SignIn) {
        if (o.plain) return make_error("--plain does not apply to sign-in");
        if (o.user.empty())
            return make_error("sign-in needs --user (with %d for --users > 1) and --password");
        if (o.users > 1 && o.user.find("%d") == std::string::npos)
            return make_error("--users N needs a --user pattern with %d (e.g. load%d)");
    } else if (signin_opts) {
        return make_error("--users and --wrong-password-every apply to the sign-in scenario only");
    }
    // mra-login dials what DNS and the edge config name, several connections per login.
    if (source_set && o.scenario == Scenario::MraLogin)
        return make_error("--source-range does not apply to mra-login");
    if (o.source_lo && o.host.find(':') != std::string::npos)
        return make_error("--source-range is IPv4: the --target must be IPv4 too");
    if ((o.scenario == Scenario::SipCall) == o.callee.empty())
        return make_error("sip-call needs --callee USER, which applies to it only");
    if (o.media_s > 0 && o.scenario != Scenario::SipCall)
        return make_error("--media-seconds applies to sip-call only");
    if (o.scenario == Scenario::SipRegister || o.scenario == Scenario::SipCall ||
        o.scenario == Scenario::Xmpp) {
        if (o.plain) return make_error(fmt::format("--plain does not apply to {}", o.scenario_name));
        if (o.user.empty()) return make_error(fmt::format("{} needs --user and --password", o.scenario_name));
    }
    if ((o.scenario == Scenario::OAuthSignIn) == o.bearer.empty())
        return make_error("oauth-sign-in needs --bearer-file, which applies to it only");
    if (o.scenario == Scenario::OAuthSignIn && !o.user.empty())
        return make_error("oauth-sign-in signs in with its token: --user and --password do not apply");
    if (o.messages && o.scenario != Scenario::Xmpp) return make_error("--messages applies to xmpp only");

    if (o.plain && o.scenario == Scenario::Handshake)
        return make_error("--plain: the handshake scenario measures TLS handshakes");
    if (o.plain && (!o.cafile.empty() || !o.sni.empty()))
        return make_error("--plain cannot be combined with --cafile or --sni");
    if (!o.plain && !o.insecure && o.cafile.empty())
        return make_error(
            "TLS needs --cafile FILE to verify the server, or --insecure (or --plain for HTTP)");
    if (o.rate > 0 && (o.scenario == Scenario::Idle || o.scenario == Scenario::Hold))
        return make_error(fmt::format("--rate does not apply to the {} scenario", o.scenario_name));
    if (!o.ready_file.empty() && o.scenario != Scenario::Idle && o.scenario != Scenario::Hold)
        return make_error("--ready-file applies to the idle and hold scenarios only");
    if (hold_opts && o.scenario != Scenario::Hold)
        return make_error("--hold, --method, --body-*, --streams, --ramp, --trickle and "
                          "--reopen apply to the hold scenario only");
    if (o.scenario == Scenario::Hold) {
        if (o.hold_mode != HoldMode::Head && o.body_sent >= o.body_length)
            return make_error("--body-sent must be below --body-length: the request must stay unfinished");
        if (o.requests) return make_error("--requests does not apply to the hold scenario (see --duration)");
    }
    if (o.user.empty() != o.password.empty()) return make_error("--user and --password go together");
    if (!have_conns)
        o.connections =
            o.scenario == Scenario::Idle || o.scenario == Scenario::Hold ? 100 : (o.rate > 0 ? 10 : 1);
    if (o.scenario == Scenario::Xmpp && o.rate > 0 && o.connections < 2 && !have_conns) o.connections = 2;
    // Each thread needs at least one connection of its own.
    if (o.threads > o.connections) o.threads = o.connections;
    return ParseOutcome::Run;
}

std::string user_for(const Options& o, unsigned index) {
    std::string u = o.user;
    if (auto p = u.find("%d"); p != std::string::npos) u.replace(p, 2, std::to_string(index));
    return u;
}

bool is_loopback(const net::SockAddr& a) {
    if (a.family() == AF_INET) {
        auto* v4 = reinterpret_cast<const sockaddr_in*>(&a.ss);
        return (ntohl(v4->sin_addr.s_addr) >> 24) == 127;
    }
    if (a.family() == AF_INET6) {
        auto* v6 = reinterpret_cast<const sockaddr_in6*>(&a.ss);
        if (IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr)) return true;
        return IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr) && v6->sin6_addr.s6_addr[12] == 127;
    }
    return false;
}

Result<net::SockAddr> resolve_loopback_target(const std::string& host, uint16_t port) {
    auto a = net::resolve_blocking(host, port);
    if (!a) return a.error();
    if (!is_loopback(*a))
        return make_error(
            fmt::format("refusing target {} ({}): edge-load only sends load to loopback addresses "
                        "(127.0.0.0/8, ::1)",
                        host, a->ip()));
    return a;
}

} // namespace edgepair::load
