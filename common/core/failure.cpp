#include "common/core/failure.h"

namespace edgepair::core {

std::string_view label(Side s) {
    switch (s) {
    case Side::Client:
        return "client";
    case Side::Edge:
        return "edge";
    case Side::Link:
        return "link";
    case Side::Upstream:
        return "upstream";
    }
    return "unknown";
}

std::string_view label(FailureKind k) {
    switch (k) {
    case FailureKind::None:
        return "none";
    case FailureKind::Refused:
        return "refused";
    case FailureKind::Cancelled:
        return "cancelled";
    case FailureKind::Reset:
        return "reset";
    case FailureKind::Protocol:
        return "protocol";
    case FailureKind::Limit:
        return "limit";
    case FailureKind::Lost:
        return "lost";
    case FailureKind::Closed:
        return "closed";
    case FailureKind::Timeout:
        return "timeout";
    }
    return "unknown";
}

std::string Failure::str() const {
    if (kind == FailureKind::None) return "ok";
    std::string out(label(side));
    out += ' ';
    out += label(kind);
    if (!detail.empty()) {
        out += ": ";
        out += detail;
    }
    return out;
}

} // namespace edgepair::core
