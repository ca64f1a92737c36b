#include "common/config/edge_e_config.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <thread>

#include "common/config/auth_db.h"
#include "common/config/yaml_reader.h"

namespace edgepair::config {

namespace {

constexpr EnumName<ClientCertMode> kClientCertModes[] = {{"none", ClientCertMode::None},
                                                         {"optional", ClientCertMode::Optional},
                                                         {"required", ClientCertMode::Required}};

const AddressRules kListen{.allow_hostname = false, .allow_any = true, .default_port = std::nullopt};

void parse_tls(const Node& n, EdgeETlsConfig& out) {
    auto m = n.as_map({"default_certificate", "certificates", "trusted_cas", "min_version", "session_tickets",
                       "session_ticket_rotation", "ciphers", "ciphersuites"});
    if (auto dc = m.require("default_certificate")) parse_cert_key(*dc, out.default_certificate);
    if (auto certs = m.get("certificates")) {
        if (auto items = certs->as_seq()) {
            for (const auto& item : *items) {
                SniCertificate sc;
                auto cm = item.as_map({"cert", "key", "domains"});
                read_cert_key(cm, sc.files);
                if (auto doms = cm.get("domains")) {
                    if (auto ds = doms->as_seq()) {
                        for (const auto& d : *ds) {
                            auto s = d.as_string();
                            if (!s) continue;
                            if (!valid_dns_name(*s, true)) {
                                d.error("invalid domain \"" + *s +
                                        "\" (a DNS name, optionally \"*.\" first)");
                                continue;
                            }
                            std::string l = *s;
                            std::transform(l.begin(), l.end(), l.begin(), ::tolower);
                            sc.domains.push_back(l);
                        }
                    }
                }
                out.certificates.push_back(std::move(sc));
            }
        }
    }
    m.readable_file("trusted_cas", out.trusted_cas, true);
    read_tls_version(m, "min_version", out.min_version);
    m.boolean("session_tickets", out.session_tickets);
    m.duration("session_ticket_rotation", out.session_ticket_rotation, std::chrono::minutes(1),
               std::chrono::hours(24 * 7));
    m.string("ciphers", out.ciphers);
    m.string("ciphersuites", out.ciphersuites);
}

void parse_listeners(const Node& n, ListenersConfig& out) {
    auto m = n.as_map({"https", "sip_tls", "xmpp"});
    if (auto h = m.get("https")) {
        HttpsListenerConfig c;
        h->as_map({"listen"}).address("listen", c.listen, kListen);
        out.https = c;
    }
    if (auto s = m.get("sip_tls")) {
        SipTlsListenerConfig c;
        auto sm = s->as_map({"listen", "client_certificates", "max_message_size"});
        sm.address("listen", c.listen, kListen);
        sm.enumeration<ClientCertMode>("client_certificates", c.client_certificates, kClientCertModes);
        sm.size("max_message_size", c.max_message_size, 2 * 1024, 1024 * 1024);
        out.sip_tls = c;
    }
    if (auto x = m.get("xmpp")) {
        XmppListenerConfig c;
        x->as_map({"listen"}).address("listen", c.listen, kListen);
        out.xmpp = c;
    }
}

void parse_link(const Node& n, LinkServerConfig& out) {
    auto m =
        n.as_map({"listen", "tls_verify_subject_name", "auth_database", "ping_interval", "ping_timeout"});
    m.address("listen", out.listen, kListen);
    if (auto s = m.require("tls_verify_subject_name")) {
        if (auto v = s->as_string()) {
            if (is_ip_literal(*v) || valid_dns_name(*v))
                out.tls_verify_subject_name = *v;
            else
                s->error("expected the DNS name (or IP) edge-c's certificate carries in its SAN, got \"" +
                         *v + "\"");
        }
    }
    m.readable_file("auth_database", out.auth_database, true);
    m.duration("ping_interval", out.ping_interval, std::chrono::seconds(1), std::chrono::minutes(10));
    m.duration("ping_timeout", out.ping_timeout, std::chrono::seconds(1), std::chrono::minutes(10));
}

void parse_http(const Node& n, HttpEdgeConfig& out) {
    auto m = n.as_map({"response_timeout", "max_concurrent_streams", "rate_limit", "link_wait",
                       "request_head_timeout", "max_link_streams_per_client", "client_stall_timeout",
                       "client_half_close"});
    m.duration("response_timeout", out.response_timeout, std::chrono::seconds(1), std::chrono::minutes(10));
    m.integer("max_concurrent_streams", out.max_concurrent_streams, 1, 1000);
    m.duration("link_wait", out.link_wait, std::chrono::milliseconds(0), std::chrono::minutes(1));
    m.duration("request_head_timeout", out.request_head_timeout, std::chrono::seconds(1),
               std::chrono::minutes(10));
    m.integer("max_link_streams_per_client", out.max_link_streams_per_client, 1, 1'000'000);
    m.duration("client_stall_timeout", out.client_stall_timeout, std::chrono::seconds(1),
               std::chrono::hours(1));
    static constexpr EnumName<HalfClose> kHalfClose[] = {{"abort", HalfClose::Abort},
                                                         {"serve", HalfClose::Serve}};
    m.enumeration<HalfClose>("client_half_close", out.client_half_close, kHalfClose);
    if (auto rl = m.get("rate_limit")) {
        auto rm = rl->as_map({"enabled", "requests_per_second", "burst"});
        rm.boolean("enabled", out.rate_limit.enabled);
        rm.integer("requests_per_second", out.rate_limit.requests_per_second, 1, 1'000'000);
        rm.integer("burst", out.rate_limit.burst, 1, 1'000'000);
    }
}

void parse_protection(const Node& n, ProtectionConfig& out) {
    auto m = n.as_map({"enabled", "exempt", "max_tracked", "categories"});
    m.boolean("enabled", out.enabled);
    m.integer("max_tracked", out.max_tracked, 16, 10'000'000);
    if (auto ex = m.get("exempt")) {
        if (auto items = ex->as_seq()) {
            for (const auto& item : *items) {
                auto s = item.as_string();
                if (!s) continue;
                auto net = net::Network::parse(*s);
                if (!net)
                    item.error(net.error().message + " (expected an address or network, e.g. 192.0.2.0/24)");
                else
                    out.exempt.push_back(*net);
            }
        }
    }
    auto cats = m.get("categories");
    if (!cats) return;
    auto cm = cats->as_map({protection::kCategoryNames[0], protection::kCategoryNames[1],
                            protection::kCategoryNames[2], protection::kCategoryNames[3],
                            protection::kCategoryNames[4]});
    for (size_t i = 0; i < protection::kCategoryCount; ++i) {
        auto c = cm.get(protection::kCategoryNames[i]);
        if (!c) continue;
        auto& rule = out.categories[i];
        auto rm = c->as_map({"enabled", "threshold", "window", "ban"});
        rm.boolean("enabled", rule.enabled);
        rm.integer("threshold", rule.threshold, 1, 1'000'000);
        Duration window(rule.window_ms), ban(rule.ban_ms);
        if (rm.duration("window", window, std::chrono::seconds(1), std::chrono::hours(24)))
            rule.window_ms = uint64_t(window.count());
        if (rm.duration("ban", ban, std::chrono::seconds(1), std::chrono::days(30)))
            rule.ban_ms = uint64_t(ban.count());
    }
}

void parse_sso(const Node& n, EdgeESsoConfig& out) {
    auto m = n.as_map({"check_internal_availability", "domains"});
    m.boolean("check_internal_availability", out.check_internal_availability);
    auto l = m.get("domains");
    if (!l) return;
    auto items = l->as_seq();
    if (!items) return;
    for (const auto& item : *items) {
        auto dm = item.as_map({"name", "mode"});
        if (!dm.valid()) continue;
        SsoDomainConfig d;
        if (auto nm = dm.require("name")) {
            if (auto v = nm->as_string()) {
                if (!valid_dns_name(*v) || is_ip_literal(*v)) {
                    nm->error("invalid domain name \"" + *v + "\"");
                } else {
                    d.name = *v;
                    std::transform(d.name.begin(), d.name.end(), d.name.begin(), ::tolower);
                    for (const auto& o : out.domains)
                        if (o.name == d.name) nm->error("duplicate domain \"" + d.name + "\"");
                }
            }
        }
        if (!dm.has("mode"))
            dm.node().error("mode is required (off, on or exclusive)");
        else
            read_sso_mode(dm, "mode", d.mode);
        out.domains.push_back(std::move(d));
    }
}

bool overlaps(const Address& a, const Address& b) {
    if (a.port != b.port) return false;
    auto wild = [](const Address& x) {
        return x.kind == Address::Kind::Any || (x.kind == Address::Kind::IPv4 && x.host == "0.0.0.0") ||
               (x.kind == Address::Kind::IPv6 && x.host == "::");
    };
    return wild(a) || wild(b) || a.host == b.host;
}

} // namespace

const char* to_string(ClientCertMode m) {
    switch (m) {
    case ClientCertMode::None:
        return "none";
    case ClientCertMode::Optional:
        return "optional";
    case ClientCertMode::Required:
        return "required";
    }
    return "?";
}

SsoMode EdgeESsoConfig::mode_of(std::string_view domain) const {
    for (const auto& d : domains)
        if (d.name == domain) return d.mode;
    return SsoMode::Off;
}

EdgeEConfig parse_edge_e_config(const std::string& path, Diagnostics& diag) {
    EdgeEConfig cfg;
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
    auto m = top.as_map({"node_name", "workers", "log", "admin", "tls", "listeners", "link", "limits", "http",
                         "media", "federation", "sso", "protection", "cluster"});
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
    if (auto n = m.get("listeners")) parse_listeners(*n, cfg.listeners);
    if (auto n = m.require("link")) parse_link(*n, cfg.link);
    if (auto n = m.get("limits")) parse_limits(*n, cfg.limits, true);
    if (auto n = m.get("http")) parse_http(*n, cfg.http);
    if (auto n = m.get("sso")) parse_sso(*n, cfg.sso);
    if (auto n = m.get("media")) parse_edge_e_media(*n, cfg.media.emplace());
    if (auto n = m.get("federation")) parse_edge_e_federation(*n, cfg.federation);
    if (auto n = m.get("protection")) parse_protection(*n, cfg.protection);
    if (auto n = m.get("cluster")) parse_cluster(*n, cfg.cluster);
    return cfg;
}

void validate(EdgeEConfig& cfg, Diagnostics& diag) {
    const SourceMap& src = cfg.source;
    warn_admin_exposure(src, diag, cfg.admin);

    validate_cert_key(src, diag, "tls.default_certificate", cfg.tls.default_certificate,
                      {net::Eku::ServerAuth});

    // Which SNI name is served by which certificate: a name twice would make the choice arbitrary.
    std::vector<std::pair<std::string, std::size_t>> seen;
    for (std::size_t i = 0; i < cfg.tls.certificates.size(); ++i) {
        auto& sc = cfg.tls.certificates[i];
        std::string key = "tls.certificates[" + std::to_string(i) + "]";
        auto info = validate_cert_key(src, diag, key, sc.files, {net::Eku::ServerAuth});
        if (!info) continue;
        if (sc.domains.empty()) {
            sc.domains = info->dns_sans;
            sc.domains_from_san = true;
        } else {
            for (std::size_t d = 0; d < sc.domains.size(); ++d) {
                const auto& name = sc.domains[d];
                bool covered =
                    std::any_of(info->dns_sans.begin(), info->dns_sans.end(), [&](const std::string& s) {
                        return net::dns_name_matches(s, name) || s == name;
                    });
                if (!covered)
                    warn_at(src, diag, key + ".domains[" + std::to_string(d) + "]",
                            "\"" + name +
                                "\" is not in the certificate's subjectAltName; clients will reject it");
            }
        }
        for (std::size_t d = 0; d < sc.domains.size(); ++d) {
            const auto& name = sc.domains[d];
            auto it = std::find_if(seen.begin(), seen.end(), [&](const auto& p) { return p.first == name; });
            if (it != seen.end() && it->second != i)
                error_at(src, diag,
                         key + (sc.domains_from_san ? ".cert" : ".domains[" + std::to_string(d) + "]"),
                         "domain \"" + name + "\" is already served by tls.certificates[" +
                             std::to_string(it->second) + "]");
            else if (it == seen.end())
                seen.emplace_back(name, i);
        }
    }

    validate_ca_file(src, diag, "tls.trusted_cas", cfg.tls.trusted_cas);

    if (!cfg.link.auth_database.empty()) {
        std::vector<Diagnostic> adiag;
        auto db = load_auth_db(cfg.link.auth_database, &adiag);
        for (auto& d : adiag)
            diag.errors.push_back(std::move(d));
        if (db && db->users().empty())
            error_at(src, diag, "link.auth_database",
                     "no users in \"" + cfg.link.auth_database + "\": edge-c could never authenticate");
    }
    if (cfg.link.ping_timeout <= cfg.link.ping_interval)
        error_at(src, diag, "link.ping_timeout", "must be longer than link.ping_interval");

    // Two listeners on one port would fail at bind time with a less helpful message.
    std::vector<std::pair<std::string, Address>> socks;
    if (cfg.listeners.https) socks.emplace_back("listeners.https.listen", cfg.listeners.https->listen);
    if (cfg.listeners.sip_tls) socks.emplace_back("listeners.sip_tls.listen", cfg.listeners.sip_tls->listen);
    if (cfg.listeners.xmpp) socks.emplace_back("listeners.xmpp.listen", cfg.listeners.xmpp->listen);
    if (cfg.federation.xmpp) socks.emplace_back("federation.xmpp.listen", cfg.federation.xmpp->listen);
    if (cfg.federation.sip) socks.emplace_back("federation.sip.listen", cfg.federation.sip->listen);
    socks.emplace_back("link.listen", cfg.link.listen);
    socks.emplace_back("admin.listen", cfg.admin.listen);
    for (std::size_t i = 0; i < socks.size(); ++i)
        for (std::size_t j = 0; j < i; ++j)
            if (overlaps(socks[i].second, socks[j].second))
                error_at(src, diag, socks[i].first,
                         socks[i].second.str() + " conflicts with " + socks[j].first + " (" +
                             socks[j].second.str() + ")");

    if (cfg.media) {
        auto& md = *cfg.media;
        if (md.traversal_listen.empty()) {
            if (cfg.link.listen.is_ip() && cfg.link.listen.host != "0.0.0.0" && cfg.link.listen.host != "::")
                md.traversal_listen = cfg.link.listen.host;
            else
                error_at(src, diag, "media.traversal_listen",
                         "required when link.listen is a wildcard: the IP edge-c sends traversal media to");
        }
        unsigned want = cfg.workers ? cfg.workers : std::max(1u, std::thread::hardware_concurrency());
        if (md.traversal_ports.size() < want) {
            std::string msg = "needs one port per worker (" + std::to_string(want) + "), has " +
                              std::to_string(md.traversal_ports.size());
            // With workers: auto the count depends on the machine; workers past the range get no media.
            if (cfg.workers)
                error_at(src, diag, "media.traversal_ports", msg);
            else
                warn_at(src, diag, "media.traversal_ports",
                        msg + "; calls on the other workers get no media");
        }
        bool overlap = md.listen == md.traversal_listen && md.ports.lo <= md.traversal_ports.hi &&
                       md.traversal_ports.lo <= md.ports.hi;
        if (overlap) error_at(src, diag, "media.ports", "overlaps media.traversal_ports on the same address");
    }

    if (!cfg.listeners.https && !cfg.listeners.sip_tls && !cfg.listeners.xmpp)
        warn_at(src, diag, "listeners", "no client listener enabled (https, sip_tls, xmpp)");
}

Result<EdgeEConfig> load_edge_e_config(const std::string& path, Diagnostics* out) {
    Diagnostics diag;
    EdgeEConfig cfg = parse_edge_e_config(path, diag);
    // A file that did not even parse as YAML has nothing to validate.
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
