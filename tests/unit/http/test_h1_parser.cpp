#include "h1_test_util.h"

#include <catch2/catch.hpp>

#include "common/http/h1_parser.h"

using namespace edgepair::http;
using edgepair::http::test::run;
using edgepair::http::test::run_request;
using Status = H1Parser::Status;

TEST_CASE("h1: simple GET with ordered headers and case-insensitive lookup", "[http][h1]") {
    auto r = run_request("GET /cucm-uds/version?x=1 HTTP/1.1\r\nHost: cucm1.example.com:8443\r\n"
                         "Accept: */*\r\nX-Dup: a\r\nx-dup: b\r\n\r\n");
    REQUIRE_FALSE(r.failed);
    REQUIRE(r.messages == 1);
    REQUIRE(r.requests.size() == 1);
    const auto& h = r.requests[0];
    CHECK(h.method == "GET");
    CHECK(h.target == "/cucm-uds/version?x=1");
    CHECK(h.version_minor == 1);
    REQUIRE(h.headers.size() == 4);
    CHECK(h.headers.fields()[0].name == "Host");
    CHECK(h.headers.fields()[3].name == "x-dup");
    REQUIRE(h.headers.find("HOST") != nullptr);
    CHECK(*h.headers.find("host") == "cucm1.example.com:8443");
    CHECK(h.headers.count("X-DUP") == 2);
    auto all = h.headers.find_all("x-dup");
    REQUIRE(all.size() == 2);
    CHECK(all[0] == "a");
    CHECK(all[1] == "b");
    CHECK(r.keep_alive[0]);
    CHECK(r.bodies[0].empty());
}

TEST_CASE("h1: header values lose surrounding OWS but keep inner spaces", "[http][h1]") {
    auto r = run_request("GET / HTTP/1.1\r\nHost: a\r\nX-A:   v  w \t\r\nX-B:\r\n\r\n");
    REQUIRE_FALSE(r.failed);
    CHECK(*r.requests[0].headers.find("x-a") == "v  w");
    CHECK(*r.requests[0].headers.find("x-b") == "");
}

TEST_CASE("h1: Content-Length body is streamed as views into the input", "[http][h1]") {
    std::string in = "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world";
    H1Parser p(H1Parser::Kind::Request);
    auto r1 = p.feed(in);
    REQUIRE(r1.status == Status::HeadersComplete);
    CHECK(p.body_mode() == H1Parser::BodyMode::Length);
    REQUIRE(p.content_length());
    CHECK(*p.content_length() == 11);
    auto r2 = p.feed(in.data() + r1.consumed, in.size() - r1.consumed);
    REQUIRE(r2.status == Status::Body);
    CHECK(r2.body == "hello world");
    CHECK(r2.body.data() == in.data() + r1.consumed); // zero copy
    auto r3 = p.feed(in.data() + r1.consumed + r2.consumed, 0);
    CHECK(r3.status == Status::MessageComplete);
    CHECK(p.body_bytes() == 11);
}

TEST_CASE("h1: chunked body with extensions and trailers", "[http][h1]") {
    std::string in = "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "5;name=value;q=\"a \\\" b\"\r\nhello\r\n"
                     "6\r\n world\r\n"
                     "0\r\nX-Trailer: t\r\nContent-Length: 99\r\n\r\n";
    auto r = run_request(in);
    REQUIRE_FALSE(r.failed);
    REQUIRE(r.messages == 1);
    CHECK(r.bodies[0] == "hello world");
    CHECK(r.consumed == in.size());
    // Trailers are dropped, never merged into the head.
    CHECK(r.requests[0].headers.find("x-trailer") == nullptr);
}

