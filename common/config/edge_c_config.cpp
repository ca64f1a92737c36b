#include "common/config/edge_c_config.h"

#include <algorithm>
#include <charconv>
#include <filesystem>

#include <pugixml.hpp>

#include "common/config/auth_db.h"
#include "common/config/yaml_reader.h"

namespace edgepair::config {

namespace {

constexpr EnumName<HttpMethod> kMethods[] = {{"GET", HttpMethod::Get},
                                             {"POST", HttpMethod::Post},
                                             {"PUT", HttpMethod::Put},
                                             {"DELETE", HttpMethod::Delete},
                                             {"HEAD", HttpMethod::Head}};
// Methods are matched case-insensitively by the reader (it lower-cases), so list lower-case spellings too.
constexpr EnumName<HttpMethod> kMethodsLower[] = {{"get", HttpMethod::Get},
                                                  {"post", HttpMethod::Post},
                                                  {"put", HttpMethod::Put},
                                                  {"delete", HttpMethod::Delete},
                                                  {"head", HttpMethod::Head}};
constexpr EnumName<MatchKind> kMatch[] = {{"prefix", MatchKind::Prefix}, {"exact", MatchKind::Exact}};

// The shape edge-c's SAML service provider needs from an IdP's metadata (edge-c/saml_sp.cpp imports it with
// liblasso at start): an EntityDescriptor with an entityID and an IDPSSODescriptor that has an HTTP-Redirect
// SingleSignOnService and a signing certificate. Checked here too so that `--check` reports a wrong file.
// Empty: fine; else what is wrong.
std::string idp_metadata_problem(const std::string& path) {
    pugi::xml_document doc;
    auto r = doc.load_file(path.c_str(), pugi::parse_default & ~pugi::parse_doctype);
    if (!r) return std::string("not XML: ") + r.description();
    auto local = [](const pugi::xml_node& n) {
        std::string_view name = n.name();
        auto colon = name.find(':');
        return colon == std::string_view::npos ? name : name.substr(colon + 1);
    };
    auto root = doc.document_element();
    if (local(root) != "EntityDescriptor")
        return "not SAML 2.0 metadata: the root is not an EntityDescriptor";
    if (std::string_view(root.attribute("entityID").value()).empty())
        return "the EntityDescriptor has no entityID";
    for (auto idp : root.children()) {
        if (local(idp) != "IDPSSODescriptor") continue;
        bool redirect = false, cert = false;
        for (auto c : idp.children()) {
            if (local(c) == "SingleSignOnService" && std::string_view(c.attribute("Binding").value()) ==
                                                         "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect")
                redirect = true;
            if (local(c) == "KeyDescriptor" && std::string_view(c.attribute("use").value()) != "encryption")
                for (auto ki : c.children())
                    for (auto xd : ki.children())
                        for (auto x : xd.children())
                            cert = cert || local(x) == "X509Certificate";
        }
        if (!redirect) return "the IDPSSODescriptor has no HTTP-Redirect SingleSignOnService";
        if (!cert) return "the IDPSSODescriptor has no signing certificate (KeyDescriptor/X509Certificate)";
        return "";
    }
    return "no IDPSSODescriptor: this is not an identity provider's metadata";
}

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

void parse_tls(const Node& n, EdgeCTlsConfig& out) {
    auto m = n.as_map({"certificate", "trusted_cas", "min_version", "ciphers", "ciphersuites"});
    if (auto c = m.require("certificate")) parse_cert_key(*c, out.certificate);
    m.readable_file("trusted_cas", out.trusted_cas, true);
    read_tls_version(m, "min_version", out.min_version);
    m.string("ciphers", out.ciphers);
    m.string("ciphersuites", out.ciphersuites);
}

void parse_link(const Node& n, LinkClientConfig& out) {
    auto m = n.as_map({"peers", "username", "password", "password_file", "reconnect_min", "reconnect_max",
                       "ping_interval", "ping_timeout", "max_streams"});
    if (auto p = m.require("peers")) {
        if (auto items = p->as_seq()) {
            for (const auto& item : *items)
                if (auto a =
                        item.as_address({.allow_hostname = true, .allow_any = false, .default_port = 7001}))
                    out.peers.push_back(*a);
        }
    }
    if (auto u = m.require("username")) {
        if (auto v = u->as_string()) {
            if (valid_auth_username(*v))
                out.username = *v;
            else
                u->error("invalid username \"" + *v + "\" (letters, digits, '.', '_', '@', '-'; up to 64)");
        }
    }
    read_secret(m, out.password, out.password_file);
    m.duration("reconnect_min", out.reconnect_min, std::chrono::milliseconds(100), std::chrono::minutes(10));
    m.duration("reconnect_max", out.reconnect_max, std::chrono::seconds(1), std::chrono::hours(1));
    m.duration("ping_interval", out.ping_interval, std::chrono::seconds(1), std::chrono::minutes(10));
    m.duration("ping_timeout", out.ping_timeout, std::chrono::seconds(1), std::chrono::minutes(10));
    m.integer("max_streams", out.max_streams, 100, 2'000'000);
}

void parse_dns(const Node& n, DnsConfig& out) {
    auto m = n.as_map({"servers", "timeout", "max_cache_ttl"});
    if (auto s = m.get("servers"))
        if (auto items = s->as_seq())
            for (const auto& item : *items)
                if (auto a =
                        item.as_address({.allow_hostname = false, .allow_any = false, .default_port = 53}))
                    out.servers.push_back(*a);
    m.duration("timeout", out.timeout, std::chrono::milliseconds(100), std::chrono::seconds(60));
    m.duration("max_cache_ttl", out.max_cache_ttl, std::chrono::seconds(0), std::chrono::hours(1));
}

void parse_uc_list(const Node& n, UcKind kind, std::vector<UcServerConfig>& out) {
    auto items = n.as_seq();
    if (!items) return;
    for (const auto& item : *items) {
        UcServerConfig s;
        s.kind = kind;
        s.port = kind == UcKind::UnityConnection ? 443 : 8443;
        auto m = item.as_map(
            {"address", "port", "username", "password", "password_file", "tls_verify", "deployment"});
        if (!m.valid()) continue;
        if (auto a = m.require("address")) {
            if (auto v = a->as_string()) {
                if (is_ip_literal(*v) || valid_dns_name(*v))
                    s.address = lower(*v);
                else
                    a->error("expected a host name or IP address, got \"" + *v + "\"");
            }
        }
        m.integer("port", s.port, 1, 65535);
        m.string("username", s.username, true);
        read_secret(m, s.password, s.password_file);
        m.boolean("tls_verify", s.tls_verify);
        m.string("deployment", s.deployment);
        out.push_back(std::move(s));
    }
}

void parse_discovery(const Node& n, DiscoveryConfig& out) {
    auto m = n.as_map({"state_file", "unified_cm", "im_and_presence", "unity_connection"});
    if (auto s = m.get("state_file"))
        if (auto p = s->as_path()) out.state_file = *p;
    if (auto s = m.get("unified_cm")) parse_uc_list(*s, UcKind::UnifiedCm, out.unified_cm);
    if (auto s = m.get("im_and_presence")) parse_uc_list(*s, UcKind::ImAndPresence, out.im_and_presence);
    if (auto s = m.get("unity_connection")) parse_uc_list(*s, UcKind::UnityConnection, out.unity_connection);
}

void parse_deployments(const Node& n, std::vector<std::string>& out) {
    auto items = n.as_seq();
    if (!items) return;
    for (const auto& item : *items) {
        auto v = item.as_string();
        if (!v) continue;
        if (v->size() > 64) {
            item.error("deployment name longer than 64 characters");
            continue;
        }
        if (std::find(out.begin(), out.end(), *v) != out.end()) {
            // "default" is implicit, so listing it is harmless; any other repeat is a typo.
            if (*v != "default") item.error("duplicate deployment \"" + *v + "\"");
            continue;
        }
        out.push_back(*v);
    }
}

void parse_domains(const Node& n, std::vector<DomainConfig>& out) {
    auto items = n.as_seq();
    if (!items) return;
    for (const auto& item : *items) {
        DomainConfig d;
        auto m = item.as_map({"name", "deployment", "sip", "xmpp", "http", "sso", "idp", "sso_tokens"});
        if (!m.valid()) continue;
        if (auto nm = m.require("name")) {
            if (auto v = nm->as_string()) {
                if (valid_dns_name(*v) && !is_ip_literal(*v))
                    d.name = lower(*v);
                else
                    nm->error("invalid domain name \"" + *v + "\"");
            }
        }
        m.string("deployment", d.deployment);
        m.boolean("sip", d.sip);
        m.boolean("xmpp", d.xmpp);
        m.boolean("http", d.http);
        read_sso_mode(m, "sso", d.sso);
        m.string("idp", d.idp);
        static constexpr EnumName<SsoTokens> kTokens[] = {{"edge", SsoTokens::Edge},
                                                          {"unified_cm", SsoTokens::UnifiedCm}};
        m.enumeration<SsoTokens>("sso_tokens", d.sso_tokens, kTokens);
        out.push_back(std::move(d));
    }
}

std::optional<std::vector<HttpMethod>> parse_methods(const Node& n) {
    auto items = n.as_seq();
    if (!items) return std::nullopt;
    std::vector<HttpMethod> out;
    bool ok = true;
    for (const auto& item : *items) {
        auto v = item.as_enum<HttpMethod>(kMethodsLower);
        if (!v) {
            ok = false;
            continue;
        }
        if (std::find(out.begin(), out.end(), *v) == out.end()) out.push_back(*v);
    }
    if (!ok) return std::nullopt;
    if (out.empty()) {
        n.error("at least one method is required");
        return std::nullopt;
    }
    return out;
}

// "scheme://host[:port][/path]"; returns an error message or fills the rule's parts.
std::string parse_rule_url(const std::string& url, AllowRuleConfig& r) {
    auto sep = url.find("://");
    if (sep == std::string::npos) return "expected http://host[:port]/path or https://...";
    r.scheme = lower(url.substr(0, sep));
    if (r.scheme != "http" && r.scheme != "https") return "scheme must be http or https";
    std::string rest = url.substr(sep + 3);
    if (rest.find_first_of("?#") != std::string::npos) return "query strings and fragments are not matched";
    auto slash = rest.find('/');
    std::string authority = rest.substr(0, slash);
    r.path = slash == std::string::npos ? "/" : rest.substr(slash);
    if (authority.find('@') != std::string::npos) return "user info is not allowed";
    std::string host = authority, port;
    if (!authority.empty() && authority.front() == '[') {
        auto close = authority.find(']');
        if (close == std::string::npos) return "missing ']'";
        host = authority.substr(1, close - 1);
        if (close + 1 < authority.size()) {
            if (authority[close + 1] != ':') return "expected ':' after ']'";
            port = authority.substr(close + 2);
        }
        if (!is_ip_literal(host) || host.find(':') == std::string::npos) return "invalid IPv6 address";
    } else if (auto c = authority.find(':'); c != std::string::npos) {
        host = authority.substr(0, c);
        port = authority.substr(c + 1);
    }
    if (host.empty()) return "missing host";
    if (!is_ip_literal(host) && !valid_dns_name(host)) return "invalid host \"" + host + "\"";
    r.host = lower(host);
    if (port.empty()) {
        r.port = r.scheme == "https" ? 443 : 80;
    } else {
        unsigned v = 0;
        auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), v);
        if (ec != std::errc() || p != port.data() + port.size() || v < 1 || v > 65535)
            return "port must be 1..65535";
        r.port = static_cast<uint16_t>(v);
    }
    return {};
}

