#pragma once
// The `federation:` sections of both edges (issue #19): XMPP server-to-server through the pair.
// Absent section = no federation. Reference: docs/CONFIG.md.
#include <optional>
#include <string>
#include <vector>

#include "common/config/common_config.h"
#include "common/config/types.h"

namespace edgepair::config {

class Node;

enum class FederationSecurity { Required, Optional, None };
const char* to_string(FederationSecurity);

// edge-e: remote servers connect to `listen`; outbound streams from the enterprise (opened by edge-c over
// the link) go to the remote domain's `_xmpp-server._tcp` SRV targets.
struct EdgeEXmppFederationConfig {
    Address listen{Address::Kind::Any, "", 5269};
    FederationSecurity security = FederationSecurity::Required;
    // Domains a remote server may name in its stream's 'to' (ours). Empty: the MRA domains with IM&P that
    // edge-c pushed.
    std::vector<std::string> local_domains;
    std::vector<std::string> allow, deny; // remote domains; see xmpp::DomainPolicy
    std::vector<Address> dns_servers;     // for SRV / A look-ups; empty = the system's resolv.conf
    Duration dns_timeout = std::chrono::seconds(2);
    Duration dns_cache_ttl = std::chrono::seconds(60);   // capped by nothing else: records' TTLs are not read
    Duration connect_timeout = std::chrono::seconds(10); // per target: TCP + stream header + STARTTLS + TLS
    std::string trusted_cas; // remote certificates (security required); default tls.trusted_cas
    // Largest stanza a remote server may send (edge-e frames the remote's side). Servers send more than
    // clients (vCards with photos): Prosody's own s2s_stanza_size_limit is 512 KiB.
    uint64_t max_stanza_size = 512 * 1024;
};

// edge-e, SIP federation (issue #19, edge-e/sip_federation.h): remote domains' SIP servers connect over TLS
// to `listen` (its own port, never the MRA SIP listener); requests IM&P sends to a remote domain go to that
// domain's `_sips._tcp` (then `_sip._tcp`) SRV targets over TLS.
struct EdgeESipFederationConfig {
    Address listen{Address::Kind::Any, "", 5062};
    // Domains a remote server may address out of dialog (the Request-URI host). Empty: the MRA domains
    // with IM&P that edge-c pushed.
    std::vector<std::string> local_domains;
    std::vector<std::string> allow, deny; // remote domains (the From host inbound, the target outbound)
    std::vector<Address> dns_servers;     // empty = the system's resolv.conf
    Duration dns_timeout = std::chrono::seconds(2);
    Duration dns_cache_ttl = std::chrono::seconds(60);
    Duration connect_timeout = std::chrono::seconds(10); // per target: TCP + TLS
    bool tls_verify = true; // outbound: the remote's certificate must name the domain (RFC 5922)
    // Inbound: the remote must present a certificate chaining to trusted_cas, and every request's From host
    // must be one of its DNS SANs. Off, the From domain the lists are checked against is whatever the peer
    // writes (the default, as most partners present no client certificate).
    bool verify_client = false;
    std::string trusted_cas; // default tls.trusted_cas
    uint64_t max_message_size = 64 * 1024;
    // The address remote servers reach `listen` at, for edge-e's Record-Route entry on federated dialogs
    // (common/sip/fed_route.h). Unset: `listen` when it is an IP; with `*` no entry is added.
    std::optional<Address> record_route;
};

// The address an edge's Record-Route entry on federated SIP dialogs names (common/sip/fed_route.h):
// `record_route` when set, else `listen` when it is an IP; none when listening on `*` without one.
inline std::optional<Address> fed_self_route(const std::optional<Address>& record_route,
                                             const Address& listen) {
    if (record_route) return record_route;
    if (listen.is_ip()) return listen;
    return std::nullopt;
}

struct EdgeEFederationConfig {
    std::optional<EdgeEXmppFederationConfig> xmpp;
    std::optional<EdgeESipFederationConfig> sip;
};

// edge-c: IM&P's outbound federation connects to `listen` (inside); inbound streams from edge-e go to the
// first IM&P node of `imp_nodes` that answers.
struct EdgeCXmppFederationConfig {
    Address listen{Address::Kind::Any, "", 5269};
    std::vector<Address> imp_nodes; // IP literal and s2s port; the only sources accepted on `listen`
    FederationSecurity imp_security = FederationSecurity::Required; // the inside hop, both directions
    bool imp_tls_verify = false; // check the IM&P node's certificate (names are IPs here: IP SANs)
    CertKey certificate;         // presented to IM&P on `listen`; default tls.certificate
    Duration connect_timeout = std::chrono::seconds(10);
    Duration dial_timeout = std::chrono::seconds(30); // IM&P's stream waits this long for edge-e's answer
};

// edge-c, SIP federation: inbound requests go to the IM&P routing node (the first of `imp_nodes` that
// accepts a TCP connection); IM&P's requests to remote domains arrive on `listen` (TCP, inside), from the
// addresses of `imp_nodes` only.
struct EdgeCSipFederationConfig {
    Address listen{Address::Kind::Any, "", 5062};
    std::vector<Address> imp_nodes; // IP literal and SIP/TCP port
    Duration connect_timeout = std::chrono::seconds(5);
    Duration dial_timeout = std::chrono::seconds(30); // IM&P's requests wait this long for edge-e's stream
    uint64_t max_message_size = 64 * 1024;
    // The address IM&P reaches `listen` at, for edge-c's Record-Route entry on federated dialogs. Unset:
    // `listen` when it is an IP; with `*` no entry is added.
    std::optional<Address> record_route;
};

struct EdgeCFederationConfig {
    std::optional<EdgeCXmppFederationConfig> xmpp;
    std::optional<EdgeCSipFederationConfig> sip;
};

void parse_edge_e_federation(const Node& n, EdgeEFederationConfig& out);
void parse_edge_c_federation(const Node& n, EdgeCFederationConfig& out);

} // namespace edgepair::config
