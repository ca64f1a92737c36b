// rtp-bench: load generator for the media relay benchmark (tools/bench-media.sh). Links libsrtp2 only.
//
// It plays both ends of N calls through a relay (edgepair's pair, rtpengine) or directly:
//   client side   : one UDP socket per stream on --client-ip:<client_port>; sends SRTP (its own SDES key) at
//                   --pps packets/s to the relay's client-facing port, and decrypts what comes back with the
//                   relay's key;
//   internal side : one UDP socket per stream on --internal-ip:<internal_port>; checks each packet is the
//                   plain RTP the client sent (the relay decrypted it) and echoes it to its source, as
//                   sipp -rtp_echo does.
// Every packet carries its send time, so each echo that comes back gives one round-trip time. Relayed
// packets = packets that arrived at the internal side + packets that came back to the client.
//
//   rtp-bench --streams FILE [--client-ip IP] [--internal-ip IP] [--pps 50] [--duration 10] [--warmup 2]
//             [--payload 160]
// FILE: one stream per line (# comments allowed):
//   client_port relay_ip relay_port tx_suite tx_key_b64 rx_suite rx_key_b64 internal_port internal_srtp
// suites: AES_CM_128_HMAC_SHA1_80 | AES_CM_128_HMAC_SHA1_32; internal_srtp: 0 (internal side gets plain RTP)
// or 1 (direct mode: the internal side gets the client's SRTP unchanged and echoes it; rx key = tx key).
// Output: one JSON object on stdout.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <srtp2/srtp.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

uint64_t now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

[[noreturn]] void die(const std::string& msg) {
    std::fprintf(stderr, "rtp-bench: %s\n", msg.c_str());
    std::exit(2);
}

std::string b64decode(const std::string& in) {
    static const std::string chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    uint32_t acc = 0;
    int bits = 0;
    for (char c : in) {
        if (c == '=') break;
        auto p = chars.find(c);
        if (p == std::string::npos) die("bad base64 key: " + in);
        acc = (acc << 6) | uint32_t(p);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(char((acc >> bits) & 0xFF));
        }
    }
    return out;
}

srtp_t make_session(const std::string& suite, const std::string& key_b64, bool outbound) {
    std::string key = b64decode(key_b64);
    if (key.size() != 30) die("SDES master key+salt must be 30 bytes: " + key_b64);
    srtp_policy_t pol;
    std::memset(&pol, 0, sizeof pol);
    if (suite == "AES_CM_128_HMAC_SHA1_80")
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&pol.rtp);
    else if (suite == "AES_CM_128_HMAC_SHA1_32")
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(&pol.rtp);
    else
        die("unknown suite " + suite);
    srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&pol.rtcp);
    pol.ssrc.type = outbound ? ssrc_any_outbound : ssrc_any_inbound;
    pol.key = reinterpret_cast<unsigned char*>(key.data());
    pol.window_size = 1024;
    pol.allow_repeat_tx = 0;
    pol.next = nullptr;
    srtp_t s = nullptr;
    if (srtp_create(&s, &pol) != srtp_err_status_ok) die("srtp_create failed");
    return s;
}

int udp_bind(const std::string& ip, uint16_t port) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket: " + std::string(strerror(errno)));
    int sz = 1 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    if (inet_pton(AF_INET, ip.c_str(), &a.sin_addr) != 1) die("bad IP " + ip);
    if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
        die("bind " + ip + ":" + std::to_string(port) + ": " + strerror(errno));
    return fd;
}

struct Stream {
    int client_fd = -1, internal_fd = -1;
    sockaddr_in relay{};
    srtp_t tx = nullptr, rx = nullptr;
    bool internal_srtp = false;
    uint32_t ssrc = 0;
    uint16_t seq = 0;
    uint32_t ts = 0;
    uint64_t next_send = 0;
};

struct Counters {
    uint64_t sent = 0, send_err = 0, at_internal = 0, bad_internal = 0, echo_err = 0, at_client = 0,
             auth_fail = 0, bad_client = 0;
};

constexpr size_t kHeader = 12;
constexpr size_t kStamp = 16;           // send time (8) + stream index (4) + magic (4)
constexpr uint32_t kMagic = 0x45504D42; // "EPMB"

double pct(std::vector<uint32_t>& v, double p) {
    if (v.empty()) return 0;
    size_t i = std::min(v.size() - 1, size_t(p / 100.0 * double(v.size())));
    std::nth_element(v.begin(), v.begin() + long(i), v.end());
    return v[i] / 1000.0; // microseconds
}

} // namespace