void parse_allow_list(const Node& n, AllowListConfig& out) {
    auto m = n.as_map({"default_methods", "rules", "rules_file"});
    if (auto f = m.get("rules_file"))
        if (auto p = f->as_path()) out.rules_file = *p;
    if (auto d = m.get("default_methods"))
        if (auto v = parse_methods(*d)) out.default_methods = *v;
    auto rules = m.get("rules");
    if (!rules) return;
    auto items = rules->as_seq();
    if (!items) return;
    for (const auto& item : *items) {
        AllowRuleConfig r;
        auto rm = item.as_map({"url", "deployment", "methods", "match", "description"});
        if (!rm.valid()) continue;
        if (auto u = rm.require("url")) {
            if (auto v = u->as_string()) {
                r.url = *v;
                if (auto err = parse_rule_url(*v, r); !err.empty())
                    u->error("invalid url \"" + *v + "\": " + err);
            }
        }
        rm.string("deployment", r.deployment);
        if (auto md = rm.get("methods")) {
            if (auto v = parse_methods(*md)) r.methods = *v;
        } else {
            r.methods = out.default_methods;
        }
        rm.enumeration<MatchKind>("match", r.match, kMatch);
        if (auto d = rm.get("description"))
            if (auto v = d->as_string(true)) r.description = *v;
        out.rules.push_back(std::move(r));
    }
}

