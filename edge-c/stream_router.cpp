#include "edge-c/stream_router.h"

#include "common/obs/access_log.h"
#include "common/obs/log.h"
#include "edge-c/edge_c.h"
#include "edge-c/http_service.h"
#include "edge-c/sip_service.h"
#include "edge-c/xmpp_service.h"

namespace edgepair::edge_c {

void serve_stream(CWorker& w, link::LinkStream* s, const link::Headers& headers) {
    // The query is redacted: it may carry a password or a token (common/obs/access_log.h).
    EP_DEBUG("link", "stream {} ({}) [{}] {}", s->id(), link::to_string(s->kind()),
             obs::checked_request_id(link::header_value(headers, obs::kRequestIdHeader)),
             obs::redact_target(link::header_value(headers, ":path")));
    switch (s->kind()) {
    case link::StreamKind::Http:
        return serve_http_stream(w, s, headers);
    case link::StreamKind::Sip:
        return serve_sip_stream(w, s, headers);
    case link::StreamKind::Xmpp:
        return w.xmpp().serve(s, headers);
    }
}

} // namespace edgepair::edge_c