int main(int argc, char** argv) {
    std::string streams_file, client_ip = "127.0.5.1", internal_ip = "127.0.3.1";
    double pps = 50, duration = 10, warmup = 2;
    size_t payload = 160;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto val = [&]() -> std::string {
            if (i + 1 >= argc) die("missing value for " + a);
            return argv[++i];
        };
        if (a == "--streams")
            streams_file = val();
        else if (a == "--client-ip")
            client_ip = val();
        else if (a == "--internal-ip")
            internal_ip = val();
        else if (a == "--pps")
            pps = std::stod(val());
        else if (a == "--duration")
            duration = std::stod(val());
        else if (a == "--warmup")
            warmup = std::stod(val());
        else if (a == "--payload")
            payload = std::stoul(val());
        else if (a == "-h" || a == "--help") {
            std::printf("see the comment at the top of tools/rtp-bench/rtp_bench.cpp\n");
            return 0;
        } else
            die("unknown option " + a);
    }
    if (streams_file.empty()) die("--streams FILE is required");
    if (payload < kStamp || payload > 1200) die("--payload must be 16..1200");
    if (srtp_init() != srtp_err_status_ok) die("srtp_init failed");

    std::vector<Stream> streams;
    std::ifstream in(streams_file);
    if (!in) die("cannot read " + streams_file);
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') continue;
        std::istringstream ls(line);
        unsigned cport = 0, rport = 0, iport = 0, isrtp = 0;
        std::string rip, txs, txk, rxs, rxk;
        if (!(ls >> cport >> rip >> rport >> txs >> txk >> rxs >> rxk >> iport >> isrtp))
            die("bad line: " + line);
        Stream s;
        s.client_fd = udp_bind(client_ip, uint16_t(cport));
        s.internal_fd = udp_bind(internal_ip, uint16_t(iport));
        s.relay.sin_family = AF_INET;
        s.relay.sin_port = htons(uint16_t(rport));
        if (inet_pton(AF_INET, rip.c_str(), &s.relay.sin_addr) != 1) die("bad relay IP " + rip);
        s.tx = make_session(txs, txk, true);
        s.rx = make_session(rxs, rxk, false);
        s.internal_srtp = isrtp != 0;
        // Fresh SSRC and sequence numbers on every run: a relay that terminates SRTP keeps a replay window
        // per SSRC, so a second run with the same keys must not look like a replay of the first.
        uint32_t rnd[2];
        if (getentropy(rnd, sizeof rnd) != 0) die("getentropy failed");
        s.ssrc = rnd[0];
        s.seq = uint16_t(rnd[1]);
        s.ts = rnd[1];
        streams.push_back(s);
    }
    if (streams.empty()) die("no streams in " + streams_file);

    int ep = epoll_create1(EPOLL_CLOEXEC);
    for (size_t i = 0; i < streams.size(); ++i) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = (uint64_t(i) << 1) | 0; // client socket
        epoll_ctl(ep, EPOLL_CTL_ADD, streams[i].client_fd, &ev);
        ev.data.u64 = (uint64_t(i) << 1) | 1; // internal socket
        epoll_ctl(ep, EPOLL_CTL_ADD, streams[i].internal_fd, &ev);
    }

    const uint64_t interval = uint64_t(1e9 / pps);
    const uint64_t t0 = now_ns();
    const uint64_t t_measure = t0 + uint64_t(warmup * 1e9);
    const uint64_t t_end = t_measure + uint64_t(duration * 1e9);
    const uint64_t t_drain = t_end + 500000000ull; // late echoes still count as received (not for rate)
    for (size_t i = 0; i < streams.size(); ++i)
        streams[i].next_send = t0 + interval * i / streams.size();

    Counters c;                // measured window only
    std::vector<uint32_t> rtt; // ns, measured window
    rtt.reserve(size_t(duration * pps * double(streams.size()) * 1.1) + 16);
    uint8_t buf[2048];
    epoll_event evs[256];
    uint64_t sent_measured_first = 0, sent_measured_last = 0;

    for (;;) {
        uint64_t now = now_ns();
        if (now >= t_drain) break;
        bool measuring = now >= t_measure && now < t_end;
        // send everything due
        uint64_t next_due = UINT64_MAX;
        if (now < t_end) {
            for (size_t i = 0; i < streams.size(); ++i) {
                Stream& s = streams[i];
                int guard = 0;
                while (s.next_send <= now && guard++ < 8) {
                    std::memset(buf, 0, kHeader + payload);
                    buf[0] = 0x80;
                    buf[1] = 0; // PCMU
                    uint16_t seq = htons(++s.seq);
                    std::memcpy(buf + 2, &seq, 2);
                    s.ts += 160;
                    uint32_t ts = htonl(s.ts), ssrc = htonl(s.ssrc);
                    std::memcpy(buf + 4, &ts, 4);
                    std::memcpy(buf + 8, &ssrc, 4);
                    uint64_t stamp = now_ns();
                    uint32_t idx = uint32_t(i), magic = kMagic;
                    std::memcpy(buf + kHeader, &stamp, 8);
                    std::memcpy(buf + kHeader + 8, &idx, 4);
                    std::memcpy(buf + kHeader + 12, &magic, 4);
                    int len = int(kHeader + payload);
                    if (srtp_protect(s.tx, buf, &len) != srtp_err_status_ok) die("srtp_protect failed");
                    ssize_t r = sendto(s.client_fd, buf, size_t(len), 0,
                                       reinterpret_cast<sockaddr*>(&s.relay), sizeof s.relay);
                    if (measuring) {
                        if (r < 0)
                            ++c.send_err;
                        else
                            ++c.sent;
                        if (!sent_measured_first) sent_measured_first = stamp;
                        sent_measured_last = stamp;
                    }
                    s.next_send += interval;
                }
                if (s.next_send <= now) s.next_send = now + interval; // we fell behind: skip, do not burst
                next_due = std::min(next_due, s.next_send);
            }
        }
        uint64_t wait_until = std::min(next_due, t_drain);
        now = now_ns();
        timespec to{};
        if (wait_until > now) {
            to.tv_sec = time_t((wait_until - now) / 1000000000ull);
            to.tv_nsec = long((wait_until - now) % 1000000000ull);
        }
        int n = epoll_pwait2(ep, evs, 256, &to, nullptr);
        if (n < 0 && errno != EINTR) die("epoll_pwait2: " + std::string(strerror(errno)));
        for (int k = 0; k < n; ++k) {
            size_t i = size_t(evs[k].data.u64 >> 1);
            bool internal = evs[k].data.u64 & 1;
            Stream& s = streams[i];
            for (int burst = 0; burst < 64; ++burst) {
                sockaddr_in from{};
                socklen_t fl = sizeof from;
                ssize_t r = recvfrom(internal ? s.internal_fd : s.client_fd, buf, sizeof buf, 0,
                                     reinterpret_cast<sockaddr*>(&from), &fl);
                if (r < 0) break;
                uint64_t t = now_ns();
                if (internal) {
                    // plain RTP from the relay (or the client's SRTP itself in direct mode): echo to the
                    // source
                    bool ok = r >= ssize_t(kHeader + kStamp) && (buf[0] & 0xC0) == 0x80;
                    if (ok && !s.internal_srtp) {
                        uint32_t idx = 0, magic = 0;
                        std::memcpy(&idx, buf + kHeader + 8, 4);
                        std::memcpy(&magic, buf + kHeader + 12, 4);
                        ok = idx == i && magic == kMagic;
                    }
                    bool count = t >= t_measure && t < t_drain;
                    if (count) {
                        ++c.at_internal;
                        if (!ok) ++c.bad_internal;
                    }
                    if (sendto(s.internal_fd, buf, size_t(r), 0, reinterpret_cast<sockaddr*>(&from), fl) <
                            0 &&
                        count)
                        ++c.echo_err;
                } else {
                    int len = int(r);
                    srtp_err_status_t st = srtp_unprotect(s.rx, buf, &len);
                    uint64_t stamp = 0;
                    uint32_t idx = 0, magic = 0;
                    if (st == srtp_err_status_ok && len >= int(kHeader + kStamp)) {
                        std::memcpy(&stamp, buf + kHeader, 8);
                        std::memcpy(&idx, buf + kHeader + 8, 4);
                        std::memcpy(&magic, buf + kHeader + 12, 4);
                    }
                    bool in_window = stamp >= t_measure && stamp < t_end;
                    if (st != srtp_err_status_ok) {
                        if (t >= t_measure) ++c.auth_fail;
                    } else if (idx != i || magic != kMagic) {
                        if (t >= t_measure) ++c.bad_client;
                    } else if (in_window) {
                        ++c.at_client;
                        rtt.push_back(uint32_t(std::min<uint64_t>(t - stamp, UINT32_MAX)));
                    }
                }
            }
        }
    }

    double window = double(sent_measured_last - sent_measured_first) / 1e9;
    if (window <= 0) window = duration;
    std::printf(
        "{\"streams\":%zu,\"pps_per_stream\":%.1f,\"duration_s\":%.3f,\"sent\":%llu,\"send_errors\":%llu,"
        "\"at_internal\":%llu,\"bad_internal\":%llu,\"echo_errors\":%llu,\"at_client\":%llu,"
        "\"client_auth_fail\":%llu,\"bad_client\":%llu,\"relayed\":%llu,\"offered_pps\":%.1f,"
        "\"relayed_pps\":%.1f,\"loss\":%.6f,"
        "\"rtt_us\":{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"max\":%.1f,\"n\":%zu}}\n",
        streams.size(), pps, window, (unsigned long long)c.sent, (unsigned long long)c.send_err,
        (unsigned long long)c.at_internal, (unsigned long long)c.bad_internal, (unsigned long long)c.echo_err,
        (unsigned long long)c.at_client, (unsigned long long)c.auth_fail, (unsigned long long)c.bad_client,
        (unsigned long long)(c.at_internal + c.at_client), double(c.sent) / window,
        double(c.at_internal + c.at_client) / window,
        c.sent ? 1.0 - double(c.at_client) / double(c.sent) : 0.0, pct(rtt, 50), pct(rtt, 90), pct(rtt, 99),
        pct(rtt, 100), rtt.size());
    for (auto& s : streams) {
        srtp_dealloc(s.tx);
        srtp_dealloc(s.rx);
        close(s.client_fd);
        close(s.internal_fd);
    }
    close(ep);
    return 0;
}
