#include "tools/edge-load/stats.h"

namespace edgepair::load {

std::string_view err_name(ErrKind k) {
    switch (k) {
    case ErrKind::Connect:
        return "connect";
    case ErrKind::Tls:
        return "tls";
    case ErrKind::Timeout:
        return "timeout";
    case ErrKind::Http4xx:
        return "http_4xx";
    case ErrKind::Http5xx:
        return "http_5xx";
    case ErrKind::Protocol:
        return "protocol";
    case ErrKind::Dropped:
        return "dropped";
    case ErrKind::Auth:
        return "auth";
    case ErrKind::Dns:
        return "dns";
    case ErrKind::SipStatus:
        return "sip_status";
    case ErrKind::Xmpp:
        return "xmpp";
    case ErrKind::Closed:
        return "closed";
    case ErrKind::Media:
        return "media";
    case ErrKind::Count_:
        break;
    }
    return "unknown";
}

uint64_t Stats::errors_total() const {
    uint64_t n = 0;
    for (auto e : errors)
        n += e;
    return n;
}

void Stats::merge(const Stats& o) {
    ok += o.ok;
    attempts += o.attempts;
    responses += o.responses;
    for (size_t i = 0; i < status_class.size(); ++i)
        status_class[i] += o.status_class[i];
    connects += o.connects;
    handshakes += o.handshakes;
    unfinished += o.unfinished;
    for (size_t i = 0; i < kErrKinds; ++i)
        errors[i] += o.errors[i];
    idle_established += o.idle_established;
    idle_closed_by_peer += o.idle_closed_by_peer;
    idle_alive_at_end += o.idle_alive_at_end;
    open_conns += o.open_conns;
    sessions_up += o.sessions_up;
    sessions_up_at_end += o.sessions_up_at_end;
    logins += o.logins;
    auth_challenges += o.auth_challenges;
    keepalive_pings += o.keepalive_pings;
    keepalive_pongs += o.keepalive_pongs;
    invites_sent += o.invites_sent;
    calls_answered += o.calls_answered;
    media_sent += o.media_sent;
    media_received += o.media_received;
    media_bad += o.media_bad;
    messages_sent += o.messages_sent;
    messages_received += o.messages_received;
    latency.merge(o.latency);
    hold_established += o.hold_established;
    hold_requests += o.hold_requests;
    hold_answered += o.hold_answered;
    hold_reset += o.hold_reset;
    hold_goaway += o.hold_goaway;
    hold_closed_by_peer += o.hold_closed_by_peer;
    hold_reopened += o.hold_reopened;
    hold_open_requests += o.hold_open_requests;
    hold_peak_open_requests += o.hold_peak_open_requests;
    hold_alive_at_end += o.hold_alive_at_end;
    hold_open_requests_at_end += o.hold_open_requests_at_end;
    hold_answer_after_ms.merge(o.hold_answer_after_ms);
    hold_close_after_ms.merge(o.hold_close_after_ms);
    hold_closed_at_ms.merge(o.hold_closed_at_ms);
    wrong_sent += o.wrong_sent;
    wrong_refused += o.wrong_refused;
    tokens += o.tokens;
    if (by_target.size() < o.by_target.size()) by_target.resize(o.by_target.size());
    for (size_t i = 0; i < o.by_target.size(); ++i)
        for (size_t k = 0; k < 3; ++k)
            by_target[i][k] += o.by_target[i][k];
    if (steps.size() < o.steps.size()) steps.resize(o.steps.size());
    for (size_t i = 0; i < o.steps.size(); ++i)
        steps[i].merge(o.steps[i]);
}

} // namespace edgepair::load
