// net::Connection's reads over plain TCP on loopback: a read that returns less than it asked for ends the
// read loop (no read that only finds EAGAIN), so these check that nothing is lost by it: bytes that arrive
// later, bytes that arrived while reading was paused, and a FIN that arrived together with the last bytes
// (which raises no edge of its own).
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <functional>
#include <memory>
#include <netinet/in.h>
#include <string>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

#include "common/core/loop.h"
#include "common/net/connection.h"

using namespace edgepair;

namespace {

// A connected TCP pair on 127.0.0.1: `client` is a plain blocking socket, `server` the accepted one.
struct TcpPair {
    int client = -1, server = -1;
    TcpPair() {
        int l = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        REQUIRE(::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        REQUIRE(::listen(l, 1) == 0);
        REQUIRE(::getsockname(l, reinterpret_cast<sockaddr*>(&a), &len) == 0);
        client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(::connect(client, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        server = ::accept4(l, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        REQUIRE(server >= 0);
        ::close(l);
    }
    ~TcpPair() {
        if (client >= 0) ::close(client);
    }
    void send(const std::string& s) const {
        CHECK(::send(client, s.data(), s.size(), MSG_NOSIGNAL) == ssize_t(s.size()));
    }
};

struct Seen {
    std::string data;
    std::string closed; // on_close's reason; empty while open
};

// after_data: what the test does on each read, once the bytes are in `seen`.
std::unique_ptr<net::Connection> serve(core::Loop& loop, int fd, Seen& seen,
                                       std::function<void()> after_data = {}) {
    auto c = std::make_unique<net::Connection>(loop, fd, nullptr, true);
    c->set_callbacks({.on_ready = {},
                      .on_data =
                          [&seen, after_data = std::move(after_data)](const char* d, size_t n) {
                              seen.data.append(d, n);
                              if (after_data) after_data();
                          },
                      .on_close =
                          [&seen, &loop](std::string_view why) {
                              seen.closed = std::string(why);
                              loop.stop();
                          },
                      .on_drained = {}});
    return c;
}

// Runs the loop until on_close stops it, or for at most 5 s.
void run_bounded(core::Loop& loop) {
    core::Timer deadline(loop, [&loop] { loop.stop(); });
    deadline.arm(5000);
    loop.run();
}

} // namespace

TEST_CASE("connection: bytes and the peer's FIN that arrive in one event both reach the owner") {
    core::Loop loop;
    TcpPair p;
    Seen seen;
    auto c = serve(loop, p.server, seen);
    c->start(); // finds the socket empty
    // Both land before the loop collects the event: one edge, a short read, and the EOF behind it.
    p.send("REGISTER");
    ::shutdown(p.client, SHUT_WR);
    run_bounded(loop);
    CHECK(seen.data == "REGISTER");
    CHECK(seen.closed == "closed by peer");
}

TEST_CASE("connection: bytes that arrive after a short read raise their own event") {
    core::Loop loop;
    TcpPair p;
    Seen seen;
    auto c = serve(loop, p.server, seen);
    c->start();
    p.send("one");
    core::Timer later(loop, [&] {
        CHECK(seen.data == "one"); // CHECK, not REQUIRE: no exception through libevent's C frames
        p.send("two");
        ::shutdown(p.client, SHUT_WR);
    });
    later.arm(100);
    run_bounded(loop);
    CHECK(seen.data == "onetwo");
    CHECK(seen.closed == "closed by peer");
}

TEST_CASE("connection: bytes that arrive while reading is paused are read on resume") {
    core::Loop loop;
    TcpPair p;
    Seen seen;
    std::unique_ptr<net::Connection> c;
    c = serve(loop, p.server, seen, [&] { c->pause_reading(); });
    c->start();
    p.send("one"); // a short read, then paused
    core::Timer send_more(loop, [&] { p.send("two"); });
    send_more.arm(100); // its edge comes while paused and is not acted on
    core::Timer resume(loop, [&] {
        CHECK(seen.data == "one");
        c->resume_reading(); // must read "two" although the last read was short
    });
    resume.arm(300);
    core::Timer stop(loop, [&] { loop.stop(); });
    stop.arm(600);
    loop.run();
    CHECK(seen.data == "onetwo");
    CHECK(seen.closed.empty());
}

// Reads what the blocking client socket receives until its EOF (or 5 s).
static std::string read_to_eof(int fd) {
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string got;
    char buf[4096];
    for (;;) {
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        got.append(buf, size_t(n));
    }
    return got;
}

TEST_CASE("connection: with on_eof, the peer's half-close leaves the connection open for the answer") {
    core::Loop loop;
    TcpPair p;
    Seen seen;
    auto c = serve(loop, p.server, seen);
    int eofs = 0;
    c->set_on_eof([&] {
        ++eofs;
        CHECK(seen.data == "GET / HTTP/1.1\r\n\r\n"); // every byte before the EOF came first
        CHECK(seen.closed.empty());
        // The answer is queued after the EOF and still goes out, then the connection closes.
        c->write("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
        c->close();
    });
    c->start();
    p.send("GET / HTTP/1.1\r\n\r\n");
    ::shutdown(p.client, SHUT_WR);
    run_bounded(loop);
    CHECK(eofs == 1);
    CHECK(seen.closed == "closed");
    CHECK(read_to_eof(p.client) == "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
}

TEST_CASE("connection: an EOF while closing does not cut the output still being flushed") {
    core::Loop loop;
    TcpPair p;
    Seen seen;
    const std::string big(4 << 20, 'x'); // more than the socket buffers take: the close waits on the reader
    std::unique_ptr<net::Connection> c;
    c = serve(loop, p.server, seen, [&] {
        c->write(big);
        c->close();
    });
    c->set_on_eof([&] { FAIL_CHECK("on_eof runs only while the connection is open"); });
    c->start();
    p.send("bye");
    ::shutdown(p.client, SHUT_WR); // the EOF is in while most of the answer still waits to be sent
    std::string got;
    std::thread reader([&] {
        ::usleep(200 * 1000); // let the server find the EOF first
        got = read_to_eof(p.client);
    });
    run_bounded(loop);
    reader.join();
    CHECK(seen.data == "bye");
    CHECK(seen.closed == "closed");
    CHECK(got.size() == big.size());
}
