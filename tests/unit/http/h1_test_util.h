#pragma once
// Drives an H1Parser the way a connection does: input in pieces of `step` bytes, every event collected.
#include "common/http/h1_parser.h"

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace edgepair::http::test {

struct Run {
    std::vector<RequestHead> requests;
    std::vector<ResponseHead> responses;
    std::vector<std::string> bodies; // one per completed message
    std::vector<bool> keep_alive;    // one per completed message
    size_t messages = 0;
    bool failed = false;
    ParseError error;
    size_t consumed = 0;
    size_t body_events = 0;
};

inline Run run(H1Parser& p, std::string_view in, size_t step = static_cast<size_t>(-1), bool eof = false) {
    Run r;
    std::string body;
    size_t off = 0;
    auto pump = [&](const char* data, size_t n) {
        while (true) {
            auto res = p.feed(data, n);
            data += res.consumed;
            n -= res.consumed;
            r.consumed += res.consumed;
            switch (res.status) {
            case H1Parser::Status::NeedMore:
                return true;
            case H1Parser::Status::HeadersComplete:
                if (p.kind() == H1Parser::Kind::Request)
                    r.requests.push_back(p.request());
                else
                    r.responses.push_back(p.response());
                break;
            case H1Parser::Status::Body:
                ++r.body_events;
                body.append(res.body);
                break;
            case H1Parser::Status::MessageComplete:
                ++r.messages;
                r.bodies.push_back(body);
                r.keep_alive.push_back(p.keep_alive());
                body.clear();
                break;
            case H1Parser::Status::Error:
                r.failed = true;
                r.error = p.error();
                return false;
            }
        }
    };
    do {
        size_t n = std::min(step, in.size() - off);
        if (!pump(in.data() + off, n)) return r;
        off += n;
    } while (off < in.size());
    if (eof) {
        auto res = p.finish();
        if (res.status == H1Parser::Status::MessageComplete) {
            ++r.messages;
            r.bodies.push_back(body);
            r.keep_alive.push_back(p.keep_alive());
        } else if (res.status == H1Parser::Status::Error) {
            r.failed = true;
            r.error = p.error();
        }
    }
    return r;
}

inline Run run_request(std::string_view in, size_t step = static_cast<size_t>(-1), H1Limits limits = {}) {
    H1Parser p(H1Parser::Kind::Request, limits);
    return run(p, in, step);
}

} // namespace edgepair::http::test
