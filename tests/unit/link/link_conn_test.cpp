#include <catch2/catch.hpp>

#include "common/link/link_conn.h"
#include "tests/unit/link/link_test_util.h"

using namespace edgepair;
using namespace edgepair::link;
using namespace edgepair::link::test;

namespace {

// edge-c side: byte streams echo; HTTP requests are answered at their end with "echo:<path>:<body>".
struct Echo : StreamHandler {
    std::string body, error; // error: failure.str(), empty for a clean close
    core::Failure failure;
    bool closed = false, ended = false;
    bool consume = true;
    size_t received = 0;
    LinkStream* stream = nullptr;
    void on_data(LinkStream& s, const char* d, size_t n) override {
        stream = &s;
        received += n;
        if (s.kind() == StreamKind::Http)
            body.append(d, n);
        else
            s.write(std::string_view(d, n));
        if (consume) s.consumed(n);
    }
    void on_end(LinkStream& s) override {
        ended = true;
        if (s.kind() == StreamKind::Http) {
            std::string resp = "echo:" + std::string(header_value(s.request_headers(), ":path")) + ":" + body;
            s.send_headers({{":status", "200"}, {"content-type", "text/plain"}});
            s.write(resp);
        }
        s.end();
    }
    void on_close(LinkStream&, const core::Failure& f) override {
        closed = true;
        failure = f;
        error = f ? f.str() : std::string();
    }
};

struct EchoServer {
    std::vector<std::unique_ptr<Echo>> handlers;
    std::vector<Headers> seen;
    bool consume = true;
    void attach(LinkPair& p) {
        p.on_stream = [this](LinkStream* s, const Headers& h) {
            seen.push_back(h);
            auto e = std::make_unique<Echo>();
            e->consume = consume;
            if (s->kind() != StreamKind::Http) s->send_headers({{":status", "200"}});
            s->set_handler(e.get());
            handlers.push_back(std::move(e));
        };
    }
};

} // namespace

TEST_CASE("link: authentication succeeds and control messages flow both ways", "[link]") {
    LinkPair p;
    p.start();
    REQUIRE(p.wait_up());
    CHECK(p.e->state() == LinkState::Up);
    CHECK(p.c->state() == LinkState::Up);
    CHECK(p.e->peer_node() == "expc1");
    CHECK(p.c->peer_node() == "expe1");
    CHECK(p.reg_c.counter_value("edgepair_link_up_total") == 1);
    REQUIRE(p.c->send_control(R"({"type":"snapshot","domains":["example.com"]})"));
    REQUIRE(p.e->send_control(R"({"type":"workers","count":2})"));
    REQUIRE(run_until(p.loop, [&] { return !p.e_msgs.empty() && !p.c_msgs.empty(); }));
    CHECK(p.e_msgs.at(0) == R"({"type":"snapshot","domains":["example.com"]})");
    // The hello that marks the link up is the library's, not the application's.
    REQUIRE(p.c_msgs.size() == 1);
    CHECK(p.c_msgs[0] == R"({"type":"workers","count":2})");
    auto js = p.e->status_json();
    CHECK(js.find(R"("state":"up")") != std::string::npos);
    CHECK(js.find(R"("peer_node":"expc1")") != std::string::npos);
    // Orderly close: both sides see on_close.
    p.c->close("test done");
    REQUIRE(run_until(p.loop, [&] { return p.e_closed && p.c_closed; }));
}

TEST_CASE("link: bad password is refused with a clear reason and counted", "[link]") {
    LinkPair p;
    p.co.password = "wrong";
    p.start();
    REQUIRE(run_until(p.loop, [&] { return p.e_closed && p.c_closed; }));
    CHECK_FALSE(p.e_up);
    CHECK_FALSE(p.c_up);
    CHECK(p.c->last_error().find("auth failed: bad credentials") != std::string::npos);
    CHECK(p.e->last_error().find("bad credentials for user \"zone\"") != std::string::npos);
    CHECK(p.reg_e.counter_value("edgepair_link_auth_failures_total", {{"reason", "bad_credentials"}}) == 1);
    CHECK(p.reg_c.counter_value("edgepair_link_refused_total") == 1);
}

