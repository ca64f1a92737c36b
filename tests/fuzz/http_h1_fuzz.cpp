// libFuzzer target for H1Parser. Byte 0 picks the mode (request/response, HEAD, small limits), byte 1
// seeds the split points, the rest is the connection's byte stream.
//
// Invariants: feed() never claims more than it was given; NeedMore consumes everything; a Body view lies
// inside the input and ends where consumption ends; errors are sticky and carry a reason and status;
// every accepted head is made of tokens and clean field values; a Length body delivers exactly
// Content-Length bytes; and, most important for smuggling, the event sequence does not depend on how the
// stream was split into reads.
#include "common/http/h1_parser.h"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

using namespace edgepair::http;

namespace {

#define EP_CHECK(cond)                                                                                       \
    do {                                                                                                     \
        if (!(cond)) __builtin_trap();                                                                       \
    } while (0)

struct Mode {
    H1Parser::Kind kind;
    bool head;
    H1Limits limits;
};

bool visible(std::string_view s) {
    for (char c : s)
        if (static_cast<unsigned char>(c) < 0x21 || static_cast<unsigned char>(c) > 0x7e) return false;
    return !s.empty();
}

void check_head(const H1Parser& p, const H1Limits& limits) {
    const Headers& h = p.headers();
    EP_CHECK(h.size() <= limits.max_headers);
    for (const auto& f : h) {
        EP_CHECK(is_token(f.name));
        EP_CHECK(is_field_value(f.value));
    }
    if (p.kind() == H1Parser::Kind::Request) {
        EP_CHECK(is_token(p.request().method));
        EP_CHECK(visible(p.request().target));
        EP_CHECK(p.request().version_minor == 0 || p.request().version_minor == 1);
        if (p.request().version_minor == 1) EP_CHECK(h.count("host") == 1);
        // A re-serialised head must be accepted by the serialiser (the proxy writes heads it parsed).
        EP_CHECK(serialize_request_head(p.request()).ok());
    } else {
        EP_CHECK(p.response().status >= 100 && p.response().status <= 599);
        EP_CHECK(serialize_response_head(p.response()).ok());
    }
    // Never both framings.
    EP_CHECK(!(h.count("transfer-encoding") && h.count("content-length")));
    EP_CHECK(h.count("content-length") <= 1);
}

// Feeds `in` in pieces from `next_piece` and returns a split-independent transcript.
template <class NextPiece> std::string drive(const Mode& m, std::string_view in, NextPiece next_piece) {
    H1Parser p(m.kind, m.limits);
    if (m.head) p.set_request_method("HEAD");
    std::string t;
    std::string body;
    size_t off = 0;
    size_t total_consumed = 0;
    bool dead = false;
    auto event = [&](const char* data, size_t n) {
        int idle_events = 0;
        while (!dead) {
            auto r = p.feed(data, n);
            EP_CHECK(r.consumed <= n);
            total_consumed += r.consumed;
            switch (r.status) {
            case H1Parser::Status::NeedMore:
                EP_CHECK(r.consumed == n);
                return;
            case H1Parser::Status::HeadersComplete:
                check_head(p, m.limits);
                t += "H";
                t += m.kind == H1Parser::Kind::Request ? p.request().method + " " + p.request().target
                                                       : std::to_string(p.response().status);
                for (const auto& f : p.headers())
                    t += "|" + f.name + ":" + f.value;
                t += p.keep_alive() ? "+ka" : "-ka";
                t += "\n";
                break;
            case H1Parser::Status::Body:
                EP_CHECK(!r.body.empty());
                EP_CHECK(r.body.data() >= data);
                EP_CHECK(r.body.data() + r.body.size() == data + r.consumed);
                body.append(r.body);
                if (m.limits.max_body) EP_CHECK(p.body_bytes() <= *m.limits.max_body);
                break;
            case H1Parser::Status::MessageComplete:
                EP_CHECK(p.body_bytes() == body.size());
                if (p.body_mode() == H1Parser::BodyMode::Length) EP_CHECK(*p.content_length() == body.size());
                t += "M" + std::to_string(body.size()) + ":" + body + "\n";
                body.clear();
                break;
            case H1Parser::Status::Error: {
                EP_CHECK(p.failed());
                EP_CHECK(p.error().reason != ParseReason::None);
                int s = p.error().status;
                EP_CHECK(s == 400 || s == 413 || s == 414 || s == 431 || s == 501 || s == 505 || s == 502);
                EP_CHECK(!p.keep_alive());
                auto again = p.feed(data + r.consumed, n - r.consumed);
                EP_CHECK(again.status == H1Parser::Status::Error && again.consumed == 0);
                t += "E";
                t += reason_name(p.error().reason);
                t += "\n";
                dead = true;
                return;
            }
            }
            data += r.consumed;
            n -= r.consumed;
            // Zero-length progress is allowed only for the event that follows HeadersComplete/Body.
            idle_events = r.consumed == 0 ? idle_events + 1 : 0;
            EP_CHECK(idle_events < 3);
        }
    };
    while (off < in.size() && !dead) {
        size_t n = next_piece(in.size() - off);
        event(in.data() + off, n);
        off += n;
    }
    if (!dead) {
        EP_CHECK(total_consumed == in.size());
        auto r = p.finish();
        if (r.status == H1Parser::Status::MessageComplete)
            t += "F" + std::to_string(body.size()) + ":" + body + "\n";
        else if (r.status == H1Parser::Status::Error)
            t += std::string("X") + std::string(reason_name(p.error().reason));
    }
    return t;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 2) return 0;
    Mode m{(data[0] & 1) ? H1Parser::Kind::Response : H1Parser::Kind::Request, (data[0] & 2) != 0, {}};
    if (data[0] & 4) {
        m.limits.max_request_line = 64;
        m.limits.max_header_bytes = 256;
        m.limits.max_headers = 6;
        m.limits.max_body = 100;
        m.limits.max_chunk_line = 16;
        m.limits.max_trailer_bytes = 32;
    }
    uint32_t seed = data[1] * 2654435761u + 1;
    std::string_view in(reinterpret_cast<const char*>(data + 2), size - 2);

    std::string whole = drive(m, in, [](size_t left) { return left; });
    uint32_t s = seed;
    std::string split = drive(m, in, [&](size_t left) {
        s = s * 1103515245u + 12345u;
        size_t n = 1 + (s >> 16) % 17;
        return n < left ? n : left;
    });
    EP_CHECK(whole == split);
    std::string bytewise = drive(m, in, [](size_t) { return size_t{1}; });
    EP_CHECK(whole == bytewise);
    return 0;
}
