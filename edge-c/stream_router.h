#pragma once
#include "common/link/link_conn.h"

namespace edgepair::edge_c {

class CWorker;

// A stream edge-e opened on one of this worker's links: pick the service that serves it.
void serve_stream(CWorker& w, link::LinkStream* s, const link::Headers& headers);

} // namespace edgepair::edge_c