void parse_credentials(const Node& n, CredentialsConfig& out) {
    auto m =
        n.as_map({"refresh_interval", "cleanup_interval", "max_failures", "failure_period", "token_key_file",
                  "edge_tokens", "max_authorizations", "authorization_period", "home_cache"});
    // Seconds are allowed (the guide's floor is a minute) so that tests can watch a token expire.
    m.duration("refresh_interval", out.refresh_interval, std::chrono::seconds(1),
               std::chrono::hours(24 * 30));
    m.duration("cleanup_interval", out.cleanup_interval, std::chrono::seconds(1),
               std::chrono::hours(24 * 30));
    // Bounded: a home that moved (user re-homed, node replaced) must be noticed within a day at the latest.
    m.duration("home_cache", out.home_cache, std::chrono::seconds(1), std::chrono::hours(24));
    m.integer("max_failures", out.max_failures, 0, 1'000'000);
    m.duration("failure_period", out.failure_period, std::chrono::seconds(1), std::chrono::hours(24));
    if (auto f = m.get("token_key_file"))
        if (auto p = f->as_path()) out.token_key_file = *p;
    m.boolean("edge_tokens", out.edge_tokens);
    m.integer("max_authorizations", out.max_authorizations, 0, 1'000'000);
    m.duration("authorization_period", out.authorization_period, std::chrono::seconds(1),
               std::chrono::hours(24));
}

