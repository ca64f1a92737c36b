#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "common/obs/access_log.h"

using namespace edgepair::obs;

TEST_CASE("redact_target keeps parameter names and drops every value") {
    CHECK(redact_target("/a/b?password=secret&x=1") == "/a/b?password=*&x=*");
    CHECK(redact_target("/a?tok3n-only") == "/a?*");
    CHECK(redact_target("/a?=v&&n=") == "/a?*&&n=*");
    CHECK(redact_target("/a#frag?x=1") == "/a");
    CHECK(redact_target("/plain/path") == "/plain/path");
    // A name that is not a plain word may itself be the secret.
    CHECK(redact_target("/a?se%20cret=1") == "/a?*");
    CHECK(redact_target(std::string(600, 'p')).size() == 515);
}

TEST_CASE("request ids are short, base32 and unique per worker and per start") {
    RequestIds a(0), b(1), c(0);
    std::set<std::string> seen;
    for (int i = 0; i < 1000; ++i) {
        for (auto* g : {&a, &b, &c}) {
            auto id = g->next();
            CHECK(id.size() >= 14);
            CHECK(id.size() <= 23);
            CHECK(checked_request_id(id) == id);
            CHECK(seen.insert(id).second);
        }
    }
}

TEST_CASE("checked_request_id refuses what edge-e never makes") {
    CHECK(checked_request_id("abcdefgh2345") == "abcdefgh2345");
    CHECK(checked_request_id("abcdefgh.1") == "abcdefgh.1");
    CHECK(checked_request_id("short") == "-");
    CHECK(checked_request_id("ABCDEFGHIJ") == "-");
    CHECK(checked_request_id("abcdefgh ij") == "-");
    CHECK(checked_request_id("abcdefgh\r\nx: y") == "-");
    CHECK(checked_request_id(std::string(41, 'a')) == "-");
}

namespace {
std::string temp_path() {
    char tmpl[] = "/tmp/ep-access-XXXXXX";
    int fd = mkstemp(tmpl);
    REQUIRE(fd >= 0);
    close(fd);
    return tmpl;
}
std::string slurp(const std::string& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}
} // namespace

TEST_CASE("text lines quote client bytes so a path cannot forge a field or a line") {
    auto path = temp_path();
    {
        auto log = AccessLog::open({AccessFormat::Text, path}, "edge-e");
        REQUIRE(log);
        HttpAccess a;
        a.begin(*log, "abcdefgh0001", "127.0.0.1:1", "GET", "/x\" status=999\nfake line");
        a.set_status(200);
        a.add_out(5);
    } // the destructor writes the line
    auto text = slurp(path);
    std::remove(path.c_str());
    REQUIRE(std::count(text.begin(), text.end(), '\n') == 1);
    CHECK(text.find(" edge-e http id=abcdefgh0001 client=127.0.0.1:1 method=GET ") != std::string::npos);
    CHECK(text.find("path=\"/x\\\" status=999\\x0afake line\" status=200 in=0 out=5 ") != std::string::npos);
    CHECK(text.find("upstream=- reason=-\n") != std::string::npos);
}

TEST_CASE("JSON lines parse, numbers are numbers, one line per finish") {
    auto path = temp_path();
    {
        auto log = AccessLog::open({AccessFormat::Json, path}, "edge-c");
        REQUIRE(log);
        HttpAccess a;
        a.begin(*log, "abcdefgh0002", "127.0.0.1:2", "POST", "/p?password=hunter2");
        a.set_status(403);
        a.set_reason("blocked");
        a.set_reason("later"); // the first reason stays
        a.finish();
        a.finish(); // once only
        FlowAccess f;
        f.open(*log, "xmpp", "abcdefgh0003", "127.0.0.1:3");
        f.add_in(10);
        f.close("client_closed");
    }
    auto text = slurp(path);
    std::remove(path.c_str());
    CHECK(text.find("hunter2") == std::string::npos);
    std::istringstream in(text);
    std::string line;
    std::vector<nlohmann::json> lines;
    while (std::getline(in, line))
        lines.push_back(nlohmann::json::parse(line));
    REQUIRE(lines.size() == 3);
    CHECK(lines[0]["kind"] == "http");
    CHECK(lines[0]["side"] == "edge-c");
    CHECK(lines[0]["status"] == 403);
    CHECK(lines[0]["reason"] == "blocked");
    CHECK(lines[0]["path"] == "/p?password=*");
    CHECK(lines[1]["event"] == "open");
    CHECK(lines[2]["event"] == "close");
    CHECK(lines[2]["in"] == 10);
    CHECK(lines[2]["reason"] == "client_closed");
}

