// edge-load: edgepair's bundled traffic generator (loopback targets only). See usage_text() and
// docs/BENCHMARKS.md.
#include <array>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fcntl.h>
#include <memory>
#include <string>
#include <sys/resource.h>
#include <unistd.h>
#include <vector>

#include <fmt/format.h>

#include "common/core/version.h"
#include "common/core/worker.h"
#include "common/http/b64_domain.h"
#include "tools/edge-load/driver.h"
#include "tools/edge-load/hold_driver.h"
#include "tools/edge-load/options.h"
#include "tools/edge-load/session_driver.h"
#include "tools/edge-load/stats.h"

namespace {

using namespace edgepair;
using namespace edgepair::load;

std::atomic<bool> g_interrupted{false};
extern "C" void on_signal(int) {
    g_interrupted.store(true);
}

// Connections need one descriptor each; the soft limit (often 1024) would cap the idle and hold scenarios.
// When even the hard limit is below `want`, try to raise it too (root may, up to fs.nr_open).
void raise_fd_limit(uint64_t want) {
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want) {
        rlimit up{rlim_t(want), rlim_t(want)};
        if (setrlimit(RLIMIT_NOFILE, &up) == 0) return;
    }
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

uint64_t fd_limit() {
    rlimit rl{};
    return getrlimit(RLIMIT_NOFILE, &rl) == 0 ? uint64_t(rl.rlim_cur) : 0;
}

std::string json_str(std::string_view s) {
    std::string o = "\"";
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') {
            o += '\\';
            o += char(c);
        } else if (c < 0x20) {
            o += fmt::format("\\u{:04x}", c);
        } else {
            o += char(c);
        }
    }
    return o + "\"";
}

std::string fmt_ms(uint64_t us) {
    return fmt::format("{:.3f}ms", double(us) / 1000.0);
}

