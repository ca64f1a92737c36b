#include "common/mra/snapshot_json.h"

#include <nlohmann/json.hpp>

namespace edgepair::mra {

using nlohmann::json;

namespace {

json node_json(const UcNode& n) {
    return json{{"name", n.name},
                {"type", std::string(to_string(n.type))},
                {"publisher", n.publisher},
                {"cluster", n.cluster_name},
                {"deployment", n.deployment},
                {"https_port", n.https_port},
                {"sip_tcp_port", n.sip_tcp_port},
                {"sip_tls_port", n.sip_tls_port},
                {"mixed_mode", n.mixed_mode},
                {"tls_verify", n.tls_verify},
                {"tftp", n.tftp},
                {"status", std::string(to_string(n.status))}};
}

Result<NodeType> node_type(const std::string& s) {
    for (NodeType t : {NodeType::UnifiedCM, NodeType::ImP, NodeType::UnityConnection})
        if (to_string(t) == s) return t;
    return make_error("unknown node type \"" + s + "\"");
}

NodeStatus node_status(const std::string& s) {
    for (NodeStatus t : {NodeStatus::Unknown, NodeStatus::Active, NodeStatus::Unreachable})
        if (to_string(t) == s) return t;
    return NodeStatus::Unknown;
}

Result<UcNode> node_from(const json& j) {
    UcNode n;
    n.name = j.at("name").get<std::string>();
    auto t = node_type(j.at("type").get<std::string>());
    if (!t) return t.error();
    n.type = *t;
    n.publisher = j.value("publisher", "");
    n.cluster_name = j.value("cluster", "");
    n.deployment = j.value("deployment", "");
    n.https_port = j.value("https_port", uint16_t(0));
    n.sip_tcp_port = j.value("sip_tcp_port", uint16_t(5060));
    n.sip_tls_port = j.value("sip_tls_port", uint16_t(5061));
    n.mixed_mode = j.value("mixed_mode", false);
    n.tls_verify = j.value("tls_verify", true);
    n.tftp = j.value("tftp", false);
    n.status = node_status(j.value("status", "unknown"));
    return n;
}

MethodSet methods_from(const json& arr) {
    MethodSet m;
    for (auto& s : arr)
        if (auto p = parse_method(s.get<std::string>())) m.add(*p);
    return m;
}

json methods_json(const MethodSet& m) {
    json arr = json::array();
    std::string csv = m.to_string();
    size_t start = 0;
    while (start < csv.size()) {
        auto comma = csv.find(',', start);
        if (comma == std::string::npos) comma = csv.size();
        arr.push_back(csv.substr(start, comma - start));
        start = comma + 1;
    }
    return arr;
}

} // namespace

std::string node_to_json(const UcNode& n) {
    return node_json(n).dump();
}

std::string nodes_to_json(const std::vector<UcNode>& nodes) {
    json arr = json::array();
    for (auto& n : nodes)
        arr.push_back(node_json(n));
    return arr.dump();
}

Result<std::vector<UcNode>> nodes_from_json(std::string_view text) {
    try {
        auto j = json::parse(text);
        std::vector<UcNode> out;
        for (auto& e : j) {
            auto n = node_from(e);
            if (!n) return n.error();
            out.push_back(std::move(*n));
        }
        return out;
    } catch (const json::exception& e) {
        return make_error(std::string("bad node list: ") + e.what());
    }
}

std::string control_type(std::string_view msg) {
    auto j = json::parse(msg, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return {};
    auto it = j.find("type");
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

unsigned control_uint(std::string_view msg, const char* key, unsigned fallback) {
    auto j = json::parse(msg, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return fallback;
    auto it = j.find(key);
    return it != j.end() && it->is_number_unsigned() ? it->get<unsigned>() : fallback;
}

std::string snapshot_control(const SnapshotInput& in) {
    return R"({"type":"snapshot","input":)" + to_json(in) + "}";
}

Result<SnapshotInput> snapshot_input_from_control(std::string_view msg) {
    auto j = json::parse(msg, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("input"))
        return make_error("snapshot message without an input document");
    return snapshot_input_from_json(j["input"].dump());
}

std::string to_json(const SnapshotInput& in) {
    json j;
    j["default_deployment"] = in.default_deployment;
    j["deployments"] = json::array();
    for (auto& d : in.deployments)
        j["deployments"].push_back(d.name);
    j["domains"] = json::array();
    for (auto& d : in.domains)
        j["domains"].push_back(json{{"name", d.name},
                                    {"deployment", d.deployment},
                                    {"sip_on_expressway", d.services.sip_on_expressway},
                                    {"sip_on_ucm", d.services.sip_on_ucm},
                                    {"imp", d.services.imp},
                                    {"xmpp_federation", d.services.xmpp_federation}});
    j["nodes"] = json::array();
    for (auto& n : in.nodes)
        j["nodes"].push_back(node_json(n));
    j["rules"] = json::array();
    for (auto& r : in.editable_rules) {
        json rj{{"url", to_string(r.url)},
                {"deployment", r.deployment},
                {"match", std::string(to_string(r.match))},
                {"description", r.description}};
        if (r.methods) rj["methods"] = methods_json(*r.methods);
        j["rules"].push_back(rj);
    }
    j["default_methods"] = methods_json(in.default_methods);
    return j.dump();
}

Result<SnapshotInput> snapshot_input_from_json(std::string_view text) {
    try {
        auto j = json::parse(text);
        SnapshotInput in;
        in.default_deployment = j.value("default_deployment", std::string(kDefaultDeploymentName));
        for (auto& d : j.at("deployments"))
            in.deployments.push_back(Deployment{d.get<std::string>()});
        for (auto& d : j.at("domains")) {
            Domain dom;
            dom.name = d.at("name").get<std::string>();
            dom.deployment = d.value("deployment", "");
            dom.services.sip_on_expressway = d.value("sip_on_expressway", false);
            dom.services.sip_on_ucm = d.value("sip_on_ucm", false);
            dom.services.imp = d.value("imp", false);
            dom.services.xmpp_federation = d.value("xmpp_federation", false);
            in.domains.push_back(std::move(dom));
        }
        for (auto& n : j.at("nodes")) {
            auto node = node_from(n);
            if (!node) return node.error();
            in.nodes.push_back(std::move(*node));
        }
        for (auto& r : j.at("rules")) {
            AllowRule rule;
            auto url = parse_rule_url(r.at("url").get<std::string>());
            if (!url) return make_error("rule url: " + url.error().message);
            rule.url = *url;
            rule.deployment = r.value("deployment", "");
            rule.match = r.value("match", "prefix") == "exact" ? MatchType::Exact : MatchType::Prefix;
            rule.description = r.value("description", "");
            if (r.contains("methods")) rule.methods = methods_from(r.at("methods"));
            in.editable_rules.push_back(std::move(rule));
        }
        if (j.contains("default_methods")) in.default_methods = methods_from(j.at("default_methods"));
        return in;
    } catch (const json::exception& e) {
        return make_error(std::string("bad snapshot document: ") + e.what());
    }
}

} // namespace edgepair::mra
