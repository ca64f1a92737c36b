#include <catch2/catch.hpp>

#include <set>
#include <string>

#include "common/mra/request_gate.h"
#include "edge-e/worker_counters.h"

using namespace edgepair;
using edgepair::edge_e::SipError;
using edgepair::edge_e::WorkerCounters;

TEST_CASE("edge-e worker counters are bound up front and count under their labels", "[edge_e][metrics]") {
    obs::Registry reg;
    WorkerCounters c(reg);
    // The closed families exist (at zero) before any event: nothing is looked up on the data path.
    auto text = reg.render();
    CHECK_THAT(text, Catch::Contains(R"(edgepair_http_blocked_total{side="edge-e",reason="port"} 0)"));
    CHECK_THAT(text, Catch::Contains(R"(edgepair_xmpp_errors_total{condition="host-unknown"} 0)"));
    CHECK_THAT(text, !Catch::Contains(R"(reason="none")"));

    c.blocked(mra::BlockStage::Scheme).inc();
    c.blocked(mra::BlockStage::Method).inc(2);
    CHECK(reg.counter_value(mra::kBlockedMetric, {{"side", "edge-e"}, {"reason", "scheme"}}) == 1);
    CHECK(reg.counter_value(mra::kBlockedMetric, {{"side", "edge-e"}, {"reason", "method"}}) == 2);
    CHECK(reg.counter_value(mra::kBlockedMetric, {{"side", "edge-e"}, {"reason", "port"}}) == 0);

    c.sip_error(SipError::NoLink).inc();
    c.sip_error(sip::FrameErrorCode::message_too_large).inc();
    CHECK(reg.counter_value("edgepair_sip_errors_total", {{"reason", "no_link"}}) == 1);
    CHECK(reg.counter_value("edgepair_sip_errors_total", {{"reason", "message_too_large"}}) == 1);

    c.xmpp_error(xmpp::StreamErrorCondition::policy_violation).inc();
    c.xmpp_error(xmpp::StreamErrorCondition::unsupported_version).inc();
    CHECK(reg.counter_value("edgepair_xmpp_errors_total", {{"condition", "policy-violation"}}) == 1);
    CHECK(reg.counter_value("edgepair_xmpp_errors_total", {{"condition", "unsupported-version"}}) == 1);

    // The refusal reason is open-ended: the same counter for the same value, however it is spelled in memory.
    std::string reason = "h2_goaway";
    auto& a = c.rejected(reason);
    auto& b = c.rejected(std::string_view("h2_goaway"));
    CHECK(&a == &b);
    a.inc();
    c.rejected("head_timeout").inc();
    CHECK(reg.counter_value(mra::kRejectedMetric, {{"side", "edge-e"}, {"reason", "h2_goaway"}}) == 1);
    CHECK(reg.counter_value(mra::kRejectedMetric, {{"side", "edge-e"}, {"reason", "head_timeout"}}) == 1);
}

TEST_CASE("edge-e's own SIP refusal labels are distinct", "[edge_e][metrics]") {
    std::set<std::string_view> labels;
    for (size_t i = 0; i < edge_e::kSipErrorCount; ++i)
        labels.insert(edge_e::sip_error_label(SipError(i)));
    CHECK(labels.size() == edge_e::kSipErrorCount);
    CHECK_FALSE(labels.contains("other"));
}
