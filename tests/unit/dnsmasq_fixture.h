#pragma once
// A real dnsmasq child process on loopback for unit tests of what asks DNS (net::Resolver, the federation
// services' SRV look-ups). Header-only: included by the test folders that need it.
#include <arpa/inet.h>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <fstream>
#include <netinet/in.h>
#include <string>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace edgepair::test {

constexpr const char* kDnsmasq = "/usr/sbin/dnsmasq";

// A port free for both UDP and TCP on 127.0.0.1 (dnsmasq binds both).
inline uint16_t free_port() {
    for (int attempt = 0; attempt < 20; ++attempt) {
        int u = ::socket(AF_INET, SOCK_DGRAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        ::bind(u, reinterpret_cast<sockaddr*>(&a), sizeof a);
        ::getsockname(u, reinterpret_cast<sockaddr*>(&a), &len);
        int t = ::socket(AF_INET, SOCK_STREAM, 0);
        int one = 1;
        ::setsockopt(t, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        bool ok = ::bind(t, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
        uint16_t port = ntohs(a.sin_port);
        ::close(t);
        ::close(u);
        if (ok) return port;
    }
    return 0;
}

inline bool tcp_accepts(uint16_t port) {
    int t = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    bool ok = ::connect(t, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(t);
    return ok;
}

struct Dnsmasq {
    pid_t pid = -1;
    uint16_t port = 0;
    std::string dir;
    std::vector<std::string> extra; // more options, e.g. --local-ttl

    bool start() {
        if (::access(kDnsmasq, X_OK) != 0) return false;
        char tmpl[] = "/tmp/ep_dns_XXXXXX";
        if (!::mkdtemp(tmpl)) return false;
        dir = tmpl;
        port = free_port();
        if (!port) return false;
        std::vector<std::string> args = {
            kDnsmasq,
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--port=" + std::to_string(port),
            "--listen-address=127.0.0.1",
            "--bind-interfaces",
            "--user=root",
            "--group=root",
            "--pid-file=" + dir + "/dnsmasq.pid",
            "--log-facility=" + dir + "/dnsmasq.log",
            // Authoritative-style answers for example.com: unknown names are NXDOMAIN, not REFUSED.
            "--local=/example.com/",
            "--address=/cucm1.example.com/127.0.1.1",
            "--host-record=expe1.example.com,127.0.0.1",
            "--host-record=dual.example.com,127.0.1.9,::1",
            "--srv-host=_collab-edge._tls.example.com,expe1.example.com,8443,10,5",
            "--srv-host=_collab-edge._tls.example.com,expe2.example.com,8443,5,10",
            "--srv-host=_collab-edge._tls.example.com,expe3.example.com,8443,10,50",
            "--srv-host=_cisco-uds._tcp.example.com,cucm1.example.com,8443,1,0",
        };
        args.insert(args.end(), extra.begin(), extra.end());
        pid = ::fork();
        if (pid == 0) {
            std::vector<char*> argv;
            for (auto& a : args)
                argv.push_back(a.data());
            argv.push_back(nullptr);
            int devnull = ::open("/dev/null", O_RDWR);
            ::dup2(devnull, 1);
            ::dup2(devnull, 2);
            ::execv(kDnsmasq, argv.data());
            ::_exit(127);
        }
        if (pid < 0) return false;
        for (int i = 0; i < 100; ++i) {
            if (tcp_accepts(port)) return true;
            int st = 0;
            if (::waitpid(pid, &st, WNOHANG) == pid) {
                pid = -1;
                return false;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        return false;
    }

    ~Dnsmasq() {
        if (pid > 0) {
            ::kill(pid, SIGTERM);
            int st = 0;
            ::waitpid(pid, &st, 0);
        }
        if (!dir.empty()) {
            std::string cmd = "rm -rf '" + dir + "'";
            int r = std::system(cmd.c_str());
            (void)r;
        }
    }
};

// How many queries of `type` (A, SRV, ...) for `name` dnsmasq logged (--log-queries).
inline size_t queries_logged(const Dnsmasq& dns, const std::string& name, const std::string& type = "A") {
    std::ifstream in(dns.dir + "/dnsmasq.log");
    std::string line;
    size_t n = 0;
    while (std::getline(in, line))
        if (line.find("query[" + type + "] " + name + " ") != std::string::npos) ++n;
    return n;
}

} // namespace edgepair::test
