#include <catch2/catch.hpp>

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "common/http/h2_glue.h"

using namespace edgepair;
namespace h2 = edgepair::http::h2;

TEST_CASE("h2 glue: to_nv points at the fields and marks only the named secrets never-indexed",
          "[http][h2]") {
    h2::Fields f = {{":status", "200"}, {"x-link-password", "s3cret"}, {"authorization", "Basic x"}};
    constexpr std::array<std::string_view, 1> secrets = {"x-link-password"};
    auto nv = h2::to_nv(f, secrets);
    REQUIRE(nv.size() == 3);
    CHECK(h2::view(nv[0].name, nv[0].namelen) == ":status");
    CHECK(h2::view(nv[0].value, nv[0].valuelen) == "200");
    CHECK(nv[0].flags == NGHTTP2_NV_FLAG_NONE);
    CHECK(nv[1].flags == NGHTTP2_NV_FLAG_NO_INDEX);
    CHECK(nv[2].flags == NGHTTP2_NV_FLAG_NONE);                              // not named: indexed as usual
    CHECK(reinterpret_cast<const char*>(nv[1].value) == f[1].second.data()); // a view, not a copy
}

TEST_CASE("h2 glue: OutBuffer hands out bytes in order and compacts", "[http][h2]") {
    h2::OutBuffer b;
    CHECK(b.empty());
    b.append("hello ");
    b.append("world");
    uint8_t dst[8];
    CHECK(b.take(dst, 5) == 5);
    CHECK(std::string(reinterpret_cast<char*>(dst), 5) == "hello");
    CHECK(b.size() == 6);
    CHECK(b.take(dst, 8) == 6);
    CHECK(std::string(reinterpret_cast<char*>(dst), 6) == " world");
    CHECK(b.empty());

    // Large: the framed front is dropped as it goes, the rest stays in order.
    std::string big;
    for (int i = 0; i < 200000; ++i)
        big += char('a' + i % 26);
    b.assign(big);
    std::string got;
    std::vector<uint8_t> chunk(16384);
    while (!b.empty()) {
        size_t n = b.take(chunk.data(), chunk.size());
        got.append(reinterpret_cast<char*>(chunk.data()), n);
        b.append(""); // appending nothing changes nothing
    }
    CHECK(got == big);
}

TEST_CASE("h2 glue: read_body defers when empty, ends only once drained", "[http][h2]") {
    h2::OutBuffer b;
    bool deferred = false;
    uint32_t flags = 0;
    uint8_t dst[4];
    CHECK(h2::read_body(b, false, deferred, dst, sizeof dst, &flags) == NGHTTP2_ERR_DEFERRED);
    CHECK(deferred);
    CHECK(flags == 0);
    deferred = false;
    b.append("abcdef");
    CHECK(h2::read_body(b, true, deferred, dst, sizeof dst, &flags) == 4);
    CHECK(flags == 0); // two bytes left: no END_STREAM yet
    CHECK(h2::read_body(b, true, deferred, dst, sizeof dst, &flags) == 2);
    CHECK((flags & NGHTTP2_DATA_FLAG_EOF));
    flags = 0;
    CHECK(h2::read_body(b, true, deferred, dst, sizeof dst, &flags) == 0);
    CHECK((flags & NGHTTP2_DATA_FLAG_EOF));
    CHECK_FALSE(deferred);
}

TEST_CASE("h2 glue: reset codes map to failure kinds, frame errors to labels", "[http][h2]") {
    using core::FailureKind;
    CHECK(h2::reset_kind(NGHTTP2_NO_ERROR) == FailureKind::None);
    CHECK(h2::reset_kind(NGHTTP2_REFUSED_STREAM) == FailureKind::Refused);
    CHECK(h2::reset_kind(NGHTTP2_CANCEL) == FailureKind::Cancelled);
    CHECK(h2::reset_kind(NGHTTP2_PROTOCOL_ERROR) == FailureKind::Protocol);
    CHECK(h2::reset_kind(NGHTTP2_ENHANCE_YOUR_CALM) == FailureKind::Limit);
    CHECK(h2::reset_kind(NGHTTP2_INTERNAL_ERROR) == FailureKind::Reset);
    CHECK(h2::reset_kind(0xabcd) == FailureKind::Reset);
    CHECK(h2::error_name(NGHTTP2_REFUSED_STREAM) == "REFUSED_STREAM");
    CHECK(h2::invalid_frame_label(NGHTTP2_ERR_HTTP_HEADER) == "h2_bad_header");
    CHECK(h2::invalid_frame_label(NGHTTP2_ERR_PROTO) == "h2_protocol");
}

namespace {

// Both ends of one HTTP/2 connection in memory, set up through the glue as edge-e and the link do.
struct Stream {
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    bool ended = false;
};

struct End {
    nghttp2_session* s = nullptr;
    h2::StreamTable<Stream> streams;
    std::vector<uint32_t> closed_codes;
    ~End() { h2::close_session(s); }