void parse_oauth(const Node& n, OAuthConfig& out) {
    auto m = n.as_map({"clusters", "clock_skew", "require_active_user"});
    m.duration("clock_skew", out.clock_skew, std::chrono::seconds(0), std::chrono::minutes(10));
    m.boolean("require_active_user", out.require_active_user);
    auto items = m.get("clusters");
    if (!items) return;
    auto seq = items->as_seq();
    if (!seq) return;
    for (const auto& item : *seq) {
        auto c = item.as_map({"name", "deployment", "issuer", "keys_file", "keys_fetch", "sip_oauth"});
        OAuthClusterConfig cc;
        c.string("name", cc.name, true);
        c.string("deployment", cc.deployment);
        c.string("issuer", cc.issuer, true);
        c.readable_file("keys_file", cc.keys_file);
        if (auto f = c.get("keys_fetch")) {
            auto fm = f->as_map({"url", "username", "password", "password_file", "tls_verify"});
            if (auto u = fm.require("url")) {
                if (auto v = u->as_string()) {
                    std::string_view url = *v;
                    constexpr std::string_view kHttps = "https://";
                    auto slash = url.find('/', kHttps.size());
                    std::string_view auth = url.starts_with(kHttps) && slash != std::string_view::npos
                                                ? url.substr(kHttps.size(), slash - kHttps.size())
                                                : std::string_view();
                    std::string_view host = auth;
                    unsigned port = 443;
                    bool ok = !auth.empty();
                    if (auto colon = auth.rfind(':');
                        ok && colon != std::string_view::npos && auth.find(']') == std::string_view::npos) {
                        host = auth.substr(0, colon);
                        auto ps = auth.substr(colon + 1);
                        auto [p, ec] = std::from_chars(ps.data(), ps.data() + ps.size(), port);
                        ok = ec == std::errc() && p == ps.data() + ps.size() && port >= 1 && port <= 65535;
                    }
                    if (!ok || !(valid_dns_name(host) || is_ip_literal(host))) {
                        u->error("expected https://host[:port]/path, got \"" + *v + "\"");
                    } else {
                        cc.keys_fetch.url = *v;
                        cc.keys_fetch.host = lower(std::string(host));
                        cc.keys_fetch.port = uint16_t(port);
                        cc.keys_fetch.path = std::string(url.substr(slash));
                    }
                }
            }
            fm.string("username", cc.keys_fetch.username, true);
            read_secret(fm, cc.keys_fetch.password, cc.keys_fetch.password_file);
            fm.boolean("tls_verify", cc.keys_fetch.tls_verify);
        }
        if (c.valid() && cc.keys_file.empty() == !c.has("keys_fetch"))
            c.node().error("exactly one of keys_file and keys_fetch is required");
        c.boolean("sip_oauth", cc.sip_oauth);
        out.clusters.push_back(std::move(cc));
    }
    out.enabled = !out.clusters.empty();
}

constexpr EnumName<UnknownDeviceClass> kUnknownDeviceClass[] = {{"strictest", UnknownDeviceClass::Strictest},
                                                                {"desktop", UnknownDeviceClass::Desktop},
                                                                {"mobile", UnknownDeviceClass::Mobile}};

void parse_mra_policy(const Node& n, MraPolicyConfig& out) {
    auto m =
        n.as_map({"enabled", "cache_ttl", "unknown_device_class", "allow_on_lookup_error", "axl_version"});
    m.boolean("enabled", out.enabled);
    m.duration("cache_ttl", out.cache_ttl, std::chrono::seconds(0), std::chrono::hours(24));
    m.enumeration<UnknownDeviceClass>("unknown_device_class", out.unknown_device_class, kUnknownDeviceClass);
    m.boolean("allow_on_lookup_error", out.allow_on_lookup_error);
    m.string("axl_version", out.axl_version);
}

