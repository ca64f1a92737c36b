#pragma once
// edge-e (DMZ side) configuration: conf/edge-e.yaml. Reference: docs/CONFIG.md.
#include <array>
#include <optional>
#include <string>
#include <vector>

#include "common/config/common_config.h"
#include "common/config/diagnostics.h"
#include "common/config/federation_config.h"
#include "common/config/media_config.h"
#include "common/config/types.h"
#include "common/core/result.h"
#include "common/net/network.h"
#include "common/protection/category.h"

namespace edgepair::config {

struct SniCertificate {
    CertKey files;
    // Names this certificate is chosen for (exact or "*.example.org"). When the YAML leaves them out,
    // validate() fills them from the certificate's DNS SANs and sets domains_from_san.
    std::vector<std::string> domains;
    bool domains_from_san = false;
};

struct EdgeETlsConfig {
    CertKey default_certificate;
    std::vector<SniCertificate> certificates;
    std::string trusted_cas; // verifies edge-c on the link and, when asked for, client certificates
    TlsVersion min_version = TlsVersion::V1_2;
    bool session_tickets = true;
    // A new session-ticket key this often; the previous one still resumes (common/net/ticket_keys.h).
    Duration session_ticket_rotation = std::chrono::hours(1);
    std::string ciphers;      // TLS 1.2 cipher list (OpenSSL syntax); empty = library default
    std::string ciphersuites; // TLS 1.3 suites; empty = library default
};

enum class ClientCertMode { None, Optional, Required };
const char* to_string(ClientCertMode);

struct HttpsListenerConfig {
    Address listen{Address::Kind::Any, "", 8443};
};
struct SipTlsListenerConfig {
    Address listen{Address::Kind::Any, "", 5061};
    ClientCertMode client_certificates = ClientCertMode::None;
    // Largest SIP message a client may send (issue #14 item 7): larger ones get 513 and are skipped.
    // 10,000 leaves edge-c room for its Via, Record-Route and Contact below Unified CM's 11,000-byte
    // default incoming limit (see edge-c's sip.max_message_to_node).
    uint64_t max_message_size = 10000;
};
struct XmppListenerConfig {
    Address listen{Address::Kind::Any, "", 5222};
};

// A listener section absent from the YAML is disabled; present (even empty) enables it with defaults.
struct ListenersConfig {
    std::optional<HttpsListenerConfig> https;
    std::optional<SipTlsListenerConfig> sip_tls;
    std::optional<XmppListenerConfig> xmpp;
};

struct LinkServerConfig {
    Address listen{Address::Kind::Any, "", 7001};
    std::string tls_verify_subject_name; // must be in the edge-c certificate's SAN
    std::string auth_database;           // resolved path; see auth_db.h
    Duration ping_interval = std::chrono::seconds(10);
    Duration ping_timeout = std::chrono::seconds(20);
};

// The HTTP edge on 8443 (both HTTP/1.1 and HTTP/2).
struct HttpRateLimitConfig {
    bool enabled = true;
    uint32_t requests_per_second = 50; // refill rate per client address (IPv6: per /64)
    uint32_t burst = 200;              // requests a client may send at once before the rate applies
};

// What edge-e does with an HTTP/1.1 client's EOF while it has a request to answer (http.client_half_close).
enum class HalfClose { Abort, Serve };

struct HttpEdgeConfig {
    // How long edge-e waits for edge-c's response head once a request is on the link. Longer than edge-c's
    // http.upstream_timeout, so that edge-c's own 504 (which names the upstream) normally arrives first.
    Duration response_timeout = std::chrono::seconds(35);
    uint32_t max_concurrent_streams = 100; // HTTP/2 streams per client connection
    // A request (or SIP/XMPP flow) whose worker has no link up waits this long for one before 503.
    Duration link_wait = std::chrono::seconds(5);
    // An HTTP/1.1 request head (and the TLS handshake before the first) must be complete within this: 408.
    Duration request_head_timeout = std::chrono::seconds(10);
    // Link streams one client address (IPv4 address, IPv6 /64) may hold at once on one worker.
    uint32_t max_link_streams_per_client = 256;
    // A client holding a link stream that neither sends its request nor reads its answer for this long is
    // cut.
    Duration client_stall_timeout = std::chrono::seconds(30);
    // An HTTP/1.1 client's EOF (TCP FIN or TLS close_notify) while a request of its is read or in flight.
    // A FIN cannot tell a client that gave up from one that shut only its sending side (ncat, socat), so the
    // choice is the operator's: Abort (nginx's default) cancels the request at once and spares Unified CM
    // the work of clients that left; Serve (HAProxy's) answers what was sent, then closes.
    HalfClose client_half_close = HalfClose::Abort;
    HttpRateLimitConfig rate_limit;
};

// Single sign-on over the edge as edge-e sees it (seeds/002: "Select the same value on the Expressway-C and
// Expressway-E"). edge-e answers get_edge_sso itself when the internal check is off, and refuses the SSO
// paths (/<b64 domain>/authorize, /fedlet) of a domain whose mode is off without using the link.
struct SsoDomainConfig {
    std::string name; // lower-case
    SsoMode mode = SsoMode::Off;
};
struct EdgeESsoConfig {
    bool check_internal_availability = true; // false: get_edge_sso is answered here, true for SSO domains
    std::vector<SsoDomainConfig> domains;    // a domain not listed is off
    SsoMode mode_of(std::string_view domain) const;
};

// Automated intrusion protection (issue #17; docs/CONFIG.md `protection`, docs/SECURITY.md).
struct ProtectionConfig {
    bool enabled = true; // false: nothing is counted and nobody is banned
    // Indexed by protection::Category; YAML keys are the category names (http-ce-auth, ...).
    std::array<protection::Rule, protection::kCategoryCount> categories = protection::default_rules();
    // Sources never counted nor banned. Loopback is not exempt unless listed.
    std::vector<net::Network> exempt;
    uint32_t max_tracked = 65536; // (address, category) pairs counted at once
};

struct EdgeEConfig {
    std::string node_name;
    unsigned workers = 0; // 0 = auto (hardware_concurrency)
    LogConfig log;
    AdminConfig admin{Address{Address::Kind::IPv4, "127.0.0.1", 9901}};
    EdgeETlsConfig tls;
    ListenersConfig listeners;
    LinkServerConfig link;
    LimitsConfig limits;
    HttpEdgeConfig http;
    EdgeESsoConfig sso;
    std::optional<EdgeEMediaConfig> media;
    EdgeEFederationConfig federation; // issue #19
    ProtectionConfig protection;      // issue #17
    ClusterConfig cluster;            // issue #17 (common_config.h); redis only here
    SourceMap source;                 // file and key lines, for validation messages
};

// Syntax and types only; every problem goes to diag. Returns the config even when diag has errors
// (fields that failed keep their defaults / empty paths).
EdgeEConfig parse_edge_e_config(const std::string& path, Diagnostics& diag);
// Whole-config checks after parsing (HAProxy's check_config_validity): certificates load and match their
// keys, usages and SANs, the CA file and auth database load, cross-field rules. Fills derived values
// (SNI domains from SANs). Errors and warnings go to diag.
void validate(EdgeEConfig& cfg, Diagnostics& diag);
// parse + validate. On failure the Error's message is every error, one `file:line: key: message` a line.
// Warnings (and errors) are also copied to *diag when given.
Result<EdgeEConfig> load_edge_e_config(const std::string& path, Diagnostics* diag = nullptr);

} // namespace edgepair::config
