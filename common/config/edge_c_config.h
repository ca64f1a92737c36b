#pragma once
// edge-c (internal side) configuration: conf/edge-c.yaml. Reference: docs/CONFIG.md.
#include <string>
#include <vector>

#include "common/config/common_config.h"
#include "common/config/diagnostics.h"
#include "common/config/federation_config.h"
#include "common/config/media_config.h"
#include "common/config/types.h"
#include "common/core/result.h"

namespace edgepair::config {

inline constexpr std::size_t kMaxLinkPeers = 6; // an Expressway cluster has at most 6 peers
inline constexpr std::size_t kRecommendedMaxDeployments = 10;
inline constexpr std::size_t kRecommendedMaxDomains = 50;

struct EdgeCTlsConfig {
    CertKey certificate; // presented to edge-e (clientAuth) and used for UC node TLS (serverAuth)
    std::string trusted_cas;
    TlsVersion min_version = TlsVersion::V1_2;
    std::string ciphers;
    std::string ciphersuites;
};

struct LinkClientConfig {
    std::vector<Address> peers; // edge-e link servers; 1..6; port defaults to 7001
    std::string username;
    std::string password;      // the secret itself (read from password_file when that is used)
    std::string password_file; // resolved path, empty when `password` was given inline
    Duration reconnect_min = std::chrono::seconds(1);
    Duration reconnect_max = std::chrono::seconds(30);
    Duration ping_interval = std::chrono::seconds(10);
    Duration ping_timeout = std::chrono::seconds(20);
    // Streams edge-e may have open at once on one link (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS): every held
    // SIP flow and XMPP stream of a client is one, and so is every HTTP request in flight. A Jabber client
    // holds two; the default carries 100,000 of them on one link with room for their requests.
    uint64_t max_streams = 250'000;
};

struct DnsConfig {
    std::vector<Address> servers; // empty = system resolv.conf
    Duration timeout = std::chrono::seconds(2);
    Duration max_cache_ttl = std::chrono::seconds(60); // address answers kept for their TTL, at most this
};

enum class UcKind { UnifiedCm, ImAndPresence, UnityConnection };
const char* to_string(UcKind);

struct UcServerConfig {
    UcKind kind = UcKind::UnifiedCm;
    std::string address; // FQDN (required when tls_verify) or IP literal
    uint16_t port = 8443;
    std::string username;
    std::string password;
    std::string password_file;
    bool tls_verify = true;
    std::string deployment = "default";
};

struct DiscoveryConfig {
    std::string state_file; // resolved path; written by edge-c, need not exist
    std::vector<UcServerConfig> unified_cm;
    std::vector<UcServerConfig> im_and_presence;
    std::vector<UcServerConfig> unity_connection;
};

// What a successful SAML sign-in answers the client (edge-c/http_service.cpp): an edge token, or the Unified
// CM OAuth tokens of the user's home cluster, got with the assertion (RFC 7522 bearer grant). Only an OAuth
// token signs in to IM and Presence (edge-c/xmpp_service.cpp refuses edge tokens in SASL).
enum class SsoTokens { Edge, UnifiedCm };
const char* to_string(SsoTokens);
// An OAuth client id edgepair carries (sso.oauth_client_id, an authorize query's client_id=): 1..64
// characters of A-Z a-z 0-9 . _ - (Jabber's is not public; this admits every form seen in client logs).
bool valid_oauth_client_id(std::string_view id);

struct DomainConfig {
    std::string name; // lower-case
    std::string deployment = "default";
    bool sip = true;
    bool xmpp = true;
    bool http = true;
    // Single sign-on over the edge for this domain (seeds/002); On and Exclusive need `idp`.
    SsoMode sso = SsoMode::Off;
    std::string
        idp; // the sso.identity_providers[].name this domain's users sign in with (one IdP per domain)
    SsoTokens sso_tokens = SsoTokens::Edge;
};

enum class HttpMethod { Get, Post, Put, Delete, Head };
enum class MatchKind { Prefix, Exact };
const char* to_string(HttpMethod);
const char* to_string(MatchKind);

struct AllowRuleConfig {
    std::string url; // as written
    // Parsed parts of url (host lower-case; port defaulted from the scheme; path starts with '/').
    std::string scheme;
    std::string host;
    uint16_t port = 0;
    std::string path;
    std::string deployment = "default";
    std::vector<HttpMethod> methods; // defaults to allow_list.default_methods
    MatchKind match = MatchKind::Prefix;
    std::string description;
};

struct AllowListConfig {
    std::vector<HttpMethod> default_methods{HttpMethod::Get};
    std::vector<AllowRuleConfig> rules;
    // Rules imported through the admin endpoint (POST /allowlist/rules), kept in the guide's rules-CSV
    // format. Resolved path; validate() defaults it to edge-c-allow-list.csv beside discovery.state_file.
    std::string rules_file;
};

struct CredentialsConfig {
    Duration refresh_interval = std::chrono::minutes(480);
    Duration cleanup_interval = std::chrono::minutes(720);
    // How long a user's home is remembered without asking again: the Unified CM cluster clusterUser named
    // (edge-c/home_cluster.h) and the IM&P node that accepted the user's XMPP sign-in
    // (edge-c/xmpp_service.h).
    Duration home_cache = std::chrono::minutes(10);
    // Failed checks allowed per user name within failure_period before further attempts get 429 (0 = off).
    uint32_t max_failures = 10;
    Duration failure_period = std::chrono::seconds(60);
    // Edge tokens (edge-c/edge_token.h) are sealed with a key read from this file, so they survive a restart
    // and every worker accepts every other worker's. Created (0600, random) when missing. Resolved path;
    // validate() defaults it to edge-c-token.key beside discovery.state_file. Empty = a per-process key.
    std::string token_key_file;
    bool edge_tokens = true; // issue an edge token after a successful Basic check on get_edge_config
    // seeds/002 "Authorization Rate Control": sign-ins (get_edge_config with a password, an edge token or an
    // OAuth token) allowed per user within authorization_period; one more gets 429 (0 = off).
    uint32_t max_authorizations = 0;
    Duration authorization_period = std::chrono::seconds(300);
};

// One Unified CM cluster whose OAuth access tokens edge-c validates itself (edge-c/oauth_validator.h).
struct OAuthClusterConfig {
    std::string name;
    std::string deployment = "default";
    std::string issuer;    // the inner token's `iss` must equal it
    std::string keys_file; // JWKS: RSA public signing keys and `oct` encryption keys, each with a `kid`
    // The second key source (edge-c/oauth_keys.h): the same JWKS fetched over HTTPS when discovery runs and
    // on every refresh. Exactly one of keys_file and keys_fetch.url is set.
    struct Fetch {
        std::string url; // https://host[:port]/path
        std::string host;
        uint16_t port = 443;
        std::string path;
        std::string username;
        std::string password;
        std::string password_file;
        bool tls_verify = true;
    } keys_fetch;
    // Unified CM has SIP OAuth mode on (Expressway X12.5+ builds "CEOAuth" zones then): a REGISTER through
    // the edge must carry this cluster's access token, and binds its flow to the token's user (issue #15).
    bool sip_oauth = false;
};

struct OAuthConfig {
    bool enabled = false; // true when any cluster is configured
    std::vector<OAuthClusterConfig> clusters;
    Duration clock_skew = std::chrono::seconds(30);
    // A valid token's user must still exist on Unified CM (the MRA access policy's cached AXL look-up) on
    // HTTP and XMPP. mra_policy.enabled implies it (an unknown user is No service there); off by default
    // without it, so an upgrade adds no AXL traffic nobody asked for. SIP OAuth looks the user up for its
    // devices anyway.
    bool require_active_user = false;
};

// Per-user MRA access policy (issue #15, edge-c/mra_access_policy.h): read from Unified CM's user profile
// over AXL, cached, enforced per service and device class.
enum class UnknownDeviceClass { Strictest, Desktop, Mobile };
struct MraPolicyConfig {
    bool enabled = false;
    Duration cache_ttl = std::chrono::seconds(300);
    // A client whose class cannot be told: the stricter of the user's two policies, or one of them.
    UnknownDeviceClass unknown_device_class = UnknownDeviceClass::Strictest;
    // Unified CM did not answer the look-up: refuse (503 / SIP 503 / no XMPP stream), or let it through.
    bool allow_on_lookup_error = false;
    std::string axl_version = "14.0";
};

// The SAML 2.0 service provider role of the pair (edge-c/saml_sp.h, docs/SECURITY.md "Single sign-on").
struct SamlIdpConfig {
    std::string name;          // what domains[].idp names
    std::string metadata_file; // the IdP's SAML 2.0 metadata (EntityDescriptor), imported as is
};
struct SsoConfig {
    // seeds/002 "Check for Internal SSO Availability": get_edge_sso asks the user's home cluster (true)
    // or answers true for every user of an SSO domain (false). The same key exists on edge-e.
    bool check_internal_availability = true;
    // The service provider's entity ID in the exported metadata and the AuthnRequests; one per edge-c peer.
    // Default: https://<node_name>/saml/sp.
    std::string entity_id;
    // Signs the AuthnRequests and is published in the exported metadata. Required once a domain has SSO.
    CertKey signing;
    // AuthnRequests are signed RSA-SHA256 (seeds/002: SHA-256 by default since X8.5.1). The guide's SHA-1
    // choice is not offered: liblasso does not export a per-server digest setting.
    // The edge-e peers the IdP sends browsers back to, as host[:port] (port 8443 by default): each becomes
    // an assertion consumer URL https://host:port/<b64 domain>/fedlet in the metadata. Default: the hosts of
    // link.peers. An assertion must name, as its recipient, the consumer of the edge-e that received it.
    std::vector<std::string> edge_e_addresses;
    std::vector<SamlIdpConfig> identity_providers;
    Duration clock_skew = std::chrono::seconds(60);
    // How long an AuthnRequest this edge sent stays answerable (its ID is the assertion's InResponseTo).
    Duration request_lifetime = std::chrono::minutes(10);
    // seeds/002 "SIP token extra time-to-live": an edge token on a REGISTER (edge-c/sip_access.h) stays
    // valid this long past credentials.refresh_interval, so that a signed-in user can still take calls for a
    // while after the token expired. HTTP and XMPP get no extra time.
    Duration sip_token_extra_ttl = std::chrono::seconds(0);
    // sso_tokens: unified_cm: the OAuth client id sent with the assertion grant when the client's authorize
    // query named none (the client's own client_id= wins). Empty: such a sign-in is refused at authorize.
    std::string oauth_client_id;
};

struct EdgeCHttpConfig {
    Duration upstream_timeout = std::chrono::seconds(30); // request sent -> the node's response head
    // Idle upstream connections each worker keeps per origin (scheme, host, port). A client's keep-alive
    // requests arrive on whichever link stream is free, so a worker needs about as many idle connections to a
    // busy node as it has concurrent requests to it; fewer means a new TCP+TLS connection (and a DNS query)
    // for most requests under load (issue #18). An HTTP/2 client alone can have 100 requests in flight. The
    // pool hands out its most recently used connection first, so connections beyond what recent load needed
    // stay unused and close after upstream_idle_timeout: this cap bounds the peak, not the steady state
    // (HAProxy's server pools have no cap by default). 0 turns pooling off.
    uint64_t upstream_idle_per_origin = 256;
    Duration upstream_idle_timeout =
        std::chrono::seconds(60); // a pooled connection unused this long is closed
};

struct SipConfig {
    bool path_headers = false;
    // Largest message edge-c sends to a Unified CM node (after adding its own headers); a larger one gets
    // 513 to the client instead of making the node close the connection every client flow shares.
    // Unified CM's "SIP Max Incoming Message Size" service parameter defaults to 11,000 bytes.
    uint64_t max_message_to_node = 11000;
};

struct EdgeCConfig {
    std::string node_name;
    unsigned workers = 0;
    LogConfig log;
    AdminConfig admin{Address{Address::Kind::IPv4, "127.0.0.1", 9902}};
    EdgeCTlsConfig tls;
    LinkClientConfig link;
    DnsConfig dns;
    DiscoveryConfig discovery;
    std::vector<std::string> deployments{"default"}; // "default" always first
    std::vector<DomainConfig> domains;
    AllowListConfig allow_list;
    CredentialsConfig credentials;
    OAuthConfig oauth;
    MraPolicyConfig mra_policy;
    SsoConfig sso;
    EdgeCHttpConfig http;
    SipConfig sip;
    LimitsConfig limits; // client_idle_timeout / max_connections unused on edge-c
    std::optional<EdgeCMediaConfig> media;
    EdgeCFederationConfig federation; // issue #19
    ClusterConfig cluster;            // issue #17
    SourceMap source;
};

// The single sign-on mode that governs password checks for `domain` (HTTP Basic and the edge tokens a
// password bought, a SIP REGISTER without a token, an XMPP sign-in without a token): the strictest mode among
// the domains of its deployment. Unified CM users are not bound to a domain, so a password refused on an
// Exclusive domain would otherwise be accepted for the same user through any other domain of that deployment
// (the same Unified CM). Off for a domain not configured. Everything else per domain (the SSO paths,
// get_edge_sso, the IdP) keeps the domain's own mode. The one owner of this rule: every credential path asks
// it.
SsoMode credential_sso_mode(const EdgeCConfig& cfg, std::string_view domain);

// See edge_e_config.h for the contract of the three functions.
EdgeCConfig parse_edge_c_config(const std::string& path, Diagnostics& diag);
void validate(EdgeCConfig& cfg, Diagnostics& diag);
Result<EdgeCConfig> load_edge_c_config(const std::string& path, Diagnostics* diag = nullptr);

} // namespace edgepair::config