    static End* self(void* ud) { return static_cast<End*>(ud); }
    static int on_begin_headers(nghttp2_session* s, const nghttp2_frame* f, void* ud) {
        if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST)
            self(ud)->streams.attach(s, f->hd.stream_id, std::make_unique<Stream>());
        return 0;
    }
    static int on_header(nghttp2_session*, const nghttp2_frame* f, const uint8_t* n, size_t nl,
                         const uint8_t* v, size_t vl, uint8_t, void* ud) {
        if (auto* st = self(ud)->streams.find(f->hd.stream_id))
            st->headers.emplace_back(h2::view(n, nl), h2::view(v, vl));
        return 0;
    }
    static int on_data_chunk(nghttp2_session* s, uint8_t, int32_t id, const uint8_t* d, size_t n, void* ud) {
        // Flow control is the application's: both windows reopen only here.
        nghttp2_session_consume(s, id, n);
        if (auto* st = self(ud)->streams.find(id)) st->body.append(h2::view(d, n));
        return 0;
    }
    static int on_frame_recv(nghttp2_session*, const nghttp2_frame* f, void* ud) {
        if ((f->hd.flags & NGHTTP2_FLAG_END_STREAM) && f->hd.type != NGHTTP2_PUSH_PROMISE)
            if (auto* st = self(ud)->streams.find(f->hd.stream_id)) st->ended = true;
        return 0;
    }
    static int on_stream_close(nghttp2_session*, int32_t id, uint32_t code, void* ud) {
        self(ud)->closed_codes.push_back(code);
        (void)id;
        return 0;
    }
    int open(bool server) {
        h2::SessionSetup setup;
        setup.server = server;
        setup.callbacks.on_begin_headers = &End::on_begin_headers;
        setup.callbacks.on_header = &End::on_header;
        setup.callbacks.on_data_chunk = &End::on_data_chunk;
        setup.callbacks.on_frame_recv = &End::on_frame_recv;
        setup.callbacks.on_stream_close = &End::on_stream_close;
        setup.reset_limit = h2::kNoResetLimit;
        setup.settings = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 10}};
        setup.connection_window = 1 << 20;
        return h2::open_session(&s, setup, this);
    }
};

// Moves every pending frame from one end to the other until both are quiet.
void pump(End& a, End& b) {
    for (int round = 0; round < 50; ++round) {
        bool moved = false;
        for (auto [from, to] : {std::pair{&a, &b}, std::pair{&b, &a}}) {
            const uint8_t* data = nullptr;
            ssize_t n;
            while ((n = nghttp2_session_mem_send(from->s, &data)) > 0) {
                moved = true;
                REQUIRE(h2::receive(to->s, reinterpret_cast<const char*>(data), size_t(n)) == n);
            }
            REQUIRE(n == 0);
        }
        if (!moved) return;
    }
}

struct Source {
    h2::OutBuffer out;
    bool eof = false, deferred = false;
    static ssize_t read(nghttp2_session*, int32_t, uint8_t* buf, size_t len, uint32_t* flags,
                        nghttp2_data_source* src, void*) {
        auto* s = static_cast<Source*>(src->ptr);
        return h2::read_body(s->out, s->eof, s->deferred, buf, len, flags);
    }
};

} // namespace

TEST_CASE("h2 glue: a request and a deferred body cross a client/server pair made by open_session",
          "[http][h2]") {
    End client, server;
    REQUIRE(client.open(false) == 0);
    REQUIRE(server.open(true) == 0);

    Source body;
    h2::Fields req = {{":method", "POST"},
                      {":scheme", "https"},
                      {":authority", "a"},
                      {":path", "/x"},
                      {"authorization", "secret"}};
    constexpr std::array<std::string_view, 1> secrets = {"authorization"};
    int32_t id = h2::submit_request(client.s, req, {&Source::read, &body}, nullptr, secrets);
    REQUIRE(id == 1);
    pump(client, server);
    // The SETTINGS open_session queued went out and were acknowledged.
    CHECK(nghttp2_session_get_local_settings(server.s, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS) == 10);
    CHECK(nghttp2_session_get_remote_settings(client.s, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS) == 10);
    auto* st = server.streams.find(id);
    REQUIRE(st);
    CHECK(st->headers.size() == 5);
    CHECK(st->body.empty());
    CHECK(body.deferred); // nothing to send yet: the provider waits

    body.out.append("part one, ");
    h2::resume(client.s, id, body.deferred);
    CHECK_FALSE(body.deferred);
    pump(client, server);
    CHECK(st->body == "part one, ");
    CHECK_FALSE(st->ended);

    body.out.append("part two");
    body.eof = true;
    h2::resume(client.s, id, body.deferred);
    pump(client, server);
    CHECK(st->body == "part one, part two");
    CHECK(st->ended);

    // The answer without a body ends the stream on its HEADERS; the stream leaves the table with take().
    REQUIRE(h2::submit_response(server.s, id, {{":status", "204"}}, {}) == 0);
    pump(client, server);
    REQUIRE(server.closed_codes.size() == 1);
    CHECK(server.closed_codes[0] == NGHTTP2_NO_ERROR);
    auto taken = server.streams.take(id);
    CHECK(taken.get() == st);
    CHECK(server.streams.find(id) == nullptr);
    CHECK(server.streams.take(id) == nullptr);

    // GOAWAY with debug data, as the link sends it.
    REQUIRE(h2::submit_goaway(server.s, NGHTTP2_NO_ERROR, "shutting down") == 0);
    pump(client, server);
    CHECK_FALSE(nghttp2_session_want_write(server.s));
}
