#include "common/config/common_config.h"

#include <algorithm>
#include <cctype>
#include <fstream>

#include "common/config/auth_db.h"

namespace edgepair::config {

namespace {

constexpr EnumName<LogLevel> kLevels[] = {{"trace", LogLevel::Trace},
                                          {"debug", LogLevel::Debug},
                                          {"info", LogLevel::Info},
                                          {"warn", LogLevel::Warn},
                                          {"error", LogLevel::Error}};
constexpr EnumName<LogFormat> kFormats[] = {{"text", LogFormat::Text}, {"json", LogFormat::Json}};
constexpr EnumName<TlsVersion> kTlsVersions[] = {{"1.2", TlsVersion::V1_2}, {"1.3", TlsVersion::V1_3}};

bool valid_module_name(std::string_view s) {
    if (s.empty() || s.size() > 32) return false;
    for (char c : s)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return false;
    return true;
}

} // namespace

void parse_log(const Node& n, LogConfig& out) {
    auto m = n.as_map({"level", "format", "modules", "access"});
    m.enumeration<LogLevel>("level", out.level, kLevels);
    m.enumeration<LogFormat>("format", out.format, kFormats);
    if (auto acc = m.get("access")) {
        auto am = acc->as_map({"enabled", "format", "file"});
        // `access:` alone turns it on with the defaults, like the listeners' sections.
        out.access.enabled = true;
        am.boolean("enabled", out.access.enabled);
        am.enumeration<LogFormat>("format", out.access.format, kFormats);
        if (auto f = am.get("file")) {
            auto v = f->as_string();
            if (v && *v != "stderr") {
                if (auto p = f->as_path()) out.access.file = *p;
            }
        }
    }
    if (auto mods = m.get("modules")) {
        // Module names are open-ended (each subsystem names itself), so any well-formed word is accepted.
        auto mm = mods->as_open_map();
        for (const auto& [name, value] : mm.items()) {
            if (!valid_module_name(name)) {
                value.error("invalid module name \"" + name + "\" (lower-case letters, digits, '_', '-')");
                continue;
            }
            if (auto lvl = value.as_enum<LogLevel>(kLevels)) out.modules[name] = *lvl;
        }
    }
}

namespace {

// Letters, digits, '.', '_' and '-': the name travels in a link header compared byte for byte and becomes
// part of Redis key names and a SCAN pattern, where '*', '?', '[' and spaces would mean something else.
bool valid_cluster_name(const std::string& s) {
    return s.size() <= 64 && std::all_of(s.begin(), s.end(), [](unsigned char c) {
               return std::isalnum(c) || c == '.' || c == '_' || c == '-';
           });
}

void parse_cluster_redis(const Node& r, ClusterRedisConfig& out) {
    auto rm = r.as_map({"address", "sentinels", "master_name", "password_file", "db", "timeout"});
    if (!rm.valid()) return;
    auto sentinels = rm.get("sentinels");
    if (sentinels && rm.has("address")) {
        sentinels->error("address and sentinels are mutually exclusive: set only one");
    } else if (sentinels) {
        if (auto items = sentinels->as_seq()) {
            if (items->empty() || items->size() > 16) sentinels->error("expected 1 to 16 sentinel addresses");
            for (const auto& item : *items)
                if (auto a = item.as_address(
                        {.allow_hostname = false, .allow_any = false, .default_port = 26379})) {
                    if (std::find(out.sentinels.begin(), out.sentinels.end(), *a) != out.sentinels.end())
                        item.error("duplicate sentinel " + a->str());
                    else
                        out.sentinels.push_back(*a);
                }
        }
        if (auto mn = rm.require("master_name")) {
            if (auto v = mn->as_string()) {
                if (v->empty() || v->size() > 128 || v->find_first_of(" \t\r\n") != std::string::npos)
                    mn->error("invalid master name \"" + *v + "\"");
                else
                    out.master_name = *v;
            }
        }
    } else {
        rm.address("address", out.address,
                   AddressRules{.allow_hostname = false, .allow_any = false, .default_port = 6379}, true);
        if (auto mn = rm.get("master_name")) mn->error("master_name needs sentinels");
    }
    if (rm.has("password_file")) read_secret(rm, out.password, out.password_file);
    rm.integer("db", out.db, 0, 255);
    rm.duration("timeout", out.timeout, std::chrono::milliseconds(100), std::chrono::minutes(1));
}

} // namespace

void parse_cluster(const Node& n, ClusterConfig& out, bool edge_c) {
    auto m = edge_c ? n.as_map({"name", "redis", "discovery_primary"}) : n.as_map({"name", "redis"});
    if (!m.valid()) return;
    bool name_error = false;
    auto v = m.get("name");
    if (v)
        if (auto name = v->as_string(true)) {
            if (valid_cluster_name(*name)) {
                out.name = *name;
            } else {
                name_error = true;
                v->error("invalid cluster name \"" + *name +
                         "\" (letters, digits and . _ -, up to 64 characters)");
            }
        }
    if (auto p = m.get("discovery_primary")) {
        if (auto name = p->as_string(true)) {
            if (name->empty() || name->size() > 253 || name->find_first_of(" \t\r\n\"'") != std::string::npos)
                p->error("discovery_primary must be a peer's node_name");
            else if (!m.get("redis"))
                p->error(
                    "discovery_primary needs cluster.redis (the result reaches the other peers through it)");
            else
                out.discovery_primary = *name;
        }
    }
    if (auto r = m.get("redis")) {
        parse_cluster_redis(*r, out.redis.emplace());
        if (out.name.empty() && !name_error) {
            const char* why = "a cluster name is required with redis (it prefixes the cluster's Redis keys)";
            if (v)
                v->error(why);
            else
                m.node().error(why);
        }
    }
}

void parse_admin(const Node& n, AdminConfig& out) {
    auto m = n.as_map({"listen", "username", "password_hash"});
    m.address("listen", out.listen,
              AddressRules{.allow_hostname = false, .allow_any = true, .default_port = std::nullopt});
    if (auto u = m.get("username"))
        if (auto v = u->as_string()) {
            if (valid_auth_username(*v))
                out.username = *v;
            else
                u->error("invalid user name \"" + *v + "\" (letters, digits and . _ @ -, 1..64 characters)");
        }
    if (auto h = m.get("password_hash"))
        if (auto v = h->as_string()) {
            if (parse_auth_db("admin:" + *v, "admin.password_hash"))
                out.password_hash = *v;
            else
                h->error(
                    "expected pbkdf2-sha256:<iterations>:<salt hex>:<hash hex> (the part after \"user:\" "
                    "of what `edge-e --hash-password USER` prints)");
        }
}

void parse_workers(const Node& n, unsigned& out) {
    if (n.is_scalar()) {
        auto v = n.as_string();
        if (!v) return;
        std::string l = *v;
        std::transform(l.begin(), l.end(), l.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        if (l == "auto") {
            out = 0;
            return;
        }
        if (l.empty() || !std::all_of(l.begin(), l.end(), [](char c) { return c >= '0' && c <= '9'; })) {
            n.error("expected \"auto\" or an integer 1.." + std::to_string(kMaxWorkers) + ", got \"" + *v +
                    "\"");
            return;
        }
    }
    if (auto v = n.as_int(1, kMaxWorkers)) out = static_cast<unsigned>(*v);
}

void read_cert_key(const Map& m, CertKey& out) {
    m.readable_file("cert", out.cert, true);
    m.readable_file("key", out.key, true);
}

void parse_cert_key(const Node& n, CertKey& out) {
    read_cert_key(n.as_map({"cert", "key"}), out);
}

void read_secret(const Map& m, std::string& password, std::string& password_file) {
    auto pw = m.get("password");
    auto pf = m.get("password_file");
    if (pw && pf) {
        pf->error("password and password_file are mutually exclusive: set only one");
        return;
    }
    if (!pw && !pf) {
        if (m.valid()) {
            const Node& self = m.node();
            self.reader().diag().error(self.reader().file(), self.key_line(),
                                       join_path(self.path(), "password"),
                                       "one of password or password_file is required");
        }
        return;
    }
    if (pw) {
        if (auto v = pw->as_string()) password = *v;
        return;
    }
    auto path = pf->as_readable_file();
    if (!path) return;
    std::ifstream in(*path);
    std::string line;
    std::getline(in, line);
    // Editors and `echo` add line endings; they are never part of a secret.
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t'))
        line.pop_back();
    if (line.empty()) {
        pf->error("password file \"" + *path + "\" is empty");
        return;
    }
    password_file = *path;
    password = line;
}

void parse_limits(const Node& n, LimitsConfig& out, bool client_side) {
    constexpr uint64_t KiB = 1024, MiB = 1024 * KiB, GiB = 1024 * MiB;
    auto m = client_side
                 ? n.as_map({"max_header_bytes", "max_body_bytes", "max_sip_message", "max_xmpp_stanza",
                             "client_idle_timeout", "max_connections"})
                 : n.as_map({"max_header_bytes", "max_body_bytes", "max_sip_message", "max_xmpp_stanza"});
    m.size("max_header_bytes", out.max_header_bytes, 1 * KiB, 1 * MiB);
    m.size("max_body_bytes", out.max_body_bytes, 0, 4 * GiB);
    m.size("max_sip_message", out.max_sip_message, 4 * KiB, 1 * MiB);
    m.size("max_xmpp_stanza", out.max_xmpp_stanza, 4 * KiB, 16 * MiB);
    if (client_side) {
        m.duration("client_idle_timeout", out.client_idle_timeout, std::chrono::seconds(1),
                   std::chrono::hours(24));
        m.integer("max_connections", out.max_connections, 1, 10'000'000);
    }
}

void read_tls_version(const Map& m, std::string_view key, TlsVersion& out) {
    m.enumeration<TlsVersion>(key, out, kTlsVersions);
}

void error_at(const SourceMap& src, Diagnostics& diag, const std::string& key, std::string message) {
    diag.error(src.file, src.line_of(key), key, std::move(message));
}

void warn_at(const SourceMap& src, Diagnostics& diag, const std::string& key, std::string message) {
    diag.warn(src.file, src.line_of(key), key, std::move(message));
}

std::optional<net::CertInfo> validate_cert_key(const SourceMap& src, Diagnostics& diag,
                                               const std::string& path, const CertKey& ck,
                                               std::initializer_list<net::Eku> ekus) {
    if (ck.cert.empty()) return std::nullopt;
    auto info = net::load_cert_info(ck.cert);
    if (!info) {
        error_at(src, diag, path + ".cert", info.error().message);
        return std::nullopt;
    }
    bool ok = true;
    if (!ck.key.empty()) {
        if (auto r = net::check_key_pair(ck.cert, ck.key); !r) {
            error_at(src, diag, path + ".key", r.error().message);
            ok = false;
        }
    }
    // Checking two usages would report a missing SAN (or expiry) twice.
    std::vector<std::string> reasons;
    for (auto eku : ekus)
        if (auto why = net::check_usage(*info, eku); !why.empty())
            if (std::find(reasons.begin(), reasons.end(), why) == reasons.end()) reasons.push_back(why);
    for (auto& why : reasons)
        error_at(src, diag, path + ".cert", std::move(why));
    ok = ok && reasons.empty();
    if (info->not_after_days >= 0) warn_expiry(src, diag, path + ".cert", *info);
    if (!ok) return std::nullopt;
    return *info;
}

void validate_ca_file(const SourceMap& src, Diagnostics& diag, const std::string& path,
                      const std::string& file) {
    if (file.empty()) return;
    if (auto r = net::check_ca_file(file); !r) error_at(src, diag, path, r.error().message);
}

void warn_admin_exposure(const SourceMap& src, Diagnostics& diag, const AdminConfig& admin) {
    const auto& a = admin.listen;
    bool loopback = (a.kind == Address::Kind::IPv4 && a.host.starts_with("127.")) ||
                    (a.kind == Address::Kind::IPv6 && a.host == "::1");
    if (admin.username.empty() != admin.password_hash.empty()) {
        const char* missing = admin.username.empty() ? "admin.username" : "admin.password_hash";
        error_at(src, diag, missing,
                 std::string(missing) + " is required with " +
                     (admin.username.empty() ? "admin.password_hash" : "admin.username"));
        return;
    }
    // The admin port shows the whole deployment and takes actions (imports, refreshes): beyond this host
    // it must not be open to anyone who can reach it.
    if (!loopback && admin.password_hash.empty())
        error_at(src, diag, "admin.listen",
                 a.str() + " is reachable beyond this host: set admin.username and admin.password_hash (the "
                           "admin endpoint then asks for them), or listen on loopback");
}

void warn_expiry(const SourceMap& src, Diagnostics& diag, const std::string& path,
                 const net::CertInfo& info) {
    if (info.not_after_days < 0)
        warn_at(src, diag, path, "certificate has expired");
    else if (info.not_after_days < 30)
        warn_at(src, diag, path, "certificate expires in " + std::to_string(info.not_after_days) + " days");
}

const char* to_string(SsoMode m) {
    switch (m) {
    case SsoMode::Off:
        return "off";
    case SsoMode::On:
        return "on";
    case SsoMode::Exclusive:
        return "exclusive";
    }
    return "off";
}

void read_sso_mode(const Map& m, std::string_view key, SsoMode& out) {
    static constexpr EnumName<SsoMode> kModes[] = {
        {"off", SsoMode::Off}, {"on", SsoMode::On}, {"exclusive", SsoMode::Exclusive}};
    m.enumeration<SsoMode>(key, out, kModes);
}

} // namespace edgepair::config
