#include "edge-c/sip_service.h"

#include "edge-c/edge_c.h"
#include "edge-c/sip_router.h"
#include "edge-c/sipfed_service.h"

namespace edgepair::edge_c {

void serve_sip_stream(CWorker& w, link::LinkStream* s, const link::Headers& headers) {
    // A federation flow (issue #19) never reaches the MRA router: it has no route to Unified CM.
    if (!link::header_value(headers, "x-sip-federation").empty()) {
        if (w.sipfed())
            w.sipfed()->serve(s, headers);
        else
            s->send_headers({{":status", "404"}}, true);
        return;
    }
    w.sip().attach(s, headers);
}

void on_media_control(CWorker& w, link::LinkConn* link, std::string_view msg) {
    w.sip().media_control(link, msg);
}

} // namespace edgepair::edge_c