void parse_sso(const Node& n, SsoConfig& out) {
    auto m = n.as_map({"check_internal_availability", "entity_id", "signing", "edge_e_addresses",
                       "identity_providers", "clock_skew", "request_lifetime", "sip_token_extra_ttl",
                       "oauth_client_id"});
    m.boolean("check_internal_availability", out.check_internal_availability);
    if (auto e = m.get("entity_id")) {
        if (auto v = e->as_string()) {
            // An entity ID is a URI (SAML core 8.3.6); edgepair only writes absolute https ones.
            if (v->starts_with("https://") && v->size() > 8 && v->size() <= 1024 &&
                v->find_first_of(" \t\r\n\"<>") == std::string::npos)
                out.entity_id = *v;
            else
                e->error("expected an absolute https:// URI, got \"" + *v + "\"");
        }
    }
    if (auto s = m.get("signing")) parse_cert_key(*s, out.signing);
    if (auto a = m.get("edge_e_addresses")) {
        if (auto items = a->as_seq()) {
            for (const auto& item : *items) {
                auto v = item.as_string();
                if (!v) continue;
                std::string_view hp = *v;
                std::string_view host = hp;
                bool ok = true;
                if (auto colon = hp.rfind(':'); colon != std::string_view::npos) {
                    host = hp.substr(0, colon);
                    unsigned port = 0;
                    auto ps = hp.substr(colon + 1);
                    auto [p, ec] = std::from_chars(ps.data(), ps.data() + ps.size(), port);
                    ok = ec == std::errc() && p == ps.data() + ps.size() && port >= 1 && port <= 65535;
                }
                if (!ok || !valid_dns_name(host) || is_ip_literal(host)) {
                    item.error("expected the DNS name clients reach an edge-e peer by, host[:port], got \"" +
                               *v + "\"");
                    continue;
                }
                out.edge_e_addresses.push_back(lower(*v));
            }
        }
    }
    if (auto l = m.get("identity_providers")) {
        if (auto items = l->as_seq()) {
            for (const auto& item : *items) {
                auto im = item.as_map({"name", "metadata_file"});
                SamlIdpConfig c;
                im.string("name", c.name, true);
                im.readable_file("metadata_file", c.metadata_file, true);
                out.identity_providers.push_back(std::move(c));
            }
        }
    }
    m.duration("clock_skew", out.clock_skew, std::chrono::seconds(0), std::chrono::minutes(10));
    m.duration("request_lifetime", out.request_lifetime, std::chrono::seconds(10), std::chrono::hours(1));
    // Bounded: the extra time is a window after the credentials expired, not a second lifetime.
    m.duration("sip_token_extra_ttl", out.sip_token_extra_ttl, std::chrono::seconds(0),
               std::chrono::hours(24));
    if (auto c = m.get("oauth_client_id")) {
        if (auto v = c->as_string()) {
            // It travels inside the AuthnRequest ID (edge-c/saml_sp.h), so the same rule as a client's.
            if (valid_oauth_client_id(*v))
                out.oauth_client_id = *v;
            else
                c->error("expected 1 to 64 characters of A-Z a-z 0-9 . _ -, got \"" + *v + "\"");
        }
    }
}

void parse_http(const Node& n, EdgeCHttpConfig& out) {
    auto m = n.as_map({"upstream_timeout", "upstream_idle_per_origin", "upstream_idle_timeout"});
    m.duration("upstream_timeout", out.upstream_timeout, std::chrono::seconds(1), std::chrono::minutes(10));
    m.integer("upstream_idle_per_origin", out.upstream_idle_per_origin, 0, 10'000);
    m.duration("upstream_idle_timeout", out.upstream_idle_timeout, std::chrono::seconds(1),
               std::chrono::hours(1));
}

void parse_sip(const Node& n, SipConfig& out) {
    auto m = n.as_map({"path_headers", "max_message_to_node"});
    m.boolean("path_headers", out.path_headers);
    m.size("max_message_to_node", out.max_message_to_node, 2 * 1024, 1024 * 1024);
}

} // namespace

const char* to_string(UcKind k) {
    switch (k) {
    case UcKind::UnifiedCm:
        return "unified_cm";
    case UcKind::ImAndPresence:
        return "im_and_presence";
    case UcKind::UnityConnection:
        return "unity_connection";
    }
    return "?";
}

const char* to_string(SsoTokens t) {
    return t == SsoTokens::UnifiedCm ? "unified_cm" : "edge";
}

SsoMode credential_sso_mode(const EdgeCConfig& cfg, std::string_view domain) {
    auto own = std::find_if(cfg.domains.begin(), cfg.domains.end(),
                            [&](const DomainConfig& d) { return d.name == domain; });
    if (own == cfg.domains.end()) return SsoMode::Off;
    // Off < On < Exclusive (the enum's order): the strictest wins.
    SsoMode mode = own->sso;
    for (const auto& d : cfg.domains)
        if (d.deployment == own->deployment && d.sso > mode) mode = d.sso;
    return mode;
}

bool valid_oauth_client_id(std::string_view id) {
    if (id.empty() || id.size() > 64) return false;
    for (char c : id)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-'))
            return false;
    return true;
}

const char* to_string(HttpMethod m) {
    for (const auto& e : kMethods)
        if (e.value == m) return e.name.data();
    return "?";
}

const char* to_string(MatchKind m) {
    return m == MatchKind::Exact ? "exact" : "prefix";
}

