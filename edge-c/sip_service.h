#pragma once
#include "common/link/link_conn.h"

namespace edgepair::edge_c {

class CWorker;

// Serves one sip stream that edge-e opened on a link owned by worker `w`.
void serve_sip_stream(CWorker& w, link::LinkStream* s, const link::Headers& headers);
// A "media_*" control message edge-e sent on one of w's links (answers to the media B2BUA).
void on_media_control(CWorker& w, link::LinkConn* link, std::string_view msg);

} // namespace edgepair::edge_c