TEST_CASE("h1: every split point gives the same result", "[http][h1]") {
    std::string in = "POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "3\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n"
                     "GET /b HTTP/1.1\r\nHost: a\r\n\r\n"
                     "PUT /c HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nxyz";
    auto whole = run_request(in);
    REQUIRE_FALSE(whole.failed);
    REQUIRE(whole.messages == 3);
    for (size_t step = 1; step < in.size(); ++step) {
        auto r = run_request(in, step);
        INFO("step " << step);
        REQUIRE_FALSE(r.failed);
        REQUIRE(r.messages == 3);
        CHECK(r.bodies == whole.bodies);
        CHECK(r.requests[1].target == "/b");
        CHECK(r.consumed == in.size());
    }
    CHECK(whole.bodies[0] == "abc0123456789abcdef");
    CHECK(whole.bodies[2] == "xyz");
}

TEST_CASE("h1: pipelining stops at the message boundary", "[http][h1]") {
    std::string first = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n";
    std::string in = first + "GET /2 HTTP/1.1\r\nHost: a\r\n\r\n";
    H1Parser p(H1Parser::Kind::Request);
    auto a = p.feed(in);
    REQUIRE(a.status == Status::HeadersComplete);
    CHECK(a.consumed == first.size());
    auto b = p.feed(in.data() + a.consumed, in.size() - a.consumed);
    REQUIRE(b.status == Status::MessageComplete);
    CHECK(b.consumed == 0);
    CHECK(p.request().target == "/1"); // still readable after completion
    // The caller may pause here; the second request is untouched until fed.
    auto c = p.feed(in.data() + a.consumed, in.size() - a.consumed);
    REQUIRE(c.status == Status::HeadersComplete);
    CHECK(p.request().target == "/2");
}

