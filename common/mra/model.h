#pragma once
// The MRA model shared by both edges: deployments, domains, discovered UC nodes and the neighbor zones and
// search rules edge-c derives from them. Pure data and pure functions: no I/O, no clocks, no globals.
//
// Source of the rules encoded here: shared/seeds/002 (Mobile and Remote Access Through Cisco Expressway,
// deployment guide), sections "Using Deployments to Partition Unified Communications Services",
// "Automatically Generated Zones and Search Rules" and "Unsupported Expressway Features and Limitations".
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace edgepair::mra {

// The guide calls the primary deployment "Default deployment"; it always exists and cannot be deleted,
// only renamed. edgepair's configuration names it "default" unless the operator renames it.
inline constexpr std::string_view kDefaultDeploymentName = "default";

// "We recommend that you do not exceed ten deployments." (Using Deployments to Partition ...)
inline constexpr std::size_t kRecommendedMaxDeployments = 10;
// "As of X8.5.1, a deployment can have Multiple Presence Domains ... we currently recommend that you do not
// exceed 50 domains." (Unsupported Expressway Features and Limitations)
inline constexpr std::size_t kRecommendedMaxDomains = 50;

// Search rules for the automatically generated zones are created at this priority ("Automatically
// Generated Zones and Search Rules").
inline constexpr int kAutoSearchRulePriority = 45;

struct Deployment {
    std::string name;
};

// The services a domain can have switched on ("Configuring the domains to route to Unified CM"). Unity
// Connection is not a per-domain service in the guide: voicemail reachability follows from the deployment's
// Unity Connection nodes and the allow list.
struct DomainServices {
    bool sip_on_expressway = false; // "SIP registrations and provisioning on Expressway"
    bool sip_on_ucm = false;        // "SIP registrations and provisioning on Unified CM" (MRA line side)
    bool imp = false;               // "IM and Presence Service"
    bool xmpp_federation = false;   // "XMPP federation"
};

struct Domain {
    std::string name;       // stored lowercase: DNS names compare case-insensitively
    std::string deployment; // empty means the default deployment
    DomainServices services;
    // edge-c's single sign-on mode for the domain ("off", "on", "exclusive"): edge-e compares it with its own
    // (seeds/002: "Select the same value on the Expressway-C and Expressway-E").
    std::string sso = "off";
};

enum class NodeType { UnifiedCM, ImP, UnityConnection };
std::string_view to_string(NodeType t);

enum class NodeStatus { Unknown, Active, Unreachable };
std::string_view to_string(NodeStatus s);

struct UcNode {
    std::string name; // FQDN as discovered (what the allow list and the zones use); stored lowercase
    NodeType type = NodeType::UnifiedCM;
    std::string publisher;        // FQDN of the cluster's publisher (equal to name for the publisher itself)
    std::string cluster_name;     // Unified CM "cluster ID" as discovered
    std::string deployment;       // empty means the default deployment
    std::uint16_t https_port = 0; // 0: the type's default, see https_port_of()
    std::uint16_t sip_tcp_port = 5060;
    std::uint16_t sip_tls_port = 5061;
    bool mixed_mode = false; // Cluster Security Mode 1 (Mixed): decides whether a TLS zone exists
    bool tls_verify = true;  // discovery ran with TLS verify mode on
    bool tftp = false;       // Unified CM node running the TFTP service (serves config files on 6970)
    // IM&P: the other node of its presence redundancy group (AXL listPresenceRedundancyGroup
    // server1/server2), lower case; empty when the node has no peer or discovery could not read the groups.
    // An XMPP sign-in whose home node is down goes there (edge-c/xmpp_service.cpp).
    std::string imp_peer;
    NodeStatus status = NodeStatus::Unknown;
};

// HTTPS port of the node's client-facing web services: UDS (Unified CM) and SOAP (IM&P) on 8443, voicemail
// (Unity Connection) on 443 ("Mobile and Remote Access Port Reference").
std::uint16_t https_port_of(const UcNode& n);

enum class ZoneTransport { Tcp, Tls };

struct Zone {
    std::string name; // CEtcp-<node> / CEtls-<node>
    ZoneTransport transport = ZoneTransport::Tcp;
    std::string node; // target Unified CM node FQDN
    std::uint16_t port = 0;
    bool tls_verify = false; // only meaningful for Tls
    std::string deployment;
};

enum class PatternType { Exact, Regex };

struct SearchRule {
    std::string name; // same as the zone it targets
    int priority = kAutoSearchRulePriority;
    std::string target_zone;
    PatternType pattern_type = PatternType::Exact;
    std::string pattern; // what /status shows; see matches()
    std::string node;    // lowercase target host, what matches() compares

    // True when a request whose destination host is `host` is routed by this rule. The regex form is built
    // from the literal node name only (anchored, escaped), so it denotes exactly the same set as a
    // case-insensitive host comparison; comparing the host keeps std::regex off the SIP path.
    bool matches(std::string_view host) const;
};

// Expressway limits zone and search rule names to 50 characters.
inline constexpr std::size_t kMaxZoneNameLength = 50;

struct ZonesAndRules {
    std::vector<Zone> zones;
    std::vector<SearchRule> search_rules;
};

// One TCP zone per Unified CM node always, one TLS zone too when its cluster is in mixed mode; a search rule
// of the same name per zone at priority 45. Other node types get no zones (SIP goes to Unified CM only).
ZonesAndRules generate_zones(const std::vector<UcNode>& nodes);

// The zone / search rule name for a node. Names that would exceed kMaxZoneNameLength are shortened to a
// stable, unique form (prefix of the node name + a hash of the whole name), because two long names that share
// their first 44 characters must not collapse onto one zone.
std::string zone_name(ZoneTransport t, std::string_view node);

// Helpers shared by the module.
std::string to_lower(std::string_view s);
bool iequals(std::string_view a, std::string_view b);

} // namespace edgepair::mra