TEST_CASE("link: no credential checker means every login is refused", "[link]") {
    LinkPair p;
    p.eo.check_credentials = nullptr;
    p.start();
    REQUIRE(run_until(p.loop, [&] { return p.e_closed && p.c_closed; }));
    CHECK_FALSE(p.c_up);
    CHECK(p.reg_e.counter_value("edgepair_link_auth_failures_total", {{"reason", "bad_credentials"}}) == 1);
}

TEST_CASE("link: HTTP stream with a body both ways", "[link]") {
    EchoServer srv; // outlives the link: handlers still attached hear "link closed" at teardown
    LinkPair p;
    srv.attach(p);
    p.start();
    REQUIRE(p.wait_up());
    Recorder r;
    auto* s = p.e->open_stream(StreamKind::Http,
                               {{":method", "POST"},
                                {":path", "/dXNlcg/http/cucm1.example.com/8443/cucm-uds/users"},
                                {":authority", "expe1.example.com:8443"},
                                {"Content-Type", "text/plain"},
                                {"Connection", "keep-alive"}},
                               &r);
    REQUIRE(s);
    CHECK(p.e->streams_open() == 1);
    s->write("hello ");
    s->write("world");
    s->end();
    REQUIRE(run_until(p.loop, [&] { return r.closed; }));
    CHECK(r.error.empty());
    CHECK(r.status == "200");
    CHECK(header_value(r.headers, "content-type") == "text/plain");
    CHECK(r.body == "echo:/dXNlcg/http/cucm1.example.com/8443/cucm-uds/users:hello world");
    REQUIRE(srv.seen.size() == 1);
    CHECK(header_value(srv.seen[0], "x-tunnel") == "http");
    CHECK(header_value(srv.seen[0], ":method") == "POST");
    CHECK(header_value(srv.seen[0], "content-type") == "text/plain");
    CHECK(header_value(srv.seen[0], "connection").empty()); // hop-by-hop stripped
    CHECK(p.e->streams_open() == 0);
    CHECK(p.reg_e.counter_value("edgepair_link_streams_total") == 1);
}

TEST_CASE("link: GET without a body, response without a body", "[link]") {
    LinkPair p;
    p.on_stream = [](LinkStream* s, const Headers&) {
        static struct Sink : StreamHandler {
            void on_data(LinkStream& s, const char*, size_t n) override { s.consumed(n); }
            void on_close(LinkStream&, const core::Failure&) override {}
        } sink;
        s->set_handler(&sink);
        s->send_headers({{":status", "204"}}, true);
    };
    p.start();
    REQUIRE(p.wait_up());
    Recorder r;
    REQUIRE(p.e->open_stream(StreamKind::Http, {{":method", "GET"}, {":path", "/x"}, {":authority", "a"}}, &r,
                             true));
    REQUIRE(run_until(p.loop, [&] { return r.closed; }));
    CHECK(r.status == "204");
    CHECK(r.ended);
    CHECK(r.error.empty());
}

TEST_CASE("link: byte stream echo with session headers", "[link]") {
    EchoServer srv; // outlives the link: handlers still attached hear "link closed" at teardown
    LinkPair p;
    srv.attach(p);
    p.start();
    REQUIRE(p.wait_up());
    Recorder r;
    auto* s = p.e->open_stream(StreamKind::Sip,
                               {{"x-client-addr", "198.51.100.7:50123"},
                                {"x-sni", "expe1.example.com"},
                                {"x-domain", "example.com"}},
                               &r);
    REQUIRE(s);
    std::string payload;
    for (int i = 0; i < 3000; ++i)
        payload += "REGISTER sip:example.com SIP/2.0\r\n";
    s->write(payload);
    s->end();
    REQUIRE(run_until(p.loop, [&] { return r.closed; }));
    CHECK(r.error.empty());
    CHECK(r.status == "200");
    CHECK(r.body == payload);
    REQUIRE(srv.seen.size() == 1);
    CHECK(header_value(srv.seen[0], "x-tunnel") == "sip");
    CHECK(header_value(srv.seen[0], ":path") == "/link/tunnel");
    CHECK(header_value(srv.seen[0], "x-client-addr") == "198.51.100.7:50123");
    CHECK(header_value(srv.seen[0], "x-sni") == "expe1.example.com");
    CHECK(header_value(srv.seen[0], "x-domain") == "example.com");
}

