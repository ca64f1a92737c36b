#pragma once
// A real redis-server child process on loopback for unit tests of what talks to Redis (cluster state), and
// bounded ways to run a loop until something happened. Header-only: included by the test folders that need
// it.
#include <arpa/inet.h>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <netinet/in.h>
#include <string>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "common/core/loop.h"

namespace edgepair::test {

constexpr const char* kRedis = "/usr/bin/redis-server";

// Below the kernel's ephemeral range (32768..), so that no outgoing connection of a test beside this one
// holds it between the check and redis-server's bind.
inline uint16_t free_port() {
    for (int attempt = 0; attempt < 50; ++attempt) {
        uint16_t port = uint16_t(20000 + (::getpid() * 7 + attempt * 131) % 12000);
        int t = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons(port);
        bool ok = ::bind(t, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
        ::close(t);
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

// A redis-server without persistence: a restart comes back empty, as the worst case does.
struct RedisServer {
    pid_t pid = -1;
    uint16_t port = 0;

    bool start(uint16_t p = 0) {
        if (::access(kRedis, X_OK) != 0) return false;
        port = p ? p : free_port();
        if (!port) return false;
        std::vector<std::string> args = {
            kRedis,         "--port", std::to_string(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no",     "--daemonize",        "no",     "--dir",     "/tmp"};
        pid = ::fork();
        if (pid == 0) {
            std::vector<char*> argv;
            for (auto& a : args)
                argv.push_back(a.data());
            argv.push_back(nullptr);
            int devnull = ::open("/dev/null", O_RDWR);
            ::dup2(devnull, 1);
            ::dup2(devnull, 2);
            ::execv(kRedis, argv.data());
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
    void stop() {
        if (pid > 0) {
            ::kill(pid, SIGKILL);
            int st = 0;
            ::waitpid(pid, &st, 0);
            pid = -1;
        }
    }
    ~RedisServer() {
        if (pid > 0) ::kill(pid, SIGCONT);
        stop();
    }
};

// Runs the loop until `done()` or the deadline; every wait is bounded. False on the deadline.
template <class F> bool run_until(core::Loop& loop, F done, uint64_t limit_ms = 8000) {
    bool timed_out = false;
    core::Timer guard(loop, [&] {
        timed_out = true;
        loop.stop();
    });
    guard.arm(limit_ms);
    core::Timer ticker(loop, [&] {
        if (done())
            loop.stop();
        else
            ticker.arm(5);
    });
    ticker.arm(0);
    loop.run();
    return !timed_out;
}

inline void run_for(core::Loop& loop, uint64_t ms) {
    run_until(
        loop, [] { return false; }, ms);
}

} // namespace edgepair::test
