#include "edge-c/sip_service.h"

#include <mutex>
#include <unordered_map>

#include "edge-c/edge_c.h"
#include "edge-c/sip_router.h"

namespace edgepair::edge_c {

namespace {

// CWorker has no slot for the SIP router yet (the lead may move it there). The map is global rather than
// thread_local and never destroyed on purpose: the routers own connections on their worker's loop, which
// must not be torn down by thread-exit destructors after that loop is gone; reachable from a global, they
// are not reported as leaks either. Only stream set-up touches the lock.
SipRouter& router_for(CWorker& w) {
    static std::mutex mu;
    static auto* routers = new std::unordered_map<CWorker*, SipRouter*>();
    std::lock_guard lk(mu);
    auto& r = (*routers)[&w];
    if (!r) r = new SipRouter(w);
    return *r;
}

} // namespace

void serve_sip_stream(CWorker& w, link::LinkStream* s, const link::Headers& headers) {
    router_for(w).attach(s, headers);
}

void on_media_control(CWorker& w, link::LinkConn* link, std::string_view msg) {
    router_for(w).media_control(link, msg);
}

} // namespace edgepair::edge_c
