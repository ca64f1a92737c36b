#include <catch2/catch.hpp>

#include <optional>
#include <string>
#include <vector>

#include "common/http/b64_domain.h"
#include "common/mra/request_gate.h"
#include "common/mra/snapshot.h"

using namespace edgepair::mra;

namespace {

AllowRule rule(std::string_view url, MatchType m, std::optional<MethodSet> methods = std::nullopt) {
    auto u = parse_rule_url(url);
    REQUIRE(u.ok());
    AllowRule r;
    r.url = *u;
    r.match = m;
    r.methods = methods;
    return r;
}

std::shared_ptr<const Snapshot> gate_snapshot() {
    SnapshotInput in;
    in.domains.push_back(Domain{"example.com", "", {}});
    in.editable_rules = {
        rule("http://web.example.com:8080/files/", MatchType::Prefix, MethodSet{Method::Get, Method::Head}),
        rule("http://web.example.com:8080/exact/a.txt", MatchType::Exact),
        rule("https://web.example.com/upload", MatchType::Prefix, MethodSet{Method::Post}),
    };
    auto snap = build_snapshot(in);
    REQUIRE(snap.ok());
    return *snap;
}

const std::string D = edgepair::http::encode_domain("example.com");

std::string proxy(std::string_view rest) {
    return "/" + D + "/http/web.example.com/8080" + std::string(rest);
}

struct Case {
    std::string name;
    std::string method;
    std::string target;
    std::vector<std::string_view> fields;
    std::optional<RateCheck> rate;
    GateReason reason;
    int status;
    std::string label;
    std::string forward = ""; // pass + proxy: the forwarded target
};

} // namespace

TEST_CASE("gate: one decision per request, same order and labels on both edges", "[mra][gate]") {
    auto snap = gate_snapshot();
    const std::vector<Case> cases = {
        {"allowed prefix",
         "GET",
         proxy("/files/hello.txt"),
         {"host", "user-agent"},
         {},
         GateReason::Pass,
         0,
         "",
         "/files/hello.txt"},
        {"query kept",
         "GET",
         proxy("/files/a?x=1&y=%2f"),
         {},
         {},
         GateReason::Pass,
         0,
         "",
         "/files/a?x=1&y=%2F"},
        {"params dropped from the forwarded path",
         "GET",
         proxy("/files;jsessionid=1/hello.txt;v=2"),
         {},
         {},
         GateReason::Pass,
         0,
         "",
         "/files/hello.txt"},
        {"exact rule: a ;param names no other file",
         "GET",
         proxy("/exact/a.txt;.bak"),
         {},
         {},
         GateReason::Pass,
         0,
         "",
         "/exact/a.txt"},
        {"edge config",
         "GET",
         "/" + D + "/get_edge_config/?service_name=_cisco-uds",
         {"authorization"},
         {},
         GateReason::Pass,
         0,
         ""},
        {"rate limit first, before any parsing",
         "GET",
         "\x01garbage",
         {"Transfer_Encoding"},
         RateCheck{true, 7},
         GateReason::RateLimited,
         429,
         "rate_limited"},
        {"rate check that passed",
         "GET",
         proxy("/files/x"),
         {},
         RateCheck{false, 0},
         GateReason::Pass,
         0,
         "",
         "/files/x"},
        {"look-alike framing field",
         "POST",
         proxy("/files/x"),
         {"host", "Transfer_Encoding"},
         {},
         GateReason::LookalikeHeader,
         400,
         "lookalike_header"},
        {"look-alike length field",
         "GET",
         proxy("/files/x"),
         {"content_length"},
         {},
         GateReason::LookalikeHeader,
         400,
         "lookalike_header"},
        {"look-alike with a trailing underscore",
         "GET",
         proxy("/files/x"),
         {"Connection_"},
         {},
         GateReason::LookalikeHeader,
         400,
         "lookalike_header"},
        {"look-alike of a link field",
         "GET",
         proxy("/files/x"),
         {"X_Edge_Host"},
         {},
         GateReason::LookalikeHeader,
         400,
         "lookalike_header"},
        {"underscore in an unrelated name passes",
         "GET",
         proxy("/files/x"),
         {"X_Custom_Thing"},
         {},
         GateReason::Pass,
         0,
         "",
         "/files/x"},
        {"second Authorization",
         "GET",
         proxy("/files/x"),
         {"Authorization", "accept", "authorization"},
         {},
         GateReason::DuplicateAuthorization,
         400,
         "duplicate_authorization"},
        {"header refusals come before the path",
         "GET",
         "/nope/../..",
         {"authorization", "AUTHORIZATION"},
         {},
         GateReason::DuplicateAuthorization,
         400,
         "duplicate_authorization"},
        {"bad path keeps the normaliser's label",
         "GET",
         proxy("/files/../../x"),
         {},
         {},
         GateReason::BadPath,
         400,
         "above_root"},
        {"bad domain", "GET", "/!!!/get_edge_config/", {}, {}, GateReason::BadPath, 400, "bad_domain"},
        {"dot segment with params",
         "GET",
         proxy("/files/..;/x"),
         {},
         {},
         GateReason::BadPath,
         400,
         "dot_segment_params"},
        {"unknown domain",
         "GET",
         "/" + edgepair::http::encode_domain("other.org") + "/get_edge_config/",
         {},
         {},
         GateReason::UnknownDomain,
         404,
         "unknown_domain"},
        {"unknown service",
         "GET",
         "/" + D + "/nothing/here",
         {},
         {},
         GateReason::UnknownService,
         404,
         "unknown_service"},
        {"edge config is read-only",
         "POST",
         "/" + D + "/get_edge_config/",
         {},
         {},
         GateReason::MethodNotAllowed,
         405,
         "method_not_allowed"},
        {"edge sso is read-only",
         "DELETE",
         "/" + D + "/get_edge_sso/",
         {},
         {},
         GateReason::MethodNotAllowed,
         405,
         "method_not_allowed"},
        {"the assertion consumer takes the POST binding only",
         "GET",
         "/" + D + "/fedlet",
         {},
         {},
         GateReason::MethodNotAllowed,
         405,
         "method_not_allowed"},
        {"the SSO start is a redirect, a read",
         "POST",
         "/" + D + "/authorize?response_type=token",
         {},
         {},
         GateReason::MethodNotAllowed,
         405,
         "method_not_allowed"},
        {"sibling of an allowed prefix",
         "GET",
         proxy("/filesx/a"),
         {},
         {},
         GateReason::Blocked,
         403,
         "blocked"},
        {"method not in the rule", "DELETE", proxy("/files/a"), {}, {}, GateReason::Blocked, 403, "blocked"},
        {"unknown host",
         "GET",
         "/" + D + "/http/evil.example.com/80/",
         {},
         {},
         GateReason::Blocked,
         403,
         "blocked"},
    };
    for (const auto& c : cases) {
        INFO(c.name);
        GateRequest r;
        r.method = c.method;
        r.target = c.target;
        r.field_names = c.fields;
        r.rate = c.rate;
        auto v = decide(snap.get(), r);
        CHECK(v.reason == c.reason);
        CHECK(v.status == c.status);
        CHECK(v.passed() == (c.status == 0));
        if (c.status) {
            CHECK(v.label == c.label);
            CHECK(!v.message.empty());
            CHECK(!v.log.empty());
            CHECK(v.forward_target.empty());
        }
        if (c.status == 0 && v.path.kind == edgepair::http::MraKind::Proxy)
            CHECK(v.forward_target == c.forward);
    }
}

