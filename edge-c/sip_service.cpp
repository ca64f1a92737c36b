#include "edge-c/sip_service.h"

#include "edge-c/edge_c.h"
#include "edge-c/sip_router.h"

namespace edgepair::edge_c {

void serve_sip_stream(CWorker& w, link::LinkStream* s, const link::Headers& headers) {
    w.sip().attach(s, headers);
}

void on_media_control(CWorker& w, link::LinkConn* link, std::string_view msg) {
    w.sip().media_control(link, msg);
}

} // namespace edgepair::edge_c