EdgeCConfig parse_edge_c_config(const std::string& path, Diagnostics& diag) {
    EdgeCConfig cfg;
    cfg.source.file = path;
    cfg.source.dir = std::filesystem::path(path).parent_path().string();
    auto root = load_yaml_file(path, diag);
    if (!root) return cfg;
    if (root->IsNull()) {
        diag.error(path, 0, "", "empty configuration file");
        return cfg;
    }
    Reader r(path, diag, cfg.source);
    Node top(r, *root, "", 0);
    auto m =
        top.as_map({"node_name", "workers",     "log",     "admin",      "tls",         "link", "dns",
                    "discovery", "deployments", "domains", "allow_list", "credentials", "sip",  "limits",
                    "media",     "http",        "oauth",   "mra_policy", "federation",  "sso",  "cluster"});
    if (!m.valid()) return cfg;

    if (auto n = m.require("node_name")) {
        if (auto v = n->as_hostname()) {
            if (v->find('.') == std::string::npos)
                n->error("expected a fully qualified domain name, got \"" + *v + "\"");
            else
                cfg.node_name = *v;
        }
    }
    if (auto n = m.get("workers")) parse_workers(*n, cfg.workers);
    if (auto n = m.get("log")) parse_log(*n, cfg.log);
    if (auto n = m.get("admin")) parse_admin(*n, cfg.admin);
    if (auto n = m.require("tls")) parse_tls(*n, cfg.tls);
    if (auto n = m.require("link")) parse_link(*n, cfg.link);
    if (auto n = m.get("dns")) parse_dns(*n, cfg.dns);
    if (auto n = m.get("discovery")) parse_discovery(*n, cfg.discovery);
    if (auto n = m.get("deployments")) parse_deployments(*n, cfg.deployments);
    if (auto n = m.get("domains")) parse_domains(*n, cfg.domains);
    if (auto n = m.get("allow_list")) parse_allow_list(*n, cfg.allow_list);
    if (auto n = m.get("credentials")) parse_credentials(*n, cfg.credentials);
    if (auto n = m.get("oauth")) parse_oauth(*n, cfg.oauth);
    if (auto n = m.get("mra_policy")) parse_mra_policy(*n, cfg.mra_policy);
    if (auto n = m.get("sso")) parse_sso(*n, cfg.sso);
    if (auto n = m.get("cluster")) parse_cluster(*n, cfg.cluster, true);
    if (auto n = m.get("http")) parse_http(*n, cfg.http);
    if (auto n = m.get("sip")) parse_sip(*n, cfg.sip);
    if (auto n = m.get("limits")) parse_limits(*n, cfg.limits, false);
    if (auto n = m.get("media")) parse_edge_c_media(*n, cfg.media.emplace());
    if (auto n = m.get("federation")) parse_edge_c_federation(*n, cfg.federation);
    return cfg;
}

