#pragma once
// The counters edge-e's data path increments, bound once per worker when the worker state is built: an
// event is an atomic add through a pointer, never a registry lookup under its lock. Families whose label
// comes from a closed enum get one counter per value; only the refusal reason, whose values are the union
// of several modules' label functions (path normaliser, HTTP/1.1 parser, HTTP/2 request checks, nghttp2,
// the gate), is looked up per worker on first use.
#include <array>
#include <cstddef>
#include <string_view>

#include "common/core/failure.h"
#include "common/mra/allow_list.h"
#include "common/obs/counter_memo.h"
#include "common/obs/metrics.h"
#include "common/sip/framer.h"
#include "common/xmpp/stream_error.h"

namespace edgepair::edge_e {

// SIP refusals edge-e decides itself (the framer's own codes are counted under their metric_label).
enum class SipError : uint8_t { LinkFormat, Unparseable, Invalid, BadExtension, NoLink };
inline constexpr size_t kSipErrorCount = size_t(SipError::NoLink) + 1;
inline constexpr size_t kSipFrameErrorCount = size_t(sip::FrameErrorCode::too_many_headers) + 1;
inline constexpr size_t kXmppConditionCount = size_t(xmpp::StreamErrorCondition::unsupported_version) + 1;
std::string_view sip_error_label(SipError e);

struct WorkerCounters {
    explicit WorkerCounters(obs::Registry& m);
    WorkerCounters(const WorkerCounters&) = delete;
    WorkerCounters& operator=(const WorkerCounters&) = delete;

    // Link waits and the client limits of the 8443 sessions.
    obs::Counter* waits;           // requests/flows that found no link on their worker and waited
    obs::Counter* wait_timeouts;   // ... and got none within http.link_wait
    obs::Counter* retries;         // requests re-sent on another link after theirs was lost
    obs::Counter* early_releases;  // link streams reset once edge-c's answer was complete
    obs::Counter* per_client_full; // requests refused: the address holds its link streams already
    obs::Counter* per_conn_full;   // HTTP/2 streams refused: the connection holds its link streams
    obs::Counter* stalls;          // clients cut for holding a link stream without progress
    obs::Counter* head_timeouts;   // request heads not complete within http.request_head_timeout
    obs::Counter* read_paused;     // times a client's reading was paused (output or input bound)
    // Requests and their link streams.
    obs::Counter* link_timeouts;    // edge-c did not answer within http.response_timeout (504)
    obs::Counter* h2_client_resets; // RST_STREAM frames from clients
    obs::Counter* routing_removed;  // routing-override fields the header policy removed
    // The gate's refusals: edgepair_http_rejected_requests_total{side="edge-e",reason} and, for the allow
    // list, edgepair_http_blocked_total{side="edge-e",reason=<stage>}.
    obs::Counter& rejected(std::string_view reason) { return rejected_.get(reason); }
    // `s` is never None for a refusal (AllowList::match sets a stage whenever it refuses); should it be, the
    // refusal is still counted, as the nearest thing to a match that never ran.
    obs::Counter& blocked(mra::BlockStage s) {
        return *blocked_[size_t(s == mra::BlockStage::None ? mra::BlockStage::Unnormalised : s)];
    }
    // edgepair_sip_errors_total{reason}, edgepair_xmpp_errors_total{condition}.
    obs::Counter& sip_error(SipError e) { return *sip_errors_[size_t(e)]; }
    obs::Counter& sip_error(sip::FrameErrorCode c) { return *sip_frame_errors_[size_t(c)]; }
    obs::Counter& xmpp_error(xmpp::StreamErrorCondition c) { return *xmpp_errors_[size_t(c)]; }
    // Requests lost with their link stream (502): edgepair_http_link_errors_total{failed,kind}, the labels
    // straight from the failure's side and kind. A failure without a kind (never passed) counts as reset.
    obs::Counter& link_error(const core::Failure& f) {
        auto k = f.kind == core::FailureKind::None ? core::FailureKind::Reset : f.kind;
        return *link_errors_[size_t(f.side)][size_t(k)];
    }

  private:
    obs::OpenLabelCounters rejected_;
    std::array<obs::Counter*, mra::kBlockStageCount> blocked_{};
    std::array<obs::Counter*, kSipErrorCount> sip_errors_{};
    std::array<obs::Counter*, kSipFrameErrorCount> sip_frame_errors_{};
    std::array<obs::Counter*, kXmppConditionCount> xmpp_errors_{};
    std::array<std::array<obs::Counter*, core::kFailureKindCount>, core::kSideCount> link_errors_{};
};

} // namespace edgepair::edge_e