TEST_CASE("link: an unhandled stream is refused, the link stays up", "[link]") {
    LinkPair p; // no on_stream handler at all
    p.start();
    REQUIRE(p.wait_up());
    Recorder r;
    REQUIRE(p.e->open_stream(StreamKind::Xmpp, {}, &r));
    REQUIRE(run_until(p.loop, [&] { return r.closed; }));
    // The kind says it was refused (safe to retry) and by the peer edge; the text is only for logs.
    CHECK(r.failure.kind == core::FailureKind::Refused);
    CHECK(r.failure.side == core::Side::Edge);
    CHECK(r.error.find("REFUSED_STREAM") != std::string::npos);
    CHECK(p.e->up());
}

TEST_CASE("link: 1000 concurrent streams over one link all complete", "[link]") {
    EchoServer srv; // outlives the link: handlers still attached hear "link closed" at teardown
    LinkPair p;
    srv.attach(p);
    p.start();
    REQUIRE(p.wait_up());
    constexpr int N = 1000;
    std::vector<Recorder> rs(N);
    std::vector<LinkStream*> ss;
    for (int i = 0; i < N; ++i) {
        auto kind = i % 2 ? StreamKind::Http : StreamKind::Xmpp;
        auto* s = p.e->open_stream(
            kind, {{":method", "POST"}, {":path", "/s/" + std::to_string(i)}, {":authority", "a"}},
            &rs[size_t(i)]);
        REQUIRE(s);
        s->write("payload-" + std::to_string(i));
        ss.push_back(s);
    }
    CHECK(p.e->streams_open() == size_t(N));
    // End them only once all are open on edge-c too, so they really are concurrent.
    REQUIRE(run_until(p.loop, [&] { return p.c->streams_open() == size_t(N); }));
    for (auto* s : ss)
        s->end();
    REQUIRE(run_until(p.loop, [&] {
        for (auto& r : rs)
            if (!r.closed) return false;
        return true;
    }));
    for (int i = 0; i < N; ++i) {
        auto& r = rs[size_t(i)];
        INFO("stream " << i);
        REQUIRE(r.error.empty());
        if (i % 2)
            CHECK(r.body == "echo:/s/" + std::to_string(i) + ":payload-" + std::to_string(i));
        else
            CHECK(r.body == "payload-" + std::to_string(i));
    }
    CHECK(p.e->streams_open() == 0);
    CHECK(p.c->streams_open() == 0);
    CHECK(p.reg_c.counter_value("edgepair_link_streams_total") == uint64_t(N));
}