TEST_CASE("gate: details the callers need", "[mra][gate]") {
    auto snap = gate_snapshot();
    GateRequest r;
    r.method = "GET";
    std::string target; // r.target views it

    SECTION("429 carries the hook's retry time, at least one second") {
        target = proxy("/files/x");
        r.target = target;
        r.rate = RateCheck{true, 0};
        auto v = decide(snap.get(), r);
        CHECK(v.status == 429);
        CHECK(v.retry_after_s == 1);
    }
    SECTION("405 names what is allowed") {
        r.method = "PUT";
        target = "/" + D + "/get_edge_sso/";
        r.target = target;
        auto v = decide(snap.get(), r);
        CHECK(v.status == 405);
        CHECK(v.allow == "GET, HEAD");
    }
    SECTION("no snapshot: 503 once the path is valid, 400 before") {
        target = proxy("/files/x");
        r.target = target;
        auto v = decide(nullptr, r);
        CHECK(v.status == 503);
        CHECK(v.label == "no_config");
        target = "relative";
        r.target = target;
        CHECK(decide(nullptr, r).status == 400);
    }
    SECTION("allow-list refusals carry a stable sub-label and never the rule in the client message") {
        struct B {
            std::string method, target, label;
        };
        for (const auto& b :
             std::vector<B>{{"GET", proxy("/other/x"), "path"},
                            {"DELETE", proxy("/files/x"), "method"},
                            {"GET", "/" + D + "/http/web.example.com/81/files/x", "port"},
                            {"GET", "/" + D + "/https/web.example.com/8080/files/x", "scheme"},
                            {"GET", "/" + D + "/http/nobody.example.com/80/", "host"}}) {
            INFO(b.target);
            r.method = b.method;
            r.target = b.target;
            auto v = decide(snap.get(), r);
            CHECK(v.reason == GateReason::Blocked);
            CHECK(block_stage_label(v.block_stage) == b.label);
            CHECK(v.message == "blocked by the HTTP allow list");
        }
    }
    SECTION("params_dropped says when the forwarded path differs from the received one") {
        target = proxy("/files/hello.txt");
        r.target = target;
        CHECK_FALSE(decide(snap.get(), r).params_dropped);
        target = proxy("/files/hello.txt;x");
        r.target = target;
        auto v = decide(snap.get(), r);
        CHECK(v.params_dropped);
        CHECK(v.forward_target == "/files/hello.txt");
        // An encoded ';' is part of the segment name for every server: kept, and matched as such.
        target = proxy("/files/a%3Bb");
        r.target = target;
        v = decide(snap.get(), r);
        CHECK_FALSE(v.params_dropped);
        CHECK(v.forward_target == "/files/a%3Bb");
    }
    SECTION("labels are stable") {
        CHECK(gate_reason_label(GateReason::RateLimited) == "rate_limited");
        CHECK(gate_reason_label(GateReason::LookalikeHeader) == "lookalike_header");
        CHECK(gate_reason_label(GateReason::DuplicateAuthorization) == "duplicate_authorization");
        CHECK(gate_reason_label(GateReason::UnknownDomain) == "unknown_domain");
        CHECK(gate_reason_label(GateReason::UnknownService) == "unknown_service");
        CHECK(gate_reason_label(GateReason::Blocked) == "blocked");
    }
}
