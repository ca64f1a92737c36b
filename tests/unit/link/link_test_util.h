#pragma once
// Loopback harness for link tests: one core::Loop, a listener on 127.0.0.1:0 whose accepted connection
// becomes the Opener (edge-e) and a dialled connection that becomes the Acceptor (edge-c).
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "common/core/loop.h"
#include "common/link/link_conn.h"
#include "common/net/connection.h"
#include "common/net/listener.h"
#include "common/net/tls_context.h"
#include "common/obs/metrics.h"

namespace edgepair::link::test {

// Runs the loop until pred() holds or ms elapse; never hangs.
inline bool run_until(core::Loop& loop, const std::function<bool()>& pred, uint64_t ms = 5000) {
    bool ok = false;
    auto t0 = std::chrono::steady_clock::now();
    core::Timer* self = nullptr;
    core::Timer poll(loop, [&] {
        if (pred()) {
            ok = true;
            loop.stop();
            return;
        }
        auto el =
            std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
        if (uint64_t(el.count()) >= ms) {
            loop.stop();
            return;
        }
        self->arm(1);
    });
    self = &poll;
    if (pred()) return true;
    poll.arm(0);
    loop.run();
    return ok;
}

inline void run_for(core::Loop& loop, uint64_t ms) {
    run_until(
        loop, [] { return false; }, ms);
}

struct LinkPair {
    core::Loop loop;
    obs::Registry reg_e, reg_c;
    LinkOptions eo, co;
    std::shared_ptr<net::TlsServerContext> sctx;
    std::shared_ptr<net::TlsClientContext> cctx;
    std::string dial_name = "127.0.0.1";
    std::unique_ptr<net::Listener> lis;
    std::unique_ptr<LinkConn> e, c;
    bool e_up = false, c_up = false, e_closed = false, c_closed = false;
    std::string e_reason, c_reason;
    std::vector<std::string> e_msgs, c_msgs;
    std::function<void(LinkStream*, const Headers&)> on_stream;

    LinkPair() {
        eo.role = Role::Opener;
        eo.node_name = "expe1";
        eo.check_credentials = [](std::string_view u, std::string_view p) {
            return u == "zone" && p == "s3cret";
        };
        co.role = Role::Acceptor;
        co.node_name = "expc1";
        co.peer_name = "expe1.example.com";
        co.username = "zone";
        co.password = "s3cret";
    }

    void start() {
        auto addr = net::numeric_addr("127.0.0.1", 0);
        auto l = net::Listener::open(loop, *addr, false, [this](int fd, const net::SockAddr&) {
            SSL* ssl = sctx ? sctx->new_ssl() : nullptr;
            auto conn = std::make_unique<net::Connection>(loop, fd, ssl, true);
            e = std::make_unique<LinkConn>(loop, std::move(conn), eo, reg_e);
            LinkCallbacks cb;
            cb.on_up = [this] { e_up = true; };
            cb.on_close = [this](std::string_view r) {
                e_closed = true;
                e_reason = std::string(r);
            };
            cb.on_control_message = [this](std::string_view m) { e_msgs.emplace_back(m); };
            e->set_callbacks(std::move(cb));
            e->start();
        });
        lis = std::move(*l);
        std::string err;
        auto conn =
            net::Connection::connect(loop, lis->address(), cctx ? cctx->new_ssl(dial_name) : nullptr, &err);
        c = std::make_unique<LinkConn>(loop, std::move(conn), co, reg_c);
        LinkCallbacks cb;
        cb.on_up = [this] { c_up = true; };
        cb.on_close = [this](std::string_view r) {
            c_closed = true;
            c_reason = std::string(r);
        };
        cb.on_control_message = [this](std::string_view m) { c_msgs.emplace_back(m); };
        cb.on_stream = [this](LinkStream* s, const Headers& h) {
            if (on_stream) on_stream(s, h);
        };
        c->set_callbacks(std::move(cb));
        c->start();
    }

    bool wait_up(uint64_t ms = 5000) {
        return run_until(
            loop, [&] { return e_up && c_up; }, ms);
    }
};

// Opener-side recorder: consumes everything at once.
struct Recorder : StreamHandler {
    std::string status, body, error; // error: failure.str(), empty for a clean close
    core::Failure failure;
    Headers headers;
    bool ended = false, closed = false;
    size_t writable_calls = 0;
    bool consume = true;
    void on_headers(LinkStream&, const Headers& h) override {
        headers = h;
        status = std::string(header_value(h, ":status"));
    }
    void on_data(LinkStream& s, const char* d, size_t n) override {
        body.append(d, n);
        if (consume) s.consumed(n);
    }
    void on_end(LinkStream&) override { ended = true; }
    void on_writable(LinkStream&) override { ++writable_calls; }
    void on_close(LinkStream&, const core::Failure& f) override {
        closed = true;
        failure = f;
        error = f ? f.str() : std::string();
    }
};

} // namespace edgepair::link::test
