#include <catch2/catch.hpp>

#include "common/obs/metrics.h"
#include "edge-e/h2_session.h"
#include "edge-e/worker_counters.h"

using namespace edgepair;
using core::Failure;
using core::FailureKind;
using core::Side;

TEST_CASE("edge-e: which lost link streams are sent again, from the failure's kind and side",
          "[edge_e][link]") {
    using edge_e::link_loss_retryable;
    Failure refused(FailureKind::Refused, Side::Edge, "stream reset: REFUSED_STREAM");
    Failure lost(FailureKind::Lost, Side::Link, "keep-alive timeout");
    Failure closed(FailureKind::Closed, Side::Link, "this edge let go of the link");
    Failure cancelled(FailureKind::Cancelled, Side::Edge, "stream reset: CANCEL");
    Failure internal(FailureKind::Reset, Side::Edge, "stream reset: INTERNAL_ERROR");
    // Refused: edge-c did not act on it, whatever the method.
    CHECK(link_loss_retryable(refused, "POST", false));
    CHECK_FALSE(link_loss_retryable(refused, "POST", true)); // part of the body is gone: cannot replay
    // The link went away: only safe methods (they may have reached the upstream).
    CHECK(link_loss_retryable(lost, "GET", false));
    CHECK(link_loss_retryable(closed, "HEAD", false));
    CHECK_FALSE(link_loss_retryable(lost, "POST", false));
    // The peer edge reset it for another reason: it may have acted on it.
    CHECK_FALSE(link_loss_retryable(cancelled, "GET", false));
    CHECK_FALSE(link_loss_retryable(internal, "GET", false));
    // A text that merely mentions the words decides nothing: only the kind does.
    CHECK_FALSE(link_loss_retryable(Failure(FailureKind::Reset, Side::Edge, "link lost: REFUSED_STREAM"),
                                    "GET", false));
    CHECK_FALSE(link_loss_retryable(Failure(), "GET", false));
}

TEST_CASE("edge-e: link errors are counted under the failure's side and kind", "[edge_e][metrics]") {
    obs::Registry reg;
    edge_e::WorkerCounters c(reg);
    auto text = reg.render();
    CHECK_THAT(text, Catch::Contains(R"(edgepair_http_link_errors_total{failed="link",kind="lost"} 0)"));
    CHECK_THAT(text, !Catch::Contains(R"(kind="none")"));
    c.link_error(Failure(FailureKind::Lost, Side::Link, "simulated")).inc();
    c.link_error(Failure(FailureKind::Lost, Side::Link, "another text, same series")).inc();
    c.link_error(Failure(FailureKind::Protocol, Side::Edge)).inc();
    const char* m = "edgepair_http_link_errors_total";
    CHECK(reg.counter_value(m, {{"failed", "link"}, {"kind", "lost"}}) == 2);
    CHECK(reg.counter_value(m, {{"failed", "edge"}, {"kind", "protocol"}}) == 1);
    CHECK(reg.counter_value(m, {{"failed", "edge"}, {"kind", "lost"}}) == 0);
    // Never passed, but must not crash: counted as a reset on its side.
    c.link_error(Failure(FailureKind::None, Side::Upstream)).inc();
    CHECK(reg.counter_value(m, {{"failed", "upstream"}, {"kind", "reset"}}) == 1);
}