void validate(EdgeCConfig& cfg, Diagnostics& diag) {
    const SourceMap& src = cfg.source;
    warn_admin_exposure(src, diag, cfg.admin);

    // One certificate serves both directions: client to edge-e, and server where UC nodes call back.
    validate_cert_key(src, diag, "tls.certificate", cfg.tls.certificate,
                      {net::Eku::ClientAuth, net::Eku::ServerAuth});
    validate_ca_file(src, diag, "tls.trusted_cas", cfg.tls.trusted_cas);

    if (src.lines.count("link.peers")) {
        if (cfg.link.peers.empty())
            error_at(src, diag, "link.peers", "at least one edge-e peer is required");
        else if (cfg.link.peers.size() > kMaxLinkPeers)
            error_at(src, diag, "link.peers",
                     std::to_string(cfg.link.peers.size()) + " peers configured; at most " +
                         std::to_string(kMaxLinkPeers) + " are supported");
        for (std::size_t i = 0; i < cfg.link.peers.size(); ++i)
            for (std::size_t j = 0; j < i; ++j)
                if (cfg.link.peers[i] == cfg.link.peers[j])
                    error_at(src, diag, "link.peers[" + std::to_string(i) + "]",
                             "duplicate peer " + cfg.link.peers[i].str());
    }
    if (cfg.link.reconnect_min > cfg.link.reconnect_max)
        error_at(src, diag, "link.reconnect_min", "must not be longer than link.reconnect_max");
    if (cfg.link.ping_timeout <= cfg.link.ping_interval)
        error_at(src, diag, "link.ping_timeout", "must be longer than link.ping_interval");

    auto known = [&](const std::string& d) {
        return std::find(cfg.deployments.begin(), cfg.deployments.end(), d) != cfg.deployments.end();
    };
    auto check_ref = [&](const std::string& key, const std::string& dep) {
        if (!known(dep)) {
            std::string msg = "unknown deployment \"" + dep + "\"";
            for (const auto& d : cfg.deployments)
                if (auto dist = edit_distance(d, dep); dist <= 2 && dist * 2 < dep.size()) {
                    msg += " (did you mean \"" + d + "\"?)";
                    break;
                }
            error_at(src, diag, key, msg + "; declare it under deployments");
        }
    };

    std::vector<std::string> deployments_with_cucm;
    auto check_uc = [&](const char* section, const std::vector<UcServerConfig>& list) {
        for (std::size_t i = 0; i < list.size(); ++i) {
            const auto& s = list[i];
            std::string key = std::string("discovery.") + section + "[" + std::to_string(i) + "]";
            check_ref(key + ".deployment", s.deployment);
            // The certificate can only be checked against a name: an IP would defeat TLS verify.
            if (s.tls_verify && !s.address.empty() && is_ip_literal(s.address))
                error_at(src, diag, key + ".address",
                         "\"" + s.address +
                             "\" is an IP address; with tls_verify on, use the FQDN the node's "
                             "certificate carries");
            if (s.kind == UcKind::UnifiedCm) deployments_with_cucm.push_back(s.deployment);
        }
    };
    check_uc("unified_cm", cfg.discovery.unified_cm);
    check_uc("im_and_presence", cfg.discovery.im_and_presence);
    check_uc("unity_connection", cfg.discovery.unity_connection);

    for (std::size_t i = 0; i < cfg.domains.size(); ++i) {
        const auto& d = cfg.domains[i];
        std::string key = "domains[" + std::to_string(i) + "]";
        check_ref(key + ".deployment", d.deployment);
        for (std::size_t j = 0; j < i; ++j)
            if (!d.name.empty() && cfg.domains[j].name == d.name)
                error_at(src, diag, key + ".name", "duplicate domain \"" + d.name + "\"");
        if (!d.sip && !d.xmpp && !d.http) warn_at(src, diag, key, "no service enabled (sip, xmpp, http)");
        if (known(d.deployment) && (d.sip || d.http) &&
            std::find(deployments_with_cucm.begin(), deployments_with_cucm.end(), d.deployment) ==
                deployments_with_cucm.end())
            warn_at(src, diag, key + ".deployment",
                    "deployment \"" + d.deployment + "\" has no discovery.unified_cm server");
    }
    // Single sign-on: one IdP per domain, named among sso.identity_providers; a signing key pair once any
    // domain uses it.
    bool any_sso = false;
    for (std::size_t i = 0; i < cfg.sso.identity_providers.size(); ++i)
        for (std::size_t j = 0; j < i; ++j)
            if (!cfg.sso.identity_providers[i].name.empty() &&
                cfg.sso.identity_providers[j].name == cfg.sso.identity_providers[i].name)
                error_at(src, diag, "sso.identity_providers[" + std::to_string(i) + "].name",
                         "duplicate identity provider \"" + cfg.sso.identity_providers[i].name + "\"");
    for (std::size_t i = 0; i < cfg.domains.size(); ++i) {
        const auto& d = cfg.domains[i];
        std::string key = "domains[" + std::to_string(i) + "]";
        if (d.sso == SsoMode::Off) {
            if (!d.idp.empty()) warn_at(src, diag, key + ".idp", "ignored: sso is off for this domain");
            if (d.sso_tokens != SsoTokens::Edge)
                warn_at(src, diag, key + ".sso_tokens", "ignored: sso is off for this domain");
            continue;
        }
        any_sso = true;
        if (d.idp.empty()) {
            error_at(src, diag, key + ".sso",
                     std::string("sso: ") + to_string(d.sso) +
                         " needs idp: the identity provider of the domain");
            continue;
        }
        bool found = false;
        for (const auto& p : cfg.sso.identity_providers)
            found = found || p.name == d.idp;
        if (!found)
            error_at(src, diag, key + ".idp",
                     "unknown identity provider \"" + d.idp + "\"; declare it under sso.identity_providers");
    }
    // A domain that inherits Exclusive from its deployment (credential_sso_mode) is named, so that the
    // operator sees why its passwords are refused.
    for (std::size_t i = 0; i < cfg.domains.size(); ++i) {
        const auto& d = cfg.domains[i];
        if (d.sso == SsoMode::Exclusive || credential_sso_mode(cfg, d.name) != SsoMode::Exclusive) continue;
        std::string exclusive;
        for (const auto& x : cfg.domains)
            if (x.deployment == d.deployment && x.sso == SsoMode::Exclusive)
                exclusive += (exclusive.empty() ? "" : ", ") + x.name;
        warn_at(
            src, diag, "domains[" + std::to_string(i) + "].sso",
            "domain " + d.name + " refuses passwords too (HTTP, SIP, XMPP): " + exclusive +
                " of the same deployment \"" + d.deployment +
                "\" signs in through single sign-on only, and a Unified CM user is not bound to a domain");
    }
    for (std::size_t i = 0; i < cfg.sso.identity_providers.size(); ++i) {
        const auto& f = cfg.sso.identity_providers[i].metadata_file;
        if (f.empty()) continue;
        if (auto why = idp_metadata_problem(f); !why.empty())
            error_at(src, diag, "sso.identity_providers[" + std::to_string(i) + "].metadata_file",
                     f + ": " + why);
    }
    if (any_sso) {
        if (cfg.sso.signing.cert.empty() && !src.lines.count("sso.signing"))
            error_at(src, diag, src.lines.count("sso") ? "sso" : "domains",
                     "a domain has sso on: sso.signing (the key pair that signs AuthnRequests) is required");
        else if (!cfg.sso.signing.cert.empty())
            validate_cert_key(src, diag, "sso.signing", cfg.sso.signing, {});
    }
    if (cfg.sso.entity_id.empty() && !cfg.node_name.empty())
        cfg.sso.entity_id = "https://" + cfg.node_name + "/saml/sp";
    if (cfg.sso.edge_e_addresses.empty())
        for (const auto& p : cfg.link.peers)
            if (p.kind == Address::Kind::Name) cfg.sso.edge_e_addresses.push_back(lower(p.host));
    if (any_sso && cfg.sso.edge_e_addresses.empty())
        error_at(
            src, diag, src.lines.count("sso") ? "sso" : "link.peers",
            "a domain has sso on: sso.edge_e_addresses must name the edge-e peers clients reach (link.peers "
            "are IP addresses)");

    for (std::size_t i = 0; i < cfg.allow_list.rules.size(); ++i)
        check_ref("allow_list.rules[" + std::to_string(i) + "].deployment",
                  cfg.allow_list.rules[i].deployment);

    // Imported rules live beside the discovery state: both are edge-c's own runtime state.
    if (cfg.allow_list.rules_file.empty() && !cfg.discovery.state_file.empty())
        cfg.allow_list.rules_file =
            (std::filesystem::path(cfg.discovery.state_file).parent_path() / "edge-c-allow-list.csv")
                .string();

    if (cfg.credentials.token_key_file.empty() && !cfg.discovery.state_file.empty())
        cfg.credentials.token_key_file =
            (std::filesystem::path(cfg.discovery.state_file).parent_path() / "edge-c-token.key").string();
    for (std::size_t i = 0; i < cfg.oauth.clusters.size(); ++i) {
        std::string key = "oauth.clusters[" + std::to_string(i) + "]";
        check_ref(key + ".deployment", cfg.oauth.clusters[i].deployment);
        for (std::size_t j = 0; j < i; ++j)
            if (cfg.oauth.clusters[j].name == cfg.oauth.clusters[i].name)
                error_at(src, diag, key + ".name",
                         "duplicate cluster \"" + cfg.oauth.clusters[i].name + "\"");
    }
    // The policy and the SIP OAuth device check are read over AXL with a discovery publisher's account.
    if (cfg.mra_policy.enabled && cfg.discovery.unified_cm.empty())
        error_at(src, diag, "mra_policy.enabled",
                 "needs a discovery.unified_cm publisher: its AXL account reads the users' MRA policies");
    for (std::size_t i = 0; i < cfg.oauth.clusters.size(); ++i) {
        const auto& c = cfg.oauth.clusters[i];
        bool has_pub = false;
        for (const auto& p : cfg.discovery.unified_cm)
            has_pub = has_pub || p.deployment == c.deployment;
        if (c.sip_oauth && !has_pub)
            error_at(src, diag, "oauth.clusters[" + std::to_string(i) + "].sip_oauth",
                     "needs a discovery.unified_cm publisher of deployment \"" + c.deployment +
                         "\": its AXL account reads the users' devices");
    }

    if (cfg.deployments.size() > kRecommendedMaxDeployments)
        warn_at(src, diag, "deployments",
                std::to_string(cfg.deployments.size()) + " deployments; more than the recommended " +
                    std::to_string(kRecommendedMaxDeployments));
    if (cfg.domains.size() > kRecommendedMaxDomains)
        warn_at(src, diag, "domains",
                std::to_string(cfg.domains.size()) + " domains; more than the recommended " +
                    std::to_string(kRecommendedMaxDomains));
    if (cfg.credentials.cleanup_interval < cfg.credentials.refresh_interval)
        warn_at(
            src, diag, "credentials.cleanup_interval",
            "shorter than credentials.refresh_interval: cached credentials are dropped before they refresh");
}

Result<EdgeCConfig> load_edge_c_config(const std::string& path, Diagnostics* out) {
    Diagnostics diag;
    EdgeCConfig cfg = parse_edge_c_config(path, diag);
    if (!cfg.source.lines.empty()) validate(cfg, diag);
    diag.sort();
    if (out) {
        out->errors.insert(out->errors.end(), diag.errors.begin(), diag.errors.end());
        out->warnings.insert(out->warnings.end(), diag.warnings.begin(), diag.warnings.end());
    }
    if (!diag.ok()) return make_error(diag.errors_text());
    return cfg;
}

} // namespace edgepair::config
