#pragma once
#include <memory>

#include "common/net/connection.h"
#include "edge-e/edge_e.h"

namespace edgepair::edge_e {

// Creates the session for a connection accepted on the HTTPS listener.
std::unique_ptr<ClientSession> make_https_session(WorkerState& ws, int fd, SSL* ssl);
// SIP over TLS and XMPP listeners: the protocol sessions.
std::unique_ptr<ClientSession> make_sip_session(WorkerState& ws, int fd, SSL* ssl);
std::unique_ptr<ClientSession> make_xmpp_session(WorkerState& ws, int fd);

} // namespace edgepair::edge_e