std::string build_request(const Options& o) {
    std::string path = o.path;
    if (o.scenario == Scenario::EdgeConfig || o.scenario == Scenario::OAuthSignIn)
        path = "/" + http::encode_domain(o.domain) +
               "/get_edge_config/?service_name=_cisco-uds&service_name=_cuplogin";
    std::string host =
        !o.sni.empty() ? o.sni : (o.host.find(':') != std::string::npos ? "[" + o.host + "]" : o.host);
    if (o.port != (o.plain ? 80 : 443)) host += fmt::format(":{}", o.port);
    std::string req = fmt::format(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: edge-load/{}\r\nAccept: */*\r\n", path, host, kVersion);
    if (!o.user.empty())
        req += "Authorization: Basic " + http::base64_encode(o.user + ":" + o.password) + "\r\n";
    if (!o.bearer.empty()) req += "Authorization: Bearer " + o.bearer + "\r\n";
    // One request per connection: say so, so that the server closes (its TIME_WAIT, not ours).
    if (o.scenario == Scenario::Handshake) req += "Connection: close\r\n";
    return req + "\r\n";
}

const char* unit_of(const Options& o) {
    switch (o.scenario) {
    case Scenario::Handshake:
        return "handshakes";
    case Scenario::SipRegister:
        return "registers";
    case Scenario::SipCall:
        return "calls";
    case Scenario::Xmpp:
        return "messages";
    case Scenario::MraLogin:
        return "logins";
    case Scenario::SignIn:
        return "sign-ins";
    case Scenario::Hold:
        return "connections";
    default:
        return "requests";
    }
}

std::string hist_json(const Histogram& h) {
    return fmt::format(
        "{{\"count\":{},\"min\":{},\"mean\":{:.1f},\"p50\":{},\"p90\":{},\"p99\":{},\"p999\":{},"
        "\"max\":{}}}",
        h.count(), h.min(), h.mean(), h.quantile(0.50), h.quantile(0.90), h.quantile(0.99), h.quantile(0.999),
        h.max());
}

const char* hold_mode_name(HoldMode m) {
    switch (m) {
    case HoldMode::Head:
        return "head";
    case HoldMode::Body:
        return "body";
    case HoldMode::H2Body:
        return "h2-body";
    }
    return "?";
}

uint64_t hold_requests_per_conn(const Options& o) {
    return o.hold_mode == HoldMode::H2Body ? o.streams : 1;
}

void print_progress(const Options& o, const Stats& s, uint64_t prev_ok, double dt, double elapsed) {
    if (o.scenario == Scenario::Hold) {
        std::fprintf(stderr,
                     "edge-load [%5.1fs] hold %s: set up %llu/%u  open %llu  unanswered requests %llu  "
                     "answered %llu  reset %llu  closed-by-peer %llu  errors %llu\n",
                     elapsed, hold_mode_name(o.hold_mode), (unsigned long long)s.hold_established,
                     o.connections, (unsigned long long)s.open_conns,
                     (unsigned long long)s.hold_open_requests, (unsigned long long)s.hold_answered,
                     (unsigned long long)s.hold_reset, (unsigned long long)s.hold_closed_by_peer,
                     (unsigned long long)s.errors_total());
        return;
    }
    if (o.scenario == Scenario::Idle) {
        std::fprintf(stderr, "edge-load [%5.1fs] up %llu/%u  open %llu  closed-by-peer %llu  errors %llu\n",
                     elapsed, (unsigned long long)s.idle_established, o.connections,
                     (unsigned long long)s.open_conns, (unsigned long long)s.idle_closed_by_peer,
                     (unsigned long long)s.errors_total());
        return;
    }
    double rate = dt > 0 ? double(s.ok - prev_ok) / dt : 0;
    std::string up =
        o.scenario == Scenario::SipRegister || o.scenario == Scenario::SipCall || o.scenario == Scenario::Xmpp
            ? fmt::format("  {} {}/{}", o.scenario == Scenario::Xmpp ? "logged-in" : "registered",
                          s.sessions_up, o.connections)
            : std::string();
    std::fprintf(stderr, "edge-load [%5.1fs] %s %llu  %.0f/s  p50 %s  p99 %s  errors %llu  open %llu%s\n",
                 elapsed, unit_of(o), (unsigned long long)s.ok, rate,
                 fmt_ms(s.latency.quantile(0.50)).c_str(), fmt_ms(s.latency.quantile(0.99)).c_str(),
                 (unsigned long long)s.errors_total(), (unsigned long long)s.open_conns, up.c_str());
}

void print_json(const Options& o, const Stats& s, double elapsed) {
    const auto& h = s.latency;
    std::string j = "{";
    j += fmt::format("\"tool\":\"edge-load\",\"version\":{},\"scenario\":{},\"target\":{},\"tls\":{},",
                     json_str(kVersion), json_str(o.scenario_name), json_str(o.target),
                     o.plain ? "false" : "true");
    j += fmt::format("\"threads\":{},\"connections\":{},\"mode\":\"{}\",\"rate_target\":{},", o.threads,
                     o.connections, o.rate > 0 ? "open" : "closed",
                     o.rate > 0 ? fmt::format("{}", o.rate) : "null");
    j += fmt::format("\"duration_s\":{:.3f},\"attempts\":{},\"ok\":{},\"requests\":{},\"handshakes\":{},"
                     "\"connects\":{},\"unfinished\":{},",
                     elapsed, s.attempts, s.ok, s.responses, s.handshakes, s.connects, s.unfinished);
    double div = elapsed > 0 ? elapsed : 1;
    j += fmt::format("\"rate\":{:.1f},\"handshake_rate\":{:.1f},", double(s.ok) / div,
                     double(s.handshakes) / div);
    j += fmt::format("\"status\":{{\"1xx\":{},\"2xx\":{},\"3xx\":{},\"4xx\":{},\"5xx\":{},\"other\":{}}},",
                     s.status_class[1], s.status_class[2], s.status_class[3], s.status_class[4],
                     s.status_class[5], s.status_class[0]);
    j += fmt::format("\"unit\":\"{}\",\"latency_us\":{},", unit_of(o), hist_json(h));
    j += "\"errors\":{";
    for (size_t i = 0; i < kErrKinds; ++i)
        j += fmt::format("{}\"{}\":{}", i ? "," : "", err_name(ErrKind(i)), s.errors[i]);
    j += fmt::format("}},\"errors_total\":{}", s.errors_total());
    if (o.scenario == Scenario::Idle)
        j += fmt::format(
            ",\"idle\":{{\"target\":{},\"established\":{},\"alive_at_end\":{},\"closed_by_peer\":{}}}",
            o.connections, s.idle_established, s.idle_alive_at_end, s.idle_closed_by_peer);
    if (o.scenario == Scenario::Hold) {
        j += fmt::format(
            ",\"hold\":{{\"mode\":\"{}\",\"target\":{},\"requests_target\":{},\"established\":{},"
            "\"requests\":{},\"answered\":{},\"reset\":{},\"goaway\":{},\"closed_by_peer\":{},"
            "\"reopened\":{},\"peak_open_requests\":{},\"alive_at_end\":{},\"open_requests_at_end\":{},",
            hold_mode_name(o.hold_mode), o.connections, uint64_t(o.connections) * hold_requests_per_conn(o),
            s.hold_established, s.hold_requests, s.hold_answered, s.hold_reset, s.hold_goaway,
            s.hold_closed_by_peer, s.hold_reopened, s.hold_peak_open_requests, s.hold_alive_at_end,
            s.hold_open_requests_at_end);
        j += fmt::format("\"answer_after_ms\":{},\"close_after_ms\":{},\"closed_at_ms\":{}}}",
                         hist_json(s.hold_answer_after_ms), hist_json(s.hold_close_after_ms),
                         hist_json(s.hold_closed_at_ms));
    }
    if (is_session_scenario(o.scenario)) {
        auto names = step_names(o.scenario);
        j += ",\"steps_us\":{";
        for (size_t i = 0; i < names.size(); ++i)
            j += fmt::format("{}\"{}\":{}", i ? "," : "", names[i],
                             hist_json(i < s.steps.size() ? s.steps[i] : Histogram()));
        j += "}";
        j += fmt::format(",\"sessions\":{{\"target\":{},\"up_at_end\":{},\"logins\":{}}}", o.connections,
                         s.sessions_up_at_end, s.logins);
        j += fmt::format(",\"auth_challenges\":{},\"keepalive\":{{\"pings\":{},\"pongs\":{}}}",
                         s.auth_challenges, s.keepalive_pings, s.keepalive_pongs);
        if (o.scenario == Scenario::Xmpp)
            j += fmt::format(",\"messages\":{{\"sent\":{},\"received\":{}}}", s.messages_sent,
                             s.messages_received);
        if (o.scenario == Scenario::SipCall)
            j += fmt::format(",\"calls\":{{\"callee\":{},\"invites\":{},\"answered\":{},\"completed\":{}}}"
                             ",\"media\":{{\"seconds_per_call\":{},\"sent\":{},\"received\":{},\"bad\":{}}}",
                             json_str(o.callee), s.invites_sent, s.calls_answered, s.ok, o.media_s,
                             s.media_sent, s.media_received, s.media_bad);
    }
    if (o.scenario == Scenario::SignIn) {
        j += fmt::format(",\"sign_in\":{{\"users\":{},\"wrong_password\":{{\"sent\":{},\"refused\":{}}},"
                         "\"tokens\":{},\"by_target\":[",
                         o.users, s.wrong_sent, s.wrong_refused, s.tokens);
        for (size_t i = 0; i < o.targets.size(); ++i) {
            std::array<uint64_t, 3> c{};
            if (i < s.by_target.size()) c = s.by_target[i];
            j += fmt::format("{}{{\"target\":{},\"ok\":{},\"refused\":{},\"failed\":{}}}", i ? "," : "",
                             json_str(o.targets[i]), c[0], c[1], c[2]);
        }
        j += "]}";
    }
    j += "}\n";
    std::fwrite(j.data(), 1, j.size(), stdout);
}

void print_human(const Options& o, const Stats& s, double elapsed) {
    const auto& h = s.latency;
    double div = elapsed > 0 ? elapsed : 1;
    std::printf("edge-load %s: scenario %s, target %s (%s), %u thread(s), %u connection(s), %s\n", kVersion,
                o.scenario_name.c_str(), o.target.c_str(), o.plain ? "plain" : "TLS", o.threads,
                o.connections, o.rate > 0 ? fmt::format("open loop at {}/s", o.rate).c_str() : "closed loop");
    std::printf("  duration   %.3f s\n", elapsed);
    std::printf("  %-10s %llu ok of %llu started (%.1f/s)%s\n", unit_of(o), (unsigned long long)s.ok,
                (unsigned long long)s.attempts, double(s.ok) / div,
                s.unfinished ? fmt::format(", {} unfinished at the end", s.unfinished).c_str() : "");
    std::printf(
        "  handshakes %llu (%.1f/s), responses %llu (2xx %llu, 3xx %llu, 4xx %llu, 5xx %llu, other %llu)\n",
        (unsigned long long)s.handshakes, double(s.handshakes) / div, (unsigned long long)s.responses,
        (unsigned long long)s.status_class[2], (unsigned long long)s.status_class[3],
        (unsigned long long)s.status_class[4], (unsigned long long)s.status_class[5],
        (unsigned long long)(s.status_class[0] + s.status_class[1]));
    std::printf(
        "  latency    min %s  mean %.3fms  p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (%llu samples)\n",
        fmt_ms(h.min()).c_str(), h.mean() / 1000.0, fmt_ms(h.quantile(0.5)).c_str(),
        fmt_ms(h.quantile(0.9)).c_str(), fmt_ms(h.quantile(0.99)).c_str(), fmt_ms(h.quantile(0.999)).c_str(),
        fmt_ms(h.max()).c_str(), (unsigned long long)h.count());
    std::printf("  errors     %llu", (unsigned long long)s.errors_total());
    for (size_t i = 0; i < kErrKinds; ++i)
        if (s.errors[i])
            std::printf("  %s %llu", std::string(err_name(ErrKind(i))).c_str(),
                        (unsigned long long)s.errors[i]);
    std::printf("\n");
    if (o.scenario == Scenario::Idle)
        std::printf("  idle       %llu/%u established, %llu alive at the end, %llu closed by the server\n",
                    (unsigned long long)s.idle_established, o.connections,
                    (unsigned long long)s.idle_alive_at_end, (unsigned long long)s.idle_closed_by_peer);
    if (o.scenario == Scenario::Hold) {
        auto hq = [](const Histogram& x) {
            return x.count() ? fmt::format("{} (after {} ms .. {} ms, median {} ms)", x.count(), x.min(),
                                           x.max(), x.quantile(0.5))
                             : std::string("0");
        };
        std::printf(
            "  hold       mode %s: %llu of %u connections set up (%llu requests left unfinished), %llu "
            "alive at the end with %llu requests still unanswered (peak %llu)\n",
            hold_mode_name(o.hold_mode), (unsigned long long)s.hold_established, o.connections,
            (unsigned long long)s.hold_requests, (unsigned long long)s.hold_alive_at_end,
            (unsigned long long)s.hold_open_requests_at_end, (unsigned long long)s.hold_peak_open_requests);
        std::printf("  answered   %s; streams reset %llu, GOAWAY %llu\n", hq(s.hold_answer_after_ms).c_str(),
                    (unsigned long long)s.hold_reset, (unsigned long long)s.hold_goaway);
        std::printf("  closed     by the server: %s; at %llu ms .. %llu ms into the run; re-opened %llu\n",
                    hq(s.hold_close_after_ms).c_str(), (unsigned long long)s.hold_closed_at_ms.min(),
                    (unsigned long long)s.hold_closed_at_ms.max(), (unsigned long long)s.hold_reopened);
    }
    if (is_session_scenario(o.scenario)) {
        auto names = step_names(o.scenario);
        for (size_t i = 0; i < names.size() && i < s.steps.size(); ++i) {
            const Histogram& st = s.steps[i];
            std::printf("  %-12s n %llu  p50 %s  p90 %s  p99 %s  max %s\n", names[i].c_str(),
                        (unsigned long long)st.count(), fmt_ms(st.quantile(0.5)).c_str(),
                        fmt_ms(st.quantile(0.9)).c_str(), fmt_ms(st.quantile(0.99)).c_str(),
                        fmt_ms(st.max()).c_str());
        }
        std::printf("  sessions   %llu set up (re-logins included), %llu of %u up at the end; %llu digest "
                    "challenges; "
                    "keep-alives %llu sent, %llu answered\n",
                    (unsigned long long)s.logins, (unsigned long long)s.sessions_up_at_end, o.connections,
                    (unsigned long long)s.auth_challenges, (unsigned long long)s.keepalive_pings,
                    (unsigned long long)s.keepalive_pongs);
        if (o.scenario == Scenario::Xmpp)
            std::printf("  messages   %llu sent, %llu received\n", (unsigned long long)s.messages_sent,
                        (unsigned long long)s.messages_received);
        if (o.scenario == Scenario::SipCall)
            std::printf("  calls      to %s: %llu INVITEs, %llu answered 2xx, %llu completed (BYE answered); "
                        "latency above is set-up (INVITE to 2xx)\n",
                        o.callee.c_str(), (unsigned long long)s.invites_sent,
                        (unsigned long long)s.calls_answered, (unsigned long long)s.ok);
        if (o.scenario == Scenario::SipCall && o.media_s > 0)
            std::printf(
                "  media      %g s per call: %llu SRTP packets sent, %llu came back authenticated, %llu "
                "bad\n",
                o.media_s, (unsigned long long)s.media_sent, (unsigned long long)s.media_received,
                (unsigned long long)s.media_bad);
    }
    if (o.scenario == Scenario::SignIn) {
        std::printf(
            "  sign-in    %u users; wrong password %llu sent, %llu refused 401 (not errors); %llu edge "
            "tokens\n",
            o.users, (unsigned long long)s.wrong_sent, (unsigned long long)s.wrong_refused,
            (unsigned long long)s.tokens);
        for (size_t i = 0; i < o.targets.size(); ++i) {
            std::array<uint64_t, 3> c{};
            if (i < s.by_target.size()) c = s.by_target[i];
            std::printf("  %-10s ok %llu  refused %llu  failed %llu\n", o.targets[i].c_str(),
                        (unsigned long long)c[0], (unsigned long long)c[1], (unsigned long long)c[2]);
        }
    }
}

} // namespace

int main(int argc, char** argv) {
    Options opt;
    auto parsed = parse_options(argc, argv, opt);
    if (!parsed) {
        std::fprintf(stderr, "edge-load: %s\n(edge-load --help for the options)\n",
                     parsed.error().message.c_str());
        return 2;
    }
    if (*parsed == ParseOutcome::Help) {
        std::fputs(usage_text().c_str(), stdout);
        return 0;
    }
    if (*parsed == ParseOutcome::Version) {
        std::printf("edge-load %s\n", kVersion);
        return 0;
    }
    // mra-login has no --target: its edge comes from DNS, and the DNS server itself must be loopback.
    auto addr = opt.scenario == Scenario::MraLogin ? resolve_loopback_target(opt.dns_host, opt.dns_port)
                                                   : resolve_loopback_target(opt.host, opt.port);
    if (!addr) {
        std::fprintf(stderr, "edge-load: %s\n", addr.error().message.c_str());
        return 2;
    }

    std::signal(SIGPIPE, SIG_IGN); // SSL_write goes through write(2): a reset peer must not kill us
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    raise_fd_limit(uint64_t(opt.connections) + 256);
    if ((opt.scenario == Scenario::Idle || opt.scenario == Scenario::Hold) &&
        fd_limit() < uint64_t(opt.connections) + 64)
        std::fprintf(
            stderr,
            "edge-load: warning: the descriptor limit (%llu) is below --connections %u; raise ulimit -n\n",
            (unsigned long long)fd_limit(), opt.connections);

    Shared sh;
    sh.opt = &opt;
    sh.addr = *addr;
    sh.tls_name = !opt.sni.empty() ? opt.sni : opt.host;
    if (opt.scenario == Scenario::SignIn) {
        for (const auto& t : opt.targets) {
            auto hp = net::split_host_port(t); // checked by parse_options
            auto a = resolve_loopback_target(hp->first, hp->second);
            if (!a) {
                std::fprintf(stderr, "edge-load: %s\n", a.error().message.c_str());
                return 2;
            }
            sh.targets.push_back(*a);
            sh.target_names.push_back(!opt.sni.empty() ? opt.sni : hp->first);
        }
    }
    sh.request = build_request(opt);
    if (opt.source_lo && addr->family() != AF_INET) {
        std::fprintf(stderr, "edge-load: --source-range is IPv4, but %s is %s\n", opt.target.c_str(),
                     addr->str().c_str());
        return 2;
    }
    const HoldRequest hold_req = build_hold_request(opt);
    if (!opt.plain) {
        net::TlsClientOptions to;
        to.verify = !opt.insecure;
        if (to.verify) to.trusted_cas = opt.cafile;
        // SIP and XMPP listeners speak no ALPN; mra-login's HTTPS is HTTP/1.1 either way.
        if (opt.scenario == Scenario::Hold && opt.hold_mode == HoldMode::H2Body)
            to.alpn = {"h2"};
        else if (!is_session_scenario(opt.scenario))
            to.alpn = {"http/1.1"};
        auto ctx = net::TlsClientContext::create(to);
        if (!ctx) {
            std::fprintf(stderr, "edge-load: TLS: %s\n", ctx.error().message.c_str());
            return 2;
        }
        sh.tls = *ctx;
    }

    const unsigned T = opt.threads;
    const uint64_t start = now_ns();
    const uint64_t deadline = start + uint64_t(opt.duration_s * 1e9);
    std::vector<std::unique_ptr<core::Worker>> workers;
    std::vector<std::unique_ptr<Runner>> drivers;
    unsigned first_slot = 0;
    for (unsigned i = 0; i < T; ++i) {
        Plan p;
        if (opt.requests) p.ops = *opt.requests / T + (i < *opt.requests % T ? 1 : 0);
        p.slots = opt.connections / T + (i < opt.connections % T ? 1 : 0);
        if (opt.rate > 0) {
            p.rate = opt.rate / T;
            p.phase_ns = uint64_t(double(i) * 1e9 / opt.rate);
        }
        p.deadline_ns = deadline;
        p.first_slot = first_slot;
        first_slot += p.slots;
        workers.push_back(std::make_unique<core::Worker>(i));
        if (opt.scenario == Scenario::Hold)
            drivers.push_back(std::make_unique<HoldDriver>(workers.back()->loop(), sh, hold_req, p));
        else if (is_session_scenario(opt.scenario))
            drivers.push_back(std::make_unique<SessionDriver>(workers.back()->loop(), sh, p));
        else
            drivers.push_back(std::make_unique<Driver>(workers.back()->loop(), sh, p));
    }
    for (unsigned i = 0; i < T; ++i) {
        Runner* d = drivers[i].get();
        workers[i]->start([d] { d->start(); });
    }

    // The drivers stop themselves at the deadline; this is the backstop if one cannot.
    const uint64_t hard_stop = deadline + uint64_t((opt.timeout_s + 5) * 1e9);
    uint64_t last_progress = start, prev_ok = 0;
    bool ready_written = false, forced = false, interrupt_seen = false;
    uint64_t interrupt_deadline = 0;
    for (;;) {
        {
            std::unique_lock<std::mutex> lk(sh.mu);
            sh.cv.wait_for(lk, std::chrono::milliseconds(100), [&] { return sh.finished == T; });
            if (sh.finished == T) break;
        }
        uint64_t now = now_ns();
        if (g_interrupted.load() && !interrupt_seen) {
            // End as the deadline does, so that the summary (idle: connections alive) is still complete.
            interrupt_seen = true;
            interrupt_deadline = now + 5000000000u;
            for (unsigned i = 0; i < T; ++i) {
                Runner* d = drivers[i].get();
                workers[i]->loop().post([d] { d->stop_now(); });
            }
        }
        if (now > hard_stop || (interrupt_seen && now > interrupt_deadline)) {
            forced = true;
            for (auto& w : workers)
                w->stop();
            break;
        }
        if (!ready_written && (opt.scenario == Scenario::Idle || opt.scenario == Scenario::Hold) &&
            sh.ramped.load() == T) {
            ready_written = true;
            Stats m;
            for (auto& d : drivers)
                m.merge(d->snapshot());
            uint64_t up = opt.scenario == Scenario::Hold ? m.hold_established : m.idle_established;
            if (opt.scenario == Scenario::Hold)
                std::fprintf(
                    stderr,
                    "edge-load: hold: %llu of %u connections set up (%llu unfinished requests) in %.1f s, "
                    "holding\n",
                    (unsigned long long)up, opt.connections, (unsigned long long)m.hold_requests,
                    double(now - start) / 1e9);
            else
                std::fprintf(stderr, "edge-load: idle: %llu of %u connections up, holding\n",
                             (unsigned long long)up, opt.connections);
            if (!opt.ready_file.empty()) {
                int fd = ::open(opt.ready_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                if (fd >= 0) {
                    std::string line = fmt::format("{}\n", up);
                    ssize_t w = ::write(fd, line.data(), line.size());
                    (void)w;
                    ::close(fd);
                }
            }
        }
        if (opt.progress && now - last_progress >= 1000000000u) {
            Stats m;
            for (auto& d : drivers)
                m.merge(d->snapshot());
            print_progress(opt, m, prev_ok, double(now - last_progress) / 1e9, double(now - start) / 1e9);
            prev_ok = m.ok;
            last_progress = now;
        }
    }
    const uint64_t end = now_ns();
    for (auto& w : workers)
        w->join();
    Stats total;
    for (auto& d : drivers)
        total.merge(d->final_stats());
    drivers.clear(); // before the loops they use
    workers.clear();
    if (forced) std::fprintf(stderr, "edge-load: a worker did not stop by itself; stopped it\n");

    double elapsed = double(end - start) / 1e9;
    if (opt.json)
        print_json(opt, total, elapsed);
    else
        print_human(opt, total, elapsed);
    std::fflush(stdout);

    if (interrupt_seen) std::fprintf(stderr, "edge-load: interrupted; the summary covers the run so far\n");
    bool good = total.errors_total() == 0 && !forced;
    if (opt.scenario == Scenario::Idle)
        good = good && total.idle_alive_at_end == opt.connections;
    else if (opt.scenario == Scenario::Hold)
        good = good && total.hold_established >= opt.connections;
    else
        good = good && total.ok > 0;
    return good ? 0 : 1;
}