TEST_CASE("link: at the peer's stream limit a new stream is refused at once, not queued", "[link]") {
    // nghttp2 alone would queue the 5th request until a stream closed: a held SIP flow would wait unseen.
    EchoServer srv;
    std::vector<Recorder> rs(6); // outlive the link: a failed check leaves streams open at teardown
    LinkPair p;
    p.co.max_concurrent_streams = 5; // edge-c's link.max_streams; the control stream takes one
    srv.attach(p);
    p.start();
    REQUIRE(p.wait_up());
    std::vector<LinkStream*> ss;
    for (int i = 0; i < 4; ++i) {
        auto* s = p.e->open_stream(StreamKind::Sip, {}, &rs[size_t(i)]);
        REQUIRE(s);
        s->write("flow-" + std::to_string(i));
        ss.push_back(s);
    }
    REQUIRE(run_until(p.loop, [&] { return p.c->streams_open() == 4; }));
    CHECK(p.e->open_stream(StreamKind::Sip, {}, &rs[4]) == nullptr);
    CHECK(p.reg_e.counter_value("edgepair_link_streams_refused_total", {{"reason", "peer_limit"}}) == 1);
    CHECK(p.e->up());
    // One flow ends: its slot is free again, and the next flow gets through.
    ss[0]->end();
    REQUIRE(run_until(p.loop, [&] { return rs[0].closed; }));
    auto* s = p.e->open_stream(StreamKind::Sip, {}, &rs[5]);
    REQUIRE(s);
    s->write("flow-5");
    REQUIRE(run_until(p.loop, [&] { return rs[5].body == "flow-5"; }));
    CHECK(p.reg_c.counter_value("edgepair_link_streams_total") == 5);
    for (size_t i = 1; i < 4; ++i)
        ss[i]->end();
    s->end();
    REQUIRE(run_until(p.loop, [&] { return rs[1].closed && rs[2].closed && rs[3].closed && rs[5].closed; }));
}

TEST_CASE("link: when its stream IDs are used up the link ends, and says why", "[link]") {
    // 2^30 streams per HTTP/2 connection: without this the link would stay up refusing every new flow.
    EchoServer srv;
    Recorder last, none;
    LinkPair p;
    srv.attach(p);
    p.start();
    REQUIRE(p.wait_up());
    REQUIRE(p.e->jump_stream_ids(2147483647)); // the last odd ID
    auto* s = p.e->open_stream(StreamKind::Sip, {}, &last);
    REQUIRE(s);
    s->write("the last flow");
    REQUIRE(run_until(p.loop, [&] { return last.body == "the last flow"; }));
    CHECK(p.e->open_stream(StreamKind::Sip, {}, &none) == nullptr);
    REQUIRE(run_until(p.loop, [&] { return p.e_closed && p.c_closed && last.closed; }));
    CHECK(p.e_reason.find("stream IDs used up") != std::string::npos);
    // edge-c gets GOAWAY(NO_ERROR) with "stream IDs used up" as its debug text (logged), then the close.
    CHECK(last.failure);
    CHECK_FALSE(none.closed); // never opened, never called
}

TEST_CASE("link: a reader that never consumes stalls only its own stream", "[link]") {
    EchoServer srv; // outlives the link: handlers still attached hear "link closed" at teardown
    LinkPair p;
    srv.attach(p);
    p.start();
    REQUIRE(p.wait_up());
    // Stream A: edge-c's handler never consumes, like a session whose client stopped reading.
    srv.consume = false;
    Recorder ra;
    auto* a = p.e->open_stream(StreamKind::Xmpp, {}, &ra);
    REQUIRE(a);
    std::string mib(1024 * 1024, 'a');
    CHECK_FALSE(a->write(mib)); // above the high watermark: the caller is told to pause
    REQUIRE(run_until(
        p.loop, [&] { return srv.handlers.size() == 1 && srv.handlers[0]->received >= p.co.stream_window; }));
    srv.consume = true;
    // Stream B, opened while A is stuck: 4 MiB echoed through (more than the stream and connection
    // windows would allow if A's unconsumed bytes counted against the connection).
    Recorder rb;
    auto* b = p.e->open_stream(StreamKind::Sip, {}, &rb);
    REQUIRE(b);
    std::string big(4 * 1024 * 1024, 'b');
    size_t sent = 0;
    while (sent < big.size()) {
        size_t n = std::min<size_t>(64 * 1024, big.size() - sent);
        bool more = b->write(std::string_view(big).substr(sent, n));
        sent += n;
        if (!more)
            REQUIRE(run_until(p.loop, [&] { return b->pending_output() <= p.eo.stream_high_watermark / 2; }));
    }
    b->end();
    REQUIRE(run_until(
        p.loop, [&] { return rb.closed; }, 8000));
    CHECK(rb.error.empty());
    CHECK(rb.body.size() == big.size());
    // A is still stuck exactly at its window.
    CHECK(srv.handlers[0]->received == p.co.stream_window);
    CHECK(a->pending_output() == mib.size() - p.co.stream_window);
    CHECK_FALSE(ra.closed);
    // Once A's reader catches up, the rest flows.
    auto& h = *srv.handlers[0];
    h.consume = true;
    h.stream->consumed(h.received);
    a->end();
    REQUIRE(run_until(
        p.loop, [&] { return ra.closed; }, 8000));
    CHECK(ra.error.empty());
    CHECK(ra.body.size() == mib.size());
}

