#pragma once
// Sections both edges share (log, admin, workers, TLS files, limits) and the helpers the two edge parsers
// and validation passes use. The structs are plain data with their defaults in the member initialisers,
// so "absent from the YAML" and "default" are the same thing (nginx's create/merge, without the merge).
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/config/diagnostics.h"
#include "common/config/types.h"
#include "common/config/yaml_reader.h"
#include "common/net/x509_check.h"

namespace edgepair::config {

struct LimitsConfig {
    uint64_t max_header_bytes = 16 * 1024;
    uint64_t max_body_bytes = 100 * 1024 * 1024;
    uint64_t max_sip_message = 64 * 1024;
    uint64_t max_xmpp_stanza = 64 * 1024;
    Duration client_idle_timeout = std::chrono::minutes(10); // edge-e only
    uint32_t max_connections = 100000;                       // edge-e only
};

inline constexpr unsigned kMaxWorkers = 64;

// The cluster this edge belongs to (issue #17; docs/CONFIG.md `cluster`). edge-c announces its name to every
// edge-e peer when a link opens (common/link/peer_config.h) and edge-e reports a peer whose name differs from
// its own. On edge-e, `redis` makes the peers share intrusion-protection bans (common/cluster); read at
// start only.
struct ClusterRedisConfig {
    Address address; // an IP literal (connecting must never wait on a resolver); port 6379 by default
    // Or Sentinel-managed: the sentinels (IP literals, port 26379 by default) and the master's name.
    std::vector<Address> sentinels;
    std::string master_name;
    std::string password;      // read from password_file; empty: no AUTH
    std::string password_file; // resolved path; empty: none
    int db = 0;
    Duration timeout = std::chrono::seconds(2); // connect, and an unanswered PING
    friend bool operator==(const ClusterRedisConfig&, const ClusterRedisConfig&) = default;
};
struct ClusterConfig {
    // Letters, digits and . _ -, up to 64; empty = not named. With redis it is the key prefix
    // (edgepair:<name>:), so it is required there.
    std::string name;
    // edge-e: shared bans; edge-c: shared sign-in state. Absent: each peer keeps its own.
    std::optional<ClusterRedisConfig> redis;
    // edge-c only, with redis: the node_name of the peer that runs discovery; the others take its result
    // from Redis and never ask the publishers themselves (Expressway's configuration primary). Empty: every
    // peer discovers, and the newest result of each publisher is shared.
    std::string discovery_primary;
    friend bool operator==(const ClusterConfig&, const ClusterConfig&) = default;
};

// Single sign-on over the edge, per domain (seeds/002 "Understanding the SSO options for MRA"): Off
// (credentials through the pair only), On (the IdP or credentials), Exclusive (the IdP only). "Select the
// same value on the Expressway-C and Expressway-E": both edges read it from their own config.
enum class SsoMode { Off, On, Exclusive };
const char* to_string(SsoMode);
// Reads `key` of `m` as off | on | exclusive (YAML 1.1's on/off arrive as plain scalars here).
void read_sso_mode(const Map& m, std::string_view key, SsoMode& out);

// ---- parse helpers (record errors in the node's Reader, keep defaults on error) ----

void parse_log(const Node& n, LogConfig& out);
// Both edges: edge-e shares intrusion-protection bans through `redis`, edge-c its peers' sign-in state
// (edge-c/cluster_signin.h).
// `edge_c`: the keys only edge-c takes (discovery_primary) are accepted.
void parse_cluster(const Node& n, ClusterConfig& out, bool edge_c = false);
void parse_admin(const Node& n, AdminConfig& out);
// "auto" -> 0 (the runtime picks hardware_concurrency), else 1..64.
void parse_workers(const Node& n, unsigned& out);
// Reads the required "cert" and "key" of an already opened mapping.
void read_cert_key(const Map& m, CertKey& out);
void parse_cert_key(const Node& n, CertKey& out);
// `password: "..."` or `password_file: path` (exactly one). The file's first line becomes the password.
void read_secret(const Map& m, std::string& password, std::string& password_file);
void parse_limits(const Node& n, LimitsConfig& out, bool client_side);
void read_tls_version(const Map& m, std::string_view key, TlsVersion& out);

// ---- validation helpers (paths are already resolved; empty = failed to parse, skip silently) ----

// Loads the certificate, checks the key matches and the usage; returns its facts on success.
std::optional<net::CertInfo> validate_cert_key(const SourceMap& src, Diagnostics& diag,
                                               const std::string& path, const CertKey& ck,
                                               std::initializer_list<net::Eku> ekus);
void validate_ca_file(const SourceMap& src, Diagnostics& diag, const std::string& path,
                      const std::string& file);
// Warns when a certificate expires within 30 days (or has expired).
void warn_expiry(const SourceMap& src, Diagnostics& diag, const std::string& path, const net::CertInfo& info);

// The admin endpoint has unauthenticated actions: say so when it listens beyond loopback.
void warn_admin_exposure(const SourceMap& src, Diagnostics& diag, const AdminConfig& admin);

void error_at(const SourceMap& src, Diagnostics& diag, const std::string& key, std::string message);
void warn_at(const SourceMap& src, Diagnostics& diag, const std::string& key, std::string message);

} // namespace edgepair::config
