#pragma once
// Value types shared by both edges' configs. Plain data: parsing lives in yaml_reader / common_config.
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <utility>

namespace edgepair::config {

using Duration = std::chrono::milliseconds;

struct Address {
    enum class Kind { Any, IPv4, IPv6, Name };
    Kind kind = Kind::Any;
    std::string host; // without brackets for IPv6; empty for Any ("*")
    uint16_t port = 0;

    // "host:port", "[v6]:port", "*:port".
    std::string str() const;
    bool is_ip() const { return kind == Kind::IPv4 || kind == Kind::IPv6; }
    friend bool operator==(const Address&, const Address&) = default;
};

enum class LogLevel { Trace, Debug, Info, Warn, Error };
enum class LogFormat { Text, Json };
enum class TlsVersion { V1_2, V1_3 };

const char* to_string(LogLevel);
const char* to_string(LogFormat);
const char* to_string(TlsVersion);

// `log.access`: one line per HTTP request / SIP transaction and flow / XMPP stream (common/obs/access_log.h).
struct AccessLogConfig {
    bool enabled = false;
    LogFormat format = LogFormat::Text;
    std::string file; // resolved path; empty: stderr
};

struct LogConfig {
    LogLevel level = LogLevel::Info;
    LogFormat format = LogFormat::Text;
    std::map<std::string, LogLevel> modules; // per-module override, e.g. {"link": Debug}
    AccessLogConfig access;
};

struct AdminConfig {
    AdminConfig() = default;
    explicit AdminConfig(Address l) : listen(std::move(l)) {}
    Address listen; // default set per edge (edge-e 127.0.0.1:9901, edge-c 127.0.0.1:9902)
    // HTTP Basic credentials, required when `listen` is not loopback. The hash is an auth database line
    // without its "user:" prefix (pbkdf2-sha256:<iterations>:<salt hex>:<hash hex>; edge-e --hash-password).
    std::string username;
    std::string password_hash;
};

struct CertKey {
    std::string cert; // absolute or relative-to-cwd path, already resolved against the config's directory
    std::string key;
};

} // namespace edgepair::config
