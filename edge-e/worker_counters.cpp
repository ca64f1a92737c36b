#include "edge-e/worker_counters.h"

#include <string>

#include "common/mra/request_gate.h"

namespace edgepair::edge_e {

std::string_view sip_error_label(SipError e) {
    switch (e) {
    case SipError::LinkFormat:
        return "link_format";
    case SipError::Unparseable:
        return "unparseable";
    case SipError::Invalid:
        return "invalid";
    case SipError::BadExtension:
        return "bad_extension";
    case SipError::NoLink:
        return "no_link";
    }
    return "other";
}

namespace {

constexpr const char* kSipHelp = "SIP messages refused or dropped by edge-e";
constexpr const char* kXmppHelp = "XMPP stream errors sent to clients by edge-e";

} // namespace

WorkerCounters::WorkerCounters(obs::Registry& m)
    : rejected_(m, mra::kRejectedMetric, mra::kRejectedHelp, {{"side", "edge-e"}}, "reason") {
    waits = &m.counter("edgepair_link_waits_total",
                       "Requests and flows that found no link up on their worker and waited for one");
    wait_timeouts = &m.counter("edgepair_link_wait_timeouts_total",
                               "Waits for a link that ended at http.link_wait without one (503)");
    retries = &m.counter("edgepair_http_link_retries_total",
                         "Requests re-sent on another link after theirs was lost before any answer");
    early_releases =
        &m.counter("edgepair_http_link_stream_early_releases_total",
                   "Link streams reset as soon as edge-c's answer was complete, before the client's request");
    per_client_full = &m.counter(
        "edgepair_http_client_stream_limit_total",
        "Requests refused because their client address held http.max_link_streams_per_client already");
    per_conn_full =
        &m.counter("edgepair_http2_stream_limit_total",
                   "HTTP/2 streams refused because their connection held http.max_concurrent_streams");
    stalls = &m.counter("edgepair_http_client_stalls_total",
                        "Clients cut for holding a link stream without progress (http.client_stall_timeout)");
    head_timeouts = &m.counter("edgepair_http_head_timeouts_total",
                               "Request heads not complete within http.request_head_timeout (408)");
    read_paused =
        &m.counter("edgepair_http_client_read_pauses_total",
                   "Times edge-e stopped reading a client (output above the watermark or input bound)");
    link_timeouts = &m.counter("edgepair_http_link_timeouts_total",
                               "Requests edge-c did not answer within http.response_timeout");
    h2_client_resets =
        &m.counter("edgepair_http2_client_resets_total", "RST_STREAM frames received from clients");
    routing_removed =
        &m.counter("edgepair_http_headers_removed_total", "Request fields removed by the header policy",
                   {{"side", "edge-e"}, {"kind", "routing_override"}});
    // Stage None is never a refusal and gets no series (blocked() maps it to Unnormalised).
    for (size_t i = 1; i < blocked_.size(); ++i)
        blocked_[i] = &m.counter(
            mra::kBlockedMetric, mra::kBlockedHelp,
            {{"side", "edge-e"}, {"reason", std::string(mra::block_stage_label(mra::BlockStage(i)))}});
    for (size_t i = 0; i < sip_errors_.size(); ++i)
        sip_errors_[i] = &m.counter("edgepair_sip_errors_total", kSipHelp,
                                    {{"reason", std::string(sip_error_label(SipError(i)))}});
    for (size_t i = 0; i < sip_frame_errors_.size(); ++i)
        sip_frame_errors_[i] =
            &m.counter("edgepair_sip_errors_total", kSipHelp,
                       {{"reason", std::string(sip::metric_label(sip::FrameErrorCode(i)))}});
    // Kind None is never a failure and gets no series (link_error() maps it to Reset).
    for (size_t s = 0; s < core::kSideCount; ++s)
        for (size_t k = 1; k < core::kFailureKindCount; ++k)
            link_errors_[s][k] =
                &m.counter("edgepair_http_link_errors_total", "Requests lost with their link stream (502)",
                           {{"failed", std::string(core::label(core::Side(s)))},
                            {"kind", std::string(core::label(core::FailureKind(k)))}});
    for (size_t i = 0; i < xmpp_errors_.size(); ++i)
        xmpp_errors_[i] =
            &m.counter("edgepair_xmpp_errors_total", kXmppHelp,
                       {{"condition", std::string(xmpp::condition_name(xmpp::StreamErrorCondition(i)))}});
}

} // namespace edgepair::edge_e
