#pragma once
#include "common/link/link_conn.h"

namespace edgepair::edge_c {

class CWorker;

// Serves one xmpp stream that edge-e opened on a link owned by worker `w`.
void serve_xmpp_stream(CWorker& w, link::LinkStream* s, const link::Headers& headers);

} // namespace edgepair::edge_c
