#include "common/mra/edge_config.h"

#include <pugixml.hpp>

namespace edgepair::mra {

namespace {

struct StringWriter final : pugi::xml_writer {
    std::string out;
    void write(const void* data, std::size_t size) override {
        out.append(static_cast<const char*>(data), size);
    }
};

std::string serialise(const pugi::xml_document& doc) {
    StringWriter w;
    // Raw (no indentation): the TechNote capture is a single line, and clients parse, not diff, it.
    doc.save(w, "", pugi::format_raw, pugi::encoding_utf8);
    return std::move(w.out);
}

void add_declaration(pugi::xml_document& doc) {
    auto decl = doc.append_child(pugi::node_declaration);
    decl.append_attribute("version") = "1.0";
    decl.append_attribute("encoding") = "UTF-8";
}

void add_text(pugi::xml_node parent, const char* name, std::string_view value) {
    parent.append_child(name).text().set(std::string(value).c_str());
}

void add_edge(pugi::xml_node parent, const char* name, const EdgeServer& e) {
    auto server = parent.append_child(name).append_child("server");
    add_text(server, "address", e.address);
    add_text(server, "tlsPort", std::to_string(e.tls_port));
}

void add_srv_service(pugi::xml_node config, std::string_view name,
                     const std::vector<ServiceServer>& servers) {
    auto svc = config.append_child("service");
    add_text(svc, "name", name);
    if (servers.empty()) {
        add_text(svc, "error", "NameError");
        return;
    }
    for (const ServiceServer& s : servers) {
        auto server = svc.append_child("server");
        add_text(server, "priority", std::to_string(s.priority));
        add_text(server, "weight", std::to_string(s.weight));
        add_text(server, "port", std::to_string(s.port));
        add_text(server, "address", s.address);
    }
}

} // namespace

std::string sip_route(std::string_view host, std::uint16_t port, std::string_view extra_params) {
    std::string r = "<sip:";
    r += host;
    r += ':';
    r += std::to_string(port);
    r += ";transport=tls";
    if (!extra_params.empty()) {
        r += ';';
        r += extra_params;
    }
    r += ";lr>";
    return r;
}

Result<EdgeConfig> edge_config_for(const Snapshot& snap, std::string_view domain, const EdgeAddresses& edge,
                                   std::optional<std::string> user_home_uds) {
    // Everything below lands in XML text and in a SIP URI the client copies into its Route header, so only
    // host-shaped values and plain URI parameters get in.
    if (!is_valid_host(edge.fqdn) || (!edge.route_host.empty() && !is_valid_host(edge.route_host))) {
        return make_error("edge address is not a valid host name or address");
    }
    for (char c : edge.route_params) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                        std::string_view("-_.!~*'()%;=[]/:&+$").find(c) != std::string_view::npos;
        if (!ok) {
            return make_error("SIP route parameters contain a character not allowed in a SIP URI parameter");
        }
    }
    if (user_home_uds && !user_home_uds->empty() && !is_valid_host(*user_home_uds)) {
        return make_error("user home UDS node is not a valid host name");
    }
    const Domain* d = snap.find_domain(domain);
    if (d == nullptr) {
        return make_error("unknown domain '" + std::string(domain) + "'");
    }
    if (!d->services.sip_on_ucm && !d->services.imp) {
        return make_error("domain '" + d->name + "' has neither SIP on Unified CM nor IM and Presence");
    }
    EdgeConfig cfg;
    for (const UcNode* n : snap.nodes_of(d->deployment, NodeType::UnifiedCM)) {
        if (n->status == NodeStatus::Unreachable) {
            continue;
        }
        cfg.uds_servers.push_back(ServiceServer{n->name, https_port_of(*n), 1, 1});
        if (n->tftp) {
            cfg.tftp_servers.push_back(n->name);
        }
    }
    if (cfg.uds_servers.empty()) {
        return make_error("deployment '" + d->deployment + "' of domain '" + d->name +
                          "' has no reachable Unified CM node");
    }
    if (d->services.imp) {
        for (const UcNode* n : snap.nodes_of(d->deployment, NodeType::ImP)) {
            if (n->status != NodeStatus::Unreachable) {
                cfg.cup_login_servers.push_back(ServiceServer{n->name, https_port_of(*n), 1, 1});
            }
        }
        cfg.xmpp_edge = EdgeServer{edge.fqdn, edge.xmpp_port};
    }
    if (d->services.sip_on_ucm) {
        cfg.sip_edge = EdgeServer{edge.fqdn, edge.sip_tls_port};
        cfg.sip_route = sip_route(edge.route_host.empty() ? edge.fqdn : edge.route_host, edge.sip_tls_port,
                                  edge.route_params);
    }
    cfg.http_edge = EdgeServer{edge.fqdn, edge.http_port};
    if (user_home_uds && !user_home_uds->empty()) {
        const UcNode* home = snap.find_node(*user_home_uds);
        cfg.user_uds_server = EdgeServer{to_lower(*user_home_uds),
                                         home != nullptr ? https_port_of(*home) : std::uint16_t{8443}};
    }
    return cfg;
}

std::string build_edge_config_xml(const EdgeConfig& cfg, const std::vector<std::string>& requested) {
    pugi::xml_document doc;
    add_declaration(doc);
    auto root = doc.append_child("getEdgeConfigResponse");
    root.append_attribute("version") = "1.0";

    auto services = root.append_child("serviceConfig");
    static const std::vector<std::string> kAll{"_cisco-phone-tftp", "_cuplogin", "_cisco-uds"};
    static const std::vector<ServiceServer> kNone;
    for (const std::string& name : requested.empty() ? kAll : requested) {
        if (name == "_cisco-uds") {
            add_srv_service(services, name, cfg.uds_servers);
        } else if (name == "_cuplogin") {
            add_srv_service(services, name, cfg.cup_login_servers);
        } else if (name == "_cisco-phone-tftp") {
            add_srv_service(services, name, cfg.phone_tftp_servers);
        } else {
            add_srv_service(services, name, kNone);
        }
    }
    auto tftp = services.append_child("service");
    add_text(tftp, "name", "tftpServer");
    for (const std::string& a : cfg.tftp_servers) {
        add_text(tftp, "address", a);
    }

    auto edge = root.append_child("edgeConfig");
    if (cfg.sip_edge) {
        add_edge(edge, "sipEdgeServer", *cfg.sip_edge);
        add_text(edge.append_child("sipRequest"), "route", cfg.sip_route);
    }
    if (cfg.xmpp_edge) {
        add_edge(edge, "xmppEdgeServer", *cfg.xmpp_edge);
    }
    add_edge(edge, "httpEdgeServer", cfg.http_edge);
    edge.append_child("turnEdgeServer");
    if (cfg.user_uds_server) {
        add_edge(edge, "userUdsServer", *cfg.user_uds_server);
    }
    return serialise(doc);
}

std::string build_edge_sso_xml(bool sso_available) {
    pugi::xml_document doc;
    add_declaration(doc);
    auto root = doc.append_child("getEdgeSsoResponse");
    root.append_attribute("version") = "1.0";
    add_text(root, "sso", sso_available ? "true" : "false");
    return serialise(doc);
}

} // namespace edgepair::mra