TEST_CASE("an over-long line is cut and stays one parseable record") {
    auto path = temp_path();
    {
        auto log = AccessLog::open({AccessFormat::Json, path}, "edge-e");
        REQUIRE(log);
        AccessLine l("http");
        l.add("big", std::string(AccessLog::kMaxLine * 2, '\\'));
        (*log)->write(l);
    }
    auto text = slurp(path);
    std::remove(path.c_str());
    CHECK(text.size() < AccessLog::kMaxLine + 64);
    auto j = nlohmann::json::parse(text);
    CHECK(j["truncated"] == true);
}

TEST_CASE("an unwritable access log file is an error with its path") {
    auto r = AccessLog::open({AccessFormat::Text, "/nonexistent-dir/access.log"}, "edge-e");
    REQUIRE_FALSE(r);
    CHECK(r.error().message.find("/nonexistent-dir/access.log") != std::string::npos);
}

TEST_CASE("SIP transactions: one line at the final answer, under the flow id with a counter") {
    auto path = temp_path();
    {
        auto log = AccessLog::open({AccessFormat::Text, path}, "edge-e");
        REQUIRE(log);
        FlowAccess flow;
        flow.open(*log, "sip-flow", "abcdefgh0001", "127.0.0.1:5");
        SipTransactionAccess t;
        t.begin(flow, "c1\n1 REGISTER", "REGISTER", "in", "tag1");
        t.begin(flow, "c1\n1 REGISTER", "REGISTER", "in", "tag1"); // a retransmission: no second entry
        CHECK(t.open_count() == 1);
        t.begin(flow, "c2\n5 INVITE", "INVITE", "out", "tag2");
        t.finish(flow, "c1\n1 REGISTER", 200);
        t.finish(flow, "nothing", 200);                                      // a response to nothing: ignored
        t.finish(flow, "c3\n2 OPTIONS", 420, "edge", "OPTIONS", "in", "t3"); // the edge's own answer
        CHECK(t.open_count() == 1);
        t.close("client_closed"); // the INVITE never got a final answer
        CHECK(t.open_count() == 0);
    }
    auto text = slurp(path);
    std::remove(path.c_str());
    CHECK(text.find(" sip id=abcdefgh0001.1 client=127.0.0.1:5 method=REGISTER dir=in status=200 ") !=
          std::string::npos);
    CHECK(text.find(" sip id=abcdefgh0001.3 client=127.0.0.1:5 method=OPTIONS dir=in status=420 ms=0 call=t3 "
                    "reason=edge") != std::string::npos);
    CHECK(text.find(" sip id=abcdefgh0001.2 client=127.0.0.1:5 method=INVITE dir=out status=0 ") !=
          std::string::npos);
    CHECK(text.find("reason=client_closed") != std::string::npos);
    CHECK(std::count(text.begin(), text.end(), '\n') == 5); // flow open, 3 transactions, flow close
}

TEST_CASE("SIP transactions: a flow holds a bounded number of open ones") {
    auto path = temp_path();
    {
        auto log = AccessLog::open({AccessFormat::Json, path}, "edge-e");
        REQUIRE(log);
        FlowAccess flow;
        flow.open(*log, "sip-flow", "abcdefgh0002", "127.0.0.1:6");
        SipTransactionAccess t;
        for (size_t i = 0; i < SipTransactionAccess::kMaxOpen + 10; ++i)
            t.begin(flow, "k" + std::to_string(i), "MESSAGE", "in", "x");
        CHECK(t.open_count() == SipTransactionAccess::kMaxOpen);
    }
    auto text = slurp(path);
    std::remove(path.c_str());
    size_t untracked = 0;
    for (size_t p = 0; (p = text.find("\"untracked\"", p)) != std::string::npos; ++p)
        ++untracked;
    CHECK(untracked == 10);
}
