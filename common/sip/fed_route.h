#pragma once
// The route set of a federated SIP dialog through the pair (issue #19).
//
// Both edges Record-Route the dialog-forming requests they relay between a remote domain and IM&P, so the
// requests inside the dialog (NOTIFY, re-SUBSCRIBE, BYE, ...) come back through the pair in both directions
// (RFC 3261 16.6 step 4, 12.1) instead of going straight to a Contact. edge-e's entry names its federation
// listener as the remote reaches it (TLS); edge-c's names its inside listener as IM&P reaches it (TCP) and
// carries the remote domain in `epfed`, so edge-c can pick the leg for an in-dialog request from IM&P on any
// connection, after a link reconnect too, without having seen the dialog before. Each edge removes the top
// Route that names itself (RFC 3261 16.4). This is our reading of what a proxy on the federation path must
// do; Cisco's documents say IM&P federation goes through the Expressway pair but not how it record-routes
// (docs/PROTOCOL-FACTS.md "SIP federation").
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/core/result.h"
#include "common/sip/message.h"
#include "common/sip/uri.h"

namespace edgepair::sip {

// The URI parameter of edge-c's Record-Route entry that names the remote domain of the dialog.
inline constexpr std::string_view kFedDomainParam = "epfed";

// A request that forms a dialog and so may carry Record-Route: INVITE, SUBSCRIBE, REFER outside a dialog
// (no To tag). NOTIFY outside a dialog (RFC 6665 4.2.1) forms none here: it answers our own SUBSCRIBE.
bool fed_dialog_forming(const Message& m);

// Whether `u` names `host`:`port` (host compared without case or IPv6 brackets; a URI without a port names
// the scheme's default port for its transport: 5061 for sips: or transport=tls, else 5060).
bool fed_names(const Uri& u, std::string_view host, uint16_t port);

// The Record-Route entry for an edge: sip:host:port;transport=...;lr, plus epfed=domain when non-empty.
Uri fed_record_route(std::string_view host, uint16_t port, std::string_view transport,
                     std::string_view domain = {});

// The remote domain edge-c put in its own entry (lower case), or nullopt when `u` has none or a value that
// is not a DNS name.
std::optional<std::string> fed_domain(const Uri& u);

struct FedPopped {
    int count = 0;                     // entries removed
    std::optional<std::string> domain; // the epfed domain of a removed entry
};
// Removes every top Route entry that names `host`:`port` (a peer may have record-routed us twice, once per
// transport, RFC 5658). An unparseable top Route is an error.
Result<FedPopped> fed_pop_own_routes(Message& m, std::string_view host, uint16_t port);

// One edge's own hop on the federation path: what its Record-Route entry names, and how it is reached.
struct FedHop {
    std::string host;
    uint16_t port = 0;
    std::string_view transport; // "tls" (edge-e, towards remote domains) or "tcp" (edge-c, towards IM&P)
};

// Record-Routes a dialog-forming request through `hop` (with epfed=domain when non-empty); false when `m`
// forms no dialog and was left alone.
bool fed_record(Message& m, const FedHop& hop, std::string_view domain = {});

// The one relay step of both edges for a request: remove the Route entries naming `hop`, then
// fed_record. `m` is `bytes` parsed, and is changed alike. Returns the bytes to send (`bytes` when nothing
// changed); nullopt when the top Route is malformed.
std::optional<std::string> fed_route_through(std::string_view bytes, Message& m, const FedHop& hop,
                                             std::string_view domain = {});

} // namespace edgepair::sip
