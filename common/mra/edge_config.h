#pragma once
// The documents edge-e answers a remote client's edge discovery with.
//
// get_edge_config: the shape follows the getEdgeConfigResponse an Expressway-E returned to a TC endpoint,
// quoted in full in Cisco TechNote 211304 "Collaboration Edge TC-based Endpoints Configuration Example"
// (cisco.com/c/en/us/support/docs/unified-communications/unified-communications-manager-callmanager/
// 211304-Collaboration-Edge-TC-based-Endpoints-Co.html, "Issue 6"):
//   <getEdgeConfigResponse version="1.0">
//     <serviceConfig>
//       <service><name>_cisco-phone-tftp</name><error>NameError</error></service>
//       <service><name>_cuplogin</name><error>NameError</error></service>
//       <service><name>_cisco-uds</name><server><priority/><weight/><port/><address/></server></service>
//       <service><name>tftpServer</name><address/>...</service>
//     </serviceConfig>
//     <edgeConfig>
//       <sipEdgeServer><server><address/><tlsPort/></server></sipEdgeServer>
//       <sipRequest><route>&lt;sip:ADDR:5061;transport=tls;zone-id=3;directed;lr&gt;</route></sipRequest>
//       <xmppEdgeServer><server><address/><tlsPort/></server></xmppEdgeServer>
//       <httpEdgeServer><server><address/><tlsPort/></server></httpEdgeServer>
//       <turnEdgeServer/>
//       <userUdsServer><server><address/><tlsPort/></server></userUdsServer>
//     </edgeConfig>
//   </getEdgeConfigResponse>
// That endpoint failed with "XML didn't contain UDS server address" because userUdsServer/address was empty,
// which is why edge_config_for() insists on it only when the caller knows the user's home node.
//
// Expressway-C fills _cisco-uds / _cuplogin from internal DNS SRV lookups; edgepair fills them from the
// deployment's discovered nodes, so the edge answer does not depend on the internal DNS being right.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/core/result.h"
#include "common/mra/snapshot.h"

namespace edgepair::mra {

// The WWW-Authenticate value of every 401 the pair sends a remote client (edge-c's credential check and
// edge-e's local answers). Jabber and TC endpoints were only ever seen talking to Expressway, whose answer is
// captured in TechNote 211304 as this exact value; edgepair's own name here would be the one visible
// difference a client could key on. Change it in this one place.
inline constexpr const char* kClientAuthChallenge = "Basic realm=\"Cisco-Edge\"";

struct EdgeServer {
    std::string address;
    std::uint16_t tls_port = 0;
};

// One SRV-like entry of a <service>.
struct ServiceServer {
    std::string address;
    std::uint16_t port = 8443;
    int priority = 1;
    int weight = 1;
};

struct EdgeConfig {
    std::vector<ServiceServer> uds_servers;        // _cisco-uds: the deployment's Unified CM nodes
    std::vector<ServiceServer> cup_login_servers;  // _cuplogin: the deployment's IM&P nodes
    std::vector<ServiceServer> phone_tftp_servers; // _cisco-phone-tftp: NameError when empty
    std::vector<std::string> tftp_servers;         // tftpServer: Unified CM nodes running TFTP
    std::optional<EdgeServer> sip_edge;            // present when the domain has SIP on Unified CM
    std::string sip_route;                         // the Route the client puts on its SIP requests
    std::optional<EdgeServer> xmpp_edge;           // present when the domain has IM and Presence
    EdgeServer http_edge;
    std::optional<EdgeServer> user_uds_server; // the user's home UDS node, when known
};

// How edge-e is reached from outside; the defaults are Expressway-E's client ports.
struct EdgeAddresses {
    std::string fqdn; // edge-e's public FQDN (SAN of its certificate)
    std::uint16_t sip_tls_port = 5061;
    std::uint16_t xmpp_port = 5222;
    std::uint16_t http_port = 8443;
    std::string route_host;   // host in the SIP route; empty: fqdn. Expressway puts its address here
    std::string route_params; // extra URI parameters, e.g. "zone-id=3;directed" as Expressway adds
};

// "<sip:HOST:PORT;transport=tls[;PARAMS];lr>": a loose route (RFC 3261 16.12) to edge-e's SIP/TLS port, the
// form Expressway-E hands out in sipRequest/route.
std::string sip_route(std::string_view host, std::uint16_t port, std::string_view extra_params = {});

// The edge config for a user of `domain`. Errors: unknown domain; a domain with neither SIP on Unified CM
// nor IM and Presence (MRA is off for it); no Unified CM node in its deployment (the client could not find
// its home cluster). Unreachable nodes are left out so the client does not try them first.
Result<EdgeConfig> edge_config_for(const Snapshot& snap, std::string_view domain, const EdgeAddresses& edge,
                                   std::optional<std::string> user_home_uds = std::nullopt);

// The getEdgeConfigResponse document. `requested` are the request's service_name values in order
// (_cisco-uds, _cuplogin, _cisco-phone-tftp); an unknown name answers NameError as Expressway does for a
// failed lookup. Empty means all three. tftpServer is always listed.
std::string build_edge_config_xml(const EdgeConfig& cfg, const std::vector<std::string>& requested = {});

// get_edge_sso answer. No public document found shows the real body, so this is edgepair's own minimal form,
// <getEdgeSsoResponse version="1.0"><sso>true|false</sso></getEdgeSsoResponse>, to be replaced once a capture
// of a real Expressway-E answer is available.
std::string build_edge_sso_xml(bool sso_available);

} // namespace edgepair::mra