TEST_CASE("link: link loss ends every stream with a reason", "[link]") {
    EchoServer srv; // outlives the link: handlers still attached hear "link closed" at teardown
    LinkPair p;
    srv.attach(p);
    p.start();
    REQUIRE(p.wait_up());
    std::vector<Recorder> rs(10);
    for (auto& r : rs)
        REQUIRE(p.e->open_stream(StreamKind::Sip, {}, &r));
    REQUIRE(run_until(p.loop, [&] { return p.c->streams_open() == rs.size(); }));
    p.c->connection().abort("simulated network failure");
    REQUIRE(run_until(p.loop, [&] { return p.e_closed && p.c_closed; }));
    for (auto& r : rs) {
        CHECK(r.closed);
        CHECK(r.failure.kind == core::FailureKind::Lost);
        CHECK(r.failure.side == core::Side::Link);
        CHECK(r.error.rfind("link lost: ", 0) == 0);
    }
    for (auto& h : srv.handlers) {
        CHECK(h->closed);
        CHECK(h->error == "link lost: simulated network failure");
    }
    CHECK(p.e->state() == LinkState::Closed);
    CHECK(p.e->streams_open() == 0);
    CHECK(p.e->open_stream(StreamKind::Sip, {}, &rs[0]) == nullptr);
}

TEST_CASE("link: keep-alive detects a peer that stopped answering", "[link]") {
    EchoServer srv;
    LinkPair p;
    p.eo.ping_interval_ms = 50;
    p.eo.ping_timeout_ms = 150;
    p.co.ping_interval_ms = 60000; // the silent side must not ping on its own
    srv.attach(p);
    p.start();
    REQUIRE(p.wait_up());
    Recorder r;
    REQUIRE(p.e->open_stream(StreamKind::Xmpp, {}, &r));
    run_for(p.loop, 300); // pings are answered: still up
    CHECK(p.e->up());
    p.c->connection().pause_reading();
    REQUIRE(run_until(
        p.loop, [&] { return p.e_closed; }, 3000));
    CHECK(p.e->last_error().find("keep-alive timeout") != std::string::npos);
    CHECK(r.closed);
    CHECK(r.failure.kind == core::FailureKind::Lost);
    CHECK(r.error.find("link lost: keep-alive timeout") == 0);
}

TEST_CASE("link: graceful shutdown lets open streams finish", "[link]") {
    EchoServer srv; // outlives the link: handlers still attached hear "link closed" at teardown
    LinkPair p;
    srv.attach(p);
    p.start();
    REQUIRE(p.wait_up());
    Recorder r;
    auto* s = p.e->open_stream(StreamKind::Sip, {}, &r);
    REQUIRE(s);
    REQUIRE(run_until(p.loop, [&] { return p.c->streams_open() == 1; }));
    p.c->shutdown();
    REQUIRE(run_until(p.loop, [&] { return p.e->state() == LinkState::Closing; }));
    Recorder r2;
    CHECK(p.e->open_stream(StreamKind::Sip, {}, &r2) == nullptr);
    s->write("bye");
    s->end();
    REQUIRE(run_until(p.loop, [&] { return p.e_closed && p.c_closed; }));
    CHECK(r.error.empty());
    CHECK(r.body == "bye");
}
