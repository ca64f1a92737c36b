#include "common/config/federation_config.h"

#include <algorithm>

#include "common/config/yaml_reader.h"

namespace edgepair::config {

namespace {

constexpr EnumName<FederationSecurity> kSecurity[] = {{"required", FederationSecurity::Required},
                                                      {"optional", FederationSecurity::Optional},
                                                      {"none", FederationSecurity::None}};

const AddressRules kListen{.allow_hostname = false, .allow_any = true, .default_port = 5269};
void domain_list(const Map& m, std::string_view key, std::vector<std::string>& out, bool wildcard) {
    auto n = m.get(key);
    if (!n) return;
    auto items = n->as_seq();
    if (!items) return;
    for (const auto& item : *items) {
        auto s = item.as_string();
        if (!s) continue;
        if (!valid_dns_name(*s, wildcard)) {
            item.error("invalid domain \"" + *s +
                       (wildcard ? "\" (a DNS name, optionally \"*.\" first)" : "\""));
            continue;
        }
        std::string l = *s;
        std::transform(l.begin(), l.end(), l.begin(), ::tolower);
        out.push_back(l);
    }
}

const AddressRules kSipListen{.allow_hostname = false, .allow_any = true, .default_port = 5062};

void dns_servers(const Map& m, std::vector<Address>& out) {
    if (auto s = m.get("dns_servers"))
        if (auto items = s->as_seq())
            for (const auto& item : *items)
                if (auto a =
                        item.as_address({.allow_hostname = false, .allow_any = false, .default_port = 53}))
                    out.push_back(*a);
}

void parse_edge_e_sip(const Node& x, EdgeESipFederationConfig& c) {
    auto xm = x.as_map({"listen", "local_domains", "allow", "deny", "dns_servers", "dns_timeout",
                        "dns_cache_ttl", "connect_timeout", "tls_verify", "verify_client", "trusted_cas",
                        "max_message_size", "record_route"});
    xm.address("listen", c.listen, kSipListen);
    domain_list(xm, "local_domains", c.local_domains, false);
    domain_list(xm, "allow", c.allow, true);
    domain_list(xm, "deny", c.deny, true);
    dns_servers(xm, c.dns_servers);
    xm.duration("dns_timeout", c.dns_timeout, std::chrono::milliseconds(100), std::chrono::seconds(60));
    xm.duration("dns_cache_ttl", c.dns_cache_ttl, std::chrono::seconds(0), std::chrono::hours(1));
    xm.duration("connect_timeout", c.connect_timeout, std::chrono::seconds(1), std::chrono::minutes(5));
    xm.boolean("tls_verify", c.tls_verify);
    xm.boolean("verify_client", c.verify_client);
    xm.readable_file("trusted_cas", c.trusted_cas);
    xm.size("max_message_size", c.max_message_size, 4 * 1024, 1024 * 1024);
    if (auto rr = xm.get("record_route"))
        c.record_route =
            rr->as_address({.allow_hostname = true, .allow_any = false, .default_port = c.listen.port});
}

void parse_edge_c_sip(const Node& x, EdgeCSipFederationConfig& c) {
    auto xm = x.as_map(
        {"listen", "imp_nodes", "connect_timeout", "dial_timeout", "max_message_size", "record_route"});
    xm.address("listen", c.listen, kSipListen);
    if (auto s = xm.require("imp_nodes")) {
        if (auto items = s->as_seq()) {
            for (const auto& item : *items)
                if (auto a =
                        item.as_address({.allow_hostname = false, .allow_any = false, .default_port = 5060}))
                    c.imp_nodes.push_back(*a);
            if (items->empty()) s->error("at least one IM and Presence routing node (IP[:port]) is needed");
        }
    }
    xm.duration("connect_timeout", c.connect_timeout, std::chrono::seconds(1), std::chrono::minutes(5));
    xm.duration("dial_timeout", c.dial_timeout, std::chrono::seconds(1), std::chrono::minutes(5));
    xm.size("max_message_size", c.max_message_size, 4 * 1024, 1024 * 1024);
    if (auto rr = xm.get("record_route"))
        c.record_route =
            rr->as_address({.allow_hostname = false, .allow_any = false, .default_port = c.listen.port});
}

} // namespace

const char* to_string(FederationSecurity s) {
    switch (s) {
    case FederationSecurity::Required:
        return "required";
    case FederationSecurity::Optional:
        return "optional";
    case FederationSecurity::None:
        return "none";
    }
    return "?";
}

void parse_edge_e_federation(const Node& n, EdgeEFederationConfig& out) {
    auto m = n.as_map({"xmpp", "sip"});
    if (auto sn = m.get("sip")) parse_edge_e_sip(*sn, out.sip.emplace());
    auto x = m.get("xmpp");
    if (!x) return;
    auto& c = out.xmpp.emplace();
    auto xm = x->as_map({"listen", "security", "local_domains", "allow", "deny", "dns_servers", "dns_timeout",
                         "dns_cache_ttl", "connect_timeout", "trusted_cas", "max_stanza_size"});
    xm.address("listen", c.listen, kListen);
    xm.enumeration<FederationSecurity>("security", c.security, kSecurity);
    domain_list(xm, "local_domains", c.local_domains, false);
    domain_list(xm, "allow", c.allow, true);
    domain_list(xm, "deny", c.deny, true);
    if (auto s = xm.get("dns_servers"))
        if (auto items = s->as_seq())
            for (const auto& item : *items)
                if (auto a =
                        item.as_address({.allow_hostname = false, .allow_any = false, .default_port = 53}))
                    c.dns_servers.push_back(*a);
    xm.duration("dns_timeout", c.dns_timeout, std::chrono::milliseconds(100), std::chrono::seconds(60));
    xm.duration("dns_cache_ttl", c.dns_cache_ttl, std::chrono::seconds(0), std::chrono::hours(1));
    xm.duration("connect_timeout", c.connect_timeout, std::chrono::seconds(1), std::chrono::minutes(5));
    xm.readable_file("trusted_cas", c.trusted_cas);
    xm.size("max_stanza_size", c.max_stanza_size, 4 * 1024, 16 * 1024 * 1024);
}

void parse_edge_c_federation(const Node& n, EdgeCFederationConfig& out) {
    auto m = n.as_map({"xmpp", "sip"});
    if (auto sn = m.get("sip")) parse_edge_c_sip(*sn, out.sip.emplace());
    auto x = m.get("xmpp");
    if (!x) return;
    auto& c = out.xmpp.emplace();
    auto xm = x->as_map({"listen", "imp_nodes", "imp_security", "imp_tls_verify", "certificate",
                         "connect_timeout", "dial_timeout"});
    xm.address("listen", c.listen, kListen);
    if (auto s = xm.require("imp_nodes")) {
        if (auto items = s->as_seq()) {
            for (const auto& item : *items)
                if (auto a =
                        item.as_address({.allow_hostname = false, .allow_any = false, .default_port = 5269}))
                    c.imp_nodes.push_back(*a);
            if (items->empty()) s->error("at least one IM and Presence node (IP[:port]) is needed");
        }
    }
    xm.enumeration<FederationSecurity>("imp_security", c.imp_security, kSecurity);
    xm.boolean("imp_tls_verify", c.imp_tls_verify);
    if (auto cn = xm.get("certificate")) parse_cert_key(*cn, c.certificate);
    xm.duration("connect_timeout", c.connect_timeout, std::chrono::seconds(1), std::chrono::minutes(5));
    xm.duration("dial_timeout", c.dial_timeout, std::chrono::seconds(1), std::chrono::minutes(5));
}

} // namespace edgepair::config