TEST_CASE("h1: keep-alive decisions", "[http][h1]") {
    CHECK(run_request("GET / HTTP/1.1\r\nHost: a\r\n\r\n").keep_alive.at(0));
    CHECK_FALSE(run_request("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").keep_alive.at(0));
    CHECK_FALSE(run_request("GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, Close\r\n\r\n").keep_alive.at(0));
    CHECK_FALSE(run_request("GET / HTTP/1.0\r\n\r\n").keep_alive.at(0));
    CHECK(run_request("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keep_alive.at(0));
}

TEST_CASE("h1: bytes after a closing message are refused", "[http][h1]") {
    auto r = run_request(
        "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n");
    REQUIRE(r.messages == 1);
    REQUIRE(r.failed);
    CHECK(r.error.reason == ParseReason::DataAfterClose);
}

TEST_CASE("h1: a few empty lines before a request are tolerated, many are not", "[http][h1]") {
    auto ok = run_request("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
    REQUIRE_FALSE(ok.failed);
    CHECK(ok.messages == 1);
    auto bad = run_request("\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
    REQUIRE(bad.failed);
    CHECK(bad.error.reason == ParseReason::BadRequestLine);
}

TEST_CASE("h1: HTTP/1.0 request without Host is fine, OPTIONS * is fine", "[http][h1]") {
    CHECK_FALSE(run_request("GET / HTTP/1.0\r\n\r\n").failed);
    CHECK_FALSE(run_request("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n").failed);
    auto star = run_request("GET * HTTP/1.1\r\nHost: a\r\n\r\n");
    REQUIRE(star.failed);
    CHECK(star.error.reason == ParseReason::BadTarget);
}

TEST_CASE("h1: limits", "[http][h1]") {
    SECTION("header section too large -> 431") {
        H1Limits l;
        l.max_header_bytes = 256;
        std::string in = "GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(300, 'a') + "\r\n\r\n";
        auto r = run_request(in, 7, l);
        REQUIRE(r.failed);
        CHECK(r.error.reason == ParseReason::HeaderTooLarge);
        CHECK(r.error.status == 431);
        CHECK(r.error.name() == "header_too_large");
    }
    SECTION("default 16 KiB limit") {
        std::string in = "GET / HTTP/1.1\r\nHost: a\r\n";
        for (int i = 0; i < 40; ++i)
            in += "X-" + std::to_string(i) + ": " + std::string(500, 'v') + "\r\n";
        in += "\r\n";
        auto r = run_request(in);
        REQUIRE(r.failed);
        CHECK(r.error.reason == ParseReason::HeaderTooLarge);
    }
    SECTION("too many headers -> 431") {
        std::string in = "GET / HTTP/1.1\r\nHost: a\r\n";
        for (int i = 0; i < 100; ++i)
            in += "X: 1\r\n";
        in += "\r\n";
        auto r = run_request(in);
        REQUIRE(r.failed);
        CHECK(r.error.reason == ParseReason::TooManyHeaders);
        CHECK(r.error.status == 431);
    }
    SECTION("exactly 100 headers pass") {
        std::string in = "GET / HTTP/1.1\r\nHost: a\r\n";
        for (int i = 0; i < 99; ++i)
            in += "X: 1\r\n";
        in += "\r\n";
        CHECK_FALSE(run_request(in).failed);
    }
    SECTION("request line too long -> 414") {
        std::string in = "GET /" + std::string(9000, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n";
        auto r = run_request(in, 1000);
        REQUIRE(r.failed);
        CHECK(r.error.reason == ParseReason::RequestLineTooLong);
        CHECK(r.error.status == 414);
    }
    SECTION("Content-Length above max_body -> 413 before any body byte") {
        H1Limits l;
        l.max_body = 10;
        auto r = run_request("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n", -1, l);
        REQUIRE(r.failed);
        CHECK(r.error.reason == ParseReason::BodyTooLarge);
        CHECK(r.error.status == 413);
        CHECK(r.body_events == 0);
    }
    SECTION("chunked body above max_body -> 413") {
        H1Limits l;
        l.max_body = 10;
        auto r = run_request("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n",
                             -1, l);
        REQUIRE(r.failed);
        CHECK(r.error.reason == ParseReason::BodyTooLarge);
        CHECK(r.body_events == 1);
    }
    SECTION("chunk size line too long") {
        std::string in = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1;" +
                         std::string(2000, 'x') + "\r\na\r\n0\r\n\r\n";
        auto r = run_request(in);
        REQUIRE(r.failed);
        CHECK(r.error.reason == ParseReason::BadChunk);
    }
    SECTION("trailer section too large") {
        std::string in = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n";
        for (int i = 0; i < 100; ++i)
            in += "T: " + std::string(60, 't') + "\r\n";
        in += "\r\n";
        auto r = run_request(in);
        REQUIRE(r.failed);
        CHECK(r.error.reason == ParseReason::HeaderTooLarge);
    }
}

TEST_CASE("h1: EOF handling", "[http][h1]") {
    SECTION("clean EOF between messages") {
        H1Parser p(H1Parser::Kind::Request);
        auto r = run(p, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", -1, true);
        CHECK_FALSE(r.failed);
        CHECK(r.messages == 1);
    }
    SECTION("EOF after a stray CRLF between messages is clean") {
        H1Parser p(H1Parser::Kind::Request);
        auto r = run(p, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx\r\n", -1, true);
        CHECK_FALSE(r.failed);
        CHECK(r.messages == 1);
    }
    SECTION("EOF inside a body") {
        H1Parser p(H1Parser::Kind::Request);
        auto r = run(p, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nab", -1, true);
        REQUIRE(r.failed);
        CHECK(r.error.reason == ParseReason::Truncated);
    }
    SECTION("EOF inside a head") {
        H1Parser p(H1Parser::Kind::Request);
        auto r = run(p, "GET / HTTP/1.1\r\nHo", -1, true);
        REQUIRE(r.failed);
        CHECK(r.error.reason == ParseReason::Truncated);
    }
    SECTION("EOF inside a chunked body") {
        H1Parser p(H1Parser::Kind::Request);
        auto r =
            run(p, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n", -1, true);
        REQUIRE(r.failed);
        CHECK(r.error.reason == ParseReason::Truncated);
    }
}

TEST_CASE("h1: an error is sticky", "[http][h1]") {
    H1Parser p(H1Parser::Kind::Request);
    auto a = p.feed("GET / HTTP/1.1\nHost: a\n\n");
    REQUIRE(a.status == Status::Error);
    CHECK(p.failed());
    CHECK_FALSE(p.keep_alive());
    auto b = p.feed("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    CHECK(b.status == Status::Error);
    CHECK(b.consumed == 0);
}

// ---- responses --------------------------------------------------------------------------------------

static edgepair::http::test::Run run_response(std::string_view in, std::string_view method = "GET",
                                              bool eof = false, size_t step = static_cast<size_t>(-1)) {
    H1Parser p(H1Parser::Kind::Response);
    p.set_request_method(method);
    return run(p, in, step, eof);
}

TEST_CASE("h1 response: status line, Content-Length body", "[http][h1]") {
    auto r = run_response("HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 4\r\n\r\n<a/>");
    REQUIRE_FALSE(r.failed);
    REQUIRE(r.messages == 1);
    CHECK(r.responses[0].status == 200);
    CHECK(r.responses[0].reason == "OK");
    CHECK(r.bodies[0] == "<a/>");
    CHECK(r.keep_alive[0]);
}

TEST_CASE("h1 response: empty reason phrase, with and without the SP", "[http][h1]") {
    auto a = run_response("HTTP/1.1 204 \r\n\r\n");
    REQUIRE_FALSE(a.failed);
    CHECK(a.responses[0].reason.empty());
    auto b = run_response("HTTP/1.1 204\r\n\r\n");
    REQUIRE_FALSE(b.failed);
    CHECK(b.messages == 1);
}

TEST_CASE("h1 response: bodiless statuses and HEAD", "[http][h1]") {
    SECTION("204 ignores nothing after it") {
        auto r = run_response("HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx");
        REQUIRE_FALSE(r.failed);
        CHECK(r.messages == 2);
        CHECK(r.bodies[1] == "x");
    }
    SECTION("304 with Content-Length has no body") {
        auto r = run_response("HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n");
        REQUIRE_FALSE(r.failed);
        CHECK(r.messages == 1);
        CHECK(r.bodies[0].empty());
    }
    SECTION("response to HEAD has no body") {
        auto r = run_response("HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n", "HEAD");
        REQUIRE_FALSE(r.failed);
        CHECK(r.messages == 1);
    }
    SECTION("HEAD applies to one response only") {
        H1Parser p(H1Parser::Kind::Response);
        p.set_request_method("HEAD");
        auto r = run(
            p, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nab");
        REQUIRE_FALSE(r.failed);
        REQUIRE(r.messages == 2);
        CHECK(r.bodies[0].empty());
        CHECK(r.bodies[1] == "ab");
    }
    SECTION("100 Continue then the final response") {
        auto r = run_response("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        REQUIRE_FALSE(r.failed);
        REQUIRE(r.messages == 2);
        CHECK(r.responses[0].status == 100);
        CHECK(r.bodies[1] == "ok");
    }
    SECTION("101 ends HTTP on the connection") {
        auto r =
            run_response("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\nRAW");
        CHECK(r.messages == 1);
        REQUIRE(r.failed);
        CHECK(r.error.reason == ParseReason::DataAfterClose);
    }
}

TEST_CASE("h1 response: read until close", "[http][h1]") {
    auto r = run_response("HTTP/1.1 200 OK\r\n\r\nsome body", "GET", true, 3);
    REQUIRE_FALSE(r.failed);
    REQUIRE(r.messages == 1);
    CHECK(r.bodies[0] == "some body");
    CHECK_FALSE(r.keep_alive[0]);
}

TEST_CASE("h1 response: chunked", "[http][h1]") {
    auto r = run_response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n");
    REQUIRE_FALSE(r.failed);
    CHECK(r.bodies.at(0) == "ok");
    CHECK(r.keep_alive.at(0));
}

TEST_CASE("h1 response: errors suggest 502", "[http][h1]") {
    auto r = run_response("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n");
    REQUIRE(r.failed);
    CHECK(r.error.reason == ParseReason::SmugglingTeCl);
    CHECK(r.error.status == 502);
    auto s = run_response("HTTP/1.1 2000 OK\r\n\r\n");
    REQUIRE(s.failed);
    CHECK(s.error.reason == ParseReason::BadStatusLine);
    auto v = run_response("HTTP/2.0 200 OK\r\n\r\n");
    REQUIRE(v.failed);
    CHECK(v.error.reason == ParseReason::UnsupportedVersion);
    auto w = run_response("HTTP/1.1 099 Low\r\n\r\n");
    REQUIRE(w.failed);
    CHECK(w.error.reason == ParseReason::BadStatusLine);
}

// ---- serialiser ------------------------------------------------------------------------------------

TEST_CASE("h1 serialise: request head round-trips through the parser", "[http][h1]") {
    RequestHead h;
    h.method = "POST";
    h.target = "/cucm-uds/user/jdoe";
    h.headers.add("Host", "cucm1.example.com:8443");
    h.headers.add("Content-Length", "3");
    auto s = serialize_request_head(h);
    REQUIRE(s.ok());
    CHECK(*s ==
          "POST /cucm-uds/user/jdoe HTTP/1.1\r\nHost: cucm1.example.com:8443\r\nContent-Length: 3\r\n\r\n");
    auto r = run_request(*s + "abc");
    REQUIRE_FALSE(r.failed);
    CHECK(r.bodies.at(0) == "abc");
}

TEST_CASE("h1 serialise: response head", "[http][h1]") {
    ResponseHead h;
    h.status = 403;
    h.reason = "Forbidden";
    h.headers.add("Content-Length", "0");
    auto s = serialize_response_head(h);
    REQUIRE(s.ok());
    CHECK(*s == "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
}

TEST_CASE("h1 serialise: refuses header and start-line injection", "[http][h1]") {
    RequestHead h;
    h.method = "GET";
    h.target = "/";
    h.headers.add("X", "a\r\nInjected: 1");
    CHECK_FALSE(serialize_request_head(h).ok());
    h.headers.clear();
    h.headers.add("Bad Name", "v");
    CHECK_FALSE(serialize_request_head(h).ok());
    h.headers.clear();
    h.headers.add("X", std::string("a\0b", 3));
    CHECK_FALSE(serialize_request_head(h).ok());
    h.headers.clear();
    h.target = "/a b";
    CHECK_FALSE(serialize_request_head(h).ok());
    h.target = "/";
    h.method = "GET /x HTTP/1.1\r\n";
    CHECK_FALSE(serialize_request_head(h).ok());

    ResponseHead r;
    r.status = 200;
    r.reason = "OK\r\nSet-Cookie: x";
    CHECK_FALSE(serialize_response_head(r).ok());
    r.reason = "OK";
    r.status = 1000;
    CHECK_FALSE(serialize_response_head(r).ok());
}

TEST_CASE("h1 headers: set/remove/has_token", "[http][h1]") {
    Headers h;
    h.add("Connection", "keep-alive, Upgrade");
    h.add("X", "1");
    h.add("x", "2");
    CHECK(h.has_token("connection", "upgrade"));
    CHECK_FALSE(h.has_token("connection", "close"));
    h.set("X", "3");
    CHECK(h.count("x") == 1);
    CHECK(*h.find("X") == "3");
    CHECK(h.fields()[1].name == "X");
    CHECK(h.remove("CONNECTION") == 1);
    CHECK(h.size() == 1);
}

TEST_CASE("h1: reason names are stable labels", "[http][h1]") {
    CHECK(reason_name(ParseReason::SmugglingTeCl) == "smuggling_te_cl");
    CHECK(reason_name(ParseReason::BadChunk) == "bad_chunk");
    for (int i = 0; i <= static_cast<int>(ParseReason::ParserDisagreement); ++i) {
        auto n = reason_name(static_cast<ParseReason>(i));
        CHECK(n != "unknown");
        for (char c : n)
            CHECK(((c >= 'a' && c <= 'z') || c == '_'));
    }
}
