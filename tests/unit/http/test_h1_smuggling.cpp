// Request smuggling and header-obfuscation corpus: every entry must be rejected with its exact reason.
#include "h1_test_util.h"

#include <catch2/catch.hpp>

#include "common/http/h1_parser.h"

#include <string>

using namespace edgepair::http;
using edgepair::http::test::run_request;

namespace {

struct Case {
    const char* name;
    std::string input;
    ParseReason reason;
    int status;
};

std::string req(const std::string& headers, const std::string& body = "") {
    return "POST /x HTTP/1.1\r\nHost: a\r\n" + headers + "\r\n" + body;
}

} // namespace

TEST_CASE("smuggling corpus is rejected with the exact reason", "[http][h1][smuggling]") {
    using R = ParseReason;
    const std::string te = "Transfer-Encoding: chunked\r\n";
    std::vector<Case> cases = {
        // CL.TE and TE.CL
        {"CL.TE", req("Content-Length: 6\r\n" + te, "0\r\n\r\nG"), R::SmugglingTeCl, 400},
        {"TE.CL", req(te + "Content-Length: 4\r\n", "5c\r\nGPOST / HTTP/1.1\r\n\r\n0\r\n\r\n"),
         R::SmugglingTeCl, 400},
        {"TE.CL with CL 0", req(te + "Content-Length: 0\r\n", "0\r\n\r\n"), R::SmugglingTeCl, 400},
        // TE obfuscation
        {"xchunked", req("Transfer-Encoding: xchunked\r\n"), R::UnknownTransferCoding, 501},
        {"chunkedx", req("Transfer-Encoding: chunkedx\r\n"), R::UnknownTransferCoding, 501},
        {"double SP before value", req("Transfer-Encoding:  chunked\r\n"), R::BadTransferEncoding, 400},
        {"tab before value", req("Transfer-Encoding:\tchunked\r\n"), R::BadTransferEncoding, 400},
        {"trailing tab", req("Transfer-Encoding: chunked\t\r\n"), R::BadTransferEncoding, 400},
        {"trailing space", req("Transfer-Encoding: chunked \r\n"), R::BadTransferEncoding, 400},
        {"space before colon", req("Transfer-Encoding : chunked\r\n"), R::InvalidHeaderChar, 400},
        {"tab before colon", req("Transfer-Encoding\t: chunked\r\n"), R::InvalidHeaderChar, 400},
        {"leading space line (obs-fold)", req("X: 1\r\n Transfer-Encoding: chunked\r\n"), R::BadHeader, 400},
        {"obs-fold continuation", req("Transfer-Encoding: x\r\n\tchunked\r\n"), R::BadHeader, 400},
        {"duplicated TE", req(te + te), R::BadTransferEncoding, 400},
        {"chunked, chunked", req("Transfer-Encoding: chunked, chunked\r\n"), R::BadTransferEncoding, 400},
        {"chunked, identity", req("Transfer-Encoding: chunked, identity\r\n"), R::BadTransferEncoding, 400},
        {"identity", req("Transfer-Encoding: identity\r\n"), R::BadTransferEncoding, 400},
        {"gzip, chunked", req("Transfer-Encoding: gzip, chunked\r\n"), R::UnknownTransferCoding, 501},
        {"gzip then chunked lines", req("Transfer-Encoding: gzip\r\n" + te), R::UnknownTransferCoding, 501},
        {"empty list element", req("Transfer-Encoding: ,chunked\r\n"), R::BadTransferEncoding, 400},
        {"coding with params", req("Transfer-Encoding: chunked;q=1\r\n"), R::BadTransferEncoding, 400},
        {"quoted chunked", req("Transfer-Encoding: \"chunked\"\r\n"), R::BadTransferEncoding, 400},
        {"empty TE", req("Transfer-Encoding:\r\n"), R::BadTransferEncoding, 400},
        {"vertical tab",
         req("Transfer-Encoding: \x0b"
             "chunked\r\n"),
         R::InvalidHeaderChar, 400},
        {"TE in HTTP/1.0", "POST / HTTP/1.0\r\n" + te + "\r\n0\r\n\r\n", R::BadTransferEncoding, 400},
        // Content-Length
        {"two equal CL", req("Content-Length: 5\r\nContent-Length: 5\r\n"), R::DuplicateContentLength, 400},
        {"two different CL", req("Content-Length: 5\r\nContent-Length: 6\r\n"), R::DuplicateContentLength,
         400},
        {"CL list", req("Content-Length: 5, 5\r\n"), R::DuplicateContentLength, 400},
        {"CL plus sign", req("Content-Length: +5\r\n"), R::BadContentLength, 400},
        {"CL minus", req("Content-Length: -1\r\n"), R::BadContentLength, 400},
        {"CL two leading spaces", req("Content-Length:  5\r\n"), R::BadContentLength, 400},
        {"CL trailing space", req("Content-Length: 5 \r\n"), R::BadContentLength, 400},
        {"CL hex", req("Content-Length: 0x5\r\n"), R::BadContentLength, 400},
        {"CL inner space", req("Content-Length: 1 0\r\n"), R::BadContentLength, 400},
        {"CL empty", req("Content-Length:\r\n"), R::BadContentLength, 400},
        {"CL 20 digits", req("Content-Length: 99999999999999999999\r\n"), R::BadContentLength, 400},
        {"CL 2^64", req("Content-Length: 18446744073709551616\r\n"), R::BadContentLength, 400},
        {"CL with space before colon", req("Content-Length : 5\r\n"), R::InvalidHeaderChar, 400},
        // Chunk framing
        {"chunk size overflow", req(te, "10000000000000000\r\nx\r\n0\r\n\r\n"), R::BadChunk, 400},
        {"chunk size 0x", req(te, "0x5\r\nhello\r\n0\r\n\r\n"), R::BadChunk, 400},
        {"chunk size +", req(te, "+5\r\nhello\r\n0\r\n\r\n"), R::BadChunk, 400},
        {"chunk size -", req(te, "-5\r\nhello\r\n0\r\n\r\n"), R::BadChunk, 400},
        {"chunk size leading space", req(te, " 5\r\nhello\r\n0\r\n\r\n"), R::BadChunk, 400},
        {"chunk size trailing space", req(te, "5 \r\nhello\r\n0\r\n\r\n"), R::BadChunk, 400},
        {"space before chunk ext", req(te, "5 ;a=b\r\nhello\r\n0\r\n\r\n"), R::BadChunk, 400},
        {"empty chunk ext", req(te, "5;\r\nhello\r\n0\r\n\r\n"), R::BadChunk, 400},
        {"ext name then =", req(te, "5;a=\r\nhello\r\n0\r\n\r\n"), R::BadChunk, 400},
        {"unterminated quoted ext", req(te, "5;a=\"b\r\nhello\r\n0\r\n\r\n"), R::BadChunk, 400},
        {"missing chunk size", req(te, "\r\nhello\r\n0\r\n\r\n"), R::BadChunk, 400},
        {"chunk data terminator not CRLF", req(te, "1\r\naXY0\r\n\r\n"), R::BadChunk, 400},
        {"chunk longer than its size", req(te, "3\r\nabcd\r\n0\r\n\r\n"), R::BadChunk, 400},
        {"chunk bare LF after size", req(te, "1\na\r\n0\r\n\r\n"), R::BadChunk, 400},
        {"chunk bare LF after data", req(te, "1\r\na\n0\r\n\r\n"), R::BadChunk, 400},
        {"bare CR in chunk line", req(te, "1\rX\r\na\r\n0\r\n\r\n"), R::BadChunk, 400},
        {"trailer obs-fold", req(te, "0\r\nT: a\r\n b\r\n\r\n"), R::BadHeader, 400},
        {"trailer bare LF", req(te, "0\r\nT: a\n\r\n"), R::BadLineEnding, 400},
        {"trailer NUL", req(te, std::string("0\r\nT: a\0b\r\n\r\n", 13)), R::InvalidHeaderChar, 400},
        // Line endings and bytes
        {"bare LF everywhere", "GET / HTTP/1.1\nHost: a\n\n", R::BadLineEnding, 400},
        {"bare LF end of head", "GET / HTTP/1.1\r\nHost: a\r\n\n", R::BadLineEnding, 400},
        {"bare CR inside header", "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", R::BadLineEnding, 400},
        {"bare CR in request line", "GET /\r HTTP/1.1\r\nHost: a\r\n\r\n", R::BadLineEnding, 400},
        {"NUL in value", std::string("GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", 35),
         R::InvalidHeaderChar, 400},
        {"NUL in name", std::string("GET / HTTP/1.1\r\nHost: a\r\nX\0: ab\r\n\r\n", 35), R::InvalidHeaderChar,
         400},
        {"DEL in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x7f\r\n\r\n", R::InvalidHeaderChar, 400},
        {"CTL in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x01\r\n\r\n", R::InvalidHeaderChar, 400},
        {"non-token name", "GET / HTTP/1.1\r\nHost: a\r\nX(y): 1\r\n\r\n", R::InvalidHeaderChar, 400},
        {"empty name", "GET / HTTP/1.1\r\nHost: a\r\n: 1\r\n\r\n", R::BadHeader, 400},
        {"no colon", "GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", R::BadHeader, 400},
        // Host
        {"missing Host", "GET / HTTP/1.1\r\n\r\n", R::BadHost, 400},
        {"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", R::BadHost, 400},
        {"two Hosts differing case", "GET / HTTP/1.1\r\nHost: a\r\nhOST: a\r\n\r\n", R::BadHost, 400},
        {"empty Host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", R::BadHost, 400},
        {"Host with userinfo", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", R::BadHost, 400},
        {"Host with path", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", R::BadHost, 400},
        {"Host with space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", R::BadHost, 400},
        {"Host empty port", "GET / HTTP/1.1\r\nHost: a:\r\n\r\n", R::BadHost, 400},
        {"Host long port", "GET / HTTP/1.1\r\nHost: a:123456\r\n\r\n", R::BadHost, 400},
        // Request line
        {"HTTP/1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", R::UnsupportedVersion, 505},
        {"HTTP/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", R::UnsupportedVersion, 505},
        {"HTTP/0.9 style", "GET /\r\n\r\n", R::BadRequestLine, 400},
        {"lowercase http", "GET / http/1.1\r\nHost: a\r\n\r\n", R::BadRequestLine, 400},
        {"version junk", "GET / HTTP/1.1x\r\nHost: a\r\n\r\n", R::BadRequestLine, 400},
        {"double SP", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", R::BadRequestLine, 400},
        {"trailing SP", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", R::BadRequestLine, 400},
        {"tab separator", "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", R::BadRequestLine, 400},
        {"unknown method", "FOO / HTTP/1.1\r\nHost: a\r\n\r\n", R::UnsupportedMethod, 501},
        {"lowercase method", "get / HTTP/1.1\r\nHost: a\r\n\r\n", R::UnsupportedMethod, 501},
        {"CONNECT", "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", R::UnsupportedMethod, 501},
        {"non-ASCII target", "GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", R::BadTarget, 400},
        {"authority-form GET", "GET a:443 HTTP/1.1\r\nHost: a\r\n\r\n", R::BadTarget, 400},
        {"relative target", "GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", R::BadTarget, 400},
    };
    for (const auto& c : cases) {
        for (size_t step : {static_cast<size_t>(-1), size_t{1}, size_t{5}}) {
            INFO(c.name << " (step " << step << ")");
            auto r = run_request(c.input, step);
            REQUIRE(r.failed);
            CHECK(reason_name(r.error.reason) == reason_name(c.reason));
            CHECK(r.error.status == c.status);
            // Nothing of a rejected message may have been handed on as a complete message.
            CHECK(r.messages == 0);
        }
    }
}

TEST_CASE("legitimate framing variants are accepted", "[http][h1][smuggling]") {
    auto ok = [](const std::string& in, const std::string& body) {
        INFO(in);
        auto r = run_request(in);
        REQUIRE_FALSE(r.failed);
        REQUIRE(r.messages == 1);
        CHECK(r.bodies[0] == body);
    };
    ok(req("Transfer-Encoding: Chunked\r\n", "1\r\nx\r\n0\r\n\r\n"), "x");
    ok(req("transfer-encoding:chunked\r\n", "1\r\nx\r\n0\r\n\r\n"), "x");
    ok(req("Content-Length:3\r\n", "abc"), "abc");
    ok(req("Content-Length: 003\r\n", "abc"), "abc");
    ok(req("Content-Length: 0\r\n"), "");
    ok(req("Transfer-Encoding: chunked\r\n", "A\r\n0123456789\r\n0\r\n\r\n"), "0123456789");
    ok(req("Transfer-Encoding: chunked\r\n", "0000000000000000000001\r\nx\r\n0\r\n\r\n"), "x");
    ok(req("Transfer-Encoding: chunked\r\n", "1;a;b=c;d=\"e f\"\r\nx\r\n0;z\r\n\r\n"), "x");
    ok("GET / HTTP/1.1\r\nHost: [2001:db8::1]:8443\r\n\r\n", "");
    ok("GET http://a/b HTTP/1.1\r\nHost: a\r\n\r\n", "");
    ok("GET / HTTP/1.1\r\nHost: a\r\nX-UTF8: caf\xc3\xa9\r\n\r\n", "");
}

TEST_CASE("a smuggled second request is never parsed as one", "[http][h1][smuggling]") {
    // Classic CL.TE: a front end using Content-Length forwards "0\r\n\r\nGET /admin..." as body.
    std::string in = req("Content-Length: 35\r\nTransfer-Encoding: chunked\r\n",
                         "0\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n");
    auto r = run_request(in);
    REQUIRE(r.failed);
    CHECK(r.requests.empty());
    // Chunked body whose data looks like a request is body, never a second message.
    std::string in2 =
        req("Transfer-Encoding: chunked\r\n", "20\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n\r\n0\r\n\r\n");
    auto r2 = run_request(in2);
    REQUIRE_FALSE(r2.failed);
    CHECK(r2.messages == 1);
    CHECK(r2.bodies[0] == "GET /admin HTTP/1.1\r\nHost: a\r\n\r\n");
}
