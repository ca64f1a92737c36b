#include "common/mra/snapshot_json.h"

#include <tuple>
#include <utility>

#include <nlohmann/json.hpp>

#include "common/mra/json_fields.h"

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
                {"imp_peer", n.imp_peer},
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

// Every field is read with its type and range checked (common/mra/json_fields.h): the document comes from
// edge-c over the link or from edge-c's state file, and a port of 70000 or 1e30 must be refused, not wrapped.
Result<UcNode> node_from(const json& j) {
    UcNode n;
    auto name = json_string(j, "name");
    if (!name) return name.error();
    if (!j.contains("name")) return make_error("node without a \"name\"");
    n.name = std::move(*name);
    auto type_name = json_string(j, "type");
    if (!type_name) return make_error("node " + n.name + ": " + type_name.error().message);
    auto t = node_type(*type_name);
    if (!t) return make_error("node " + n.name + ": " + t.error().message);
    n.type = *t;
    auto fail = [&](const Error& e) { return make_error("node " + n.name + ": " + e.message); };
    for (auto [key, out] : {std::pair{"publisher", &n.publisher}, std::pair{"cluster", &n.cluster_name},
                            std::pair{"deployment", &n.deployment}, std::pair{"imp_peer", &n.imp_peer}}) {
        auto v = json_string(j, key);
        if (!v) return fail(v.error());
        *out = std::move(*v);
    }
    for (auto [key, out, def] : {std::tuple{"https_port", &n.https_port, uint16_t(0)},
                                 std::tuple{"sip_tcp_port", &n.sip_tcp_port, uint16_t(5060)},
                                 std::tuple{"sip_tls_port", &n.sip_tls_port, uint16_t(5061)}}) {
        auto v = json_uint_as<uint16_t>(j, key, def);
        if (!v) return fail(v.error());
        *out = *v;
    }
    for (auto [key, out, def] :
         {std::tuple{"mixed_mode", &n.mixed_mode, false}, std::tuple{"tls_verify", &n.tls_verify, true},
          std::tuple{"tftp", &n.tftp, false}}) {
        auto v = json_bool(j, key, def);
        if (!v) return fail(v.error());
        *out = *v;
    }
    auto status = json_string(j, "status", "unknown");
    if (!status) return fail(status.error());
    n.status = node_status(*status);
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
    // get<unsigned>() would keep the low 32 bits: 4294967296 workers would read as 0.
    auto v = json_uint_as<unsigned>(j, key, fallback);
    return v ? *v : fallback;
}

std::string snapshot_control(const SnapshotInput& in) {
    return R"({"type":"snapshot","input":)" + to_json(in) + "}";
}

namespace {

std::string j_string_or(const json& d, const char* key, const char* fallback) {
    auto it = d.find(key);
    return it != d.end() && it->is_string() ? it->get<std::string>() : std::string(fallback);
}

Result<SnapshotInput> input_from(const json& j) {
    try {
        if (!j.is_object())
            return make_error(std::string("snapshot document is ") + j.type_name() + ", not an object");
        SnapshotInput in;
        in.default_deployment = j.value("default_deployment", std::string(kDefaultDeploymentName));
        for (auto& d : j.at("deployments"))
            in.deployments.push_back(Deployment{d.get<std::string>()});
        for (auto& d : j.at("domains")) {
            Domain dom;
            dom.name = d.at("name").get<std::string>();
            auto deployment = json_string(d, "deployment");
            if (!deployment) return make_error("domain " + dom.name + ": " + deployment.error().message);
            dom.deployment = std::move(*deployment);
            for (auto [key, out] :
                 {std::pair{"sip_on_expressway", &dom.services.sip_on_expressway},
                  std::pair{"sip_on_ucm", &dom.services.sip_on_ucm}, std::pair{"imp", &dom.services.imp},
                  std::pair{"xmpp_federation", &dom.services.xmpp_federation}}) {
                auto v = json_bool(d, key, false);
                if (!v) return make_error("domain " + dom.name + ": " + v.error().message);
                *out = *v;
            }
            // Absent from an older edge-c's snapshot: off.
            dom.sso = j_string_or(d, "sso", "off");
            if (dom.sso != "off" && dom.sso != "on" && dom.sso != "exclusive")
                return make_error("domain " + dom.name + ": sso is \"" + dom.sso + "\"");
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
        if (auto it = j.find("sso_check_internal_availability"); it != j.end()) {
            if (!it->is_boolean()) return make_error("sso_check_internal_availability is not a boolean");
            in.sso_check_internal = it->get<bool>();
        }
        return in;
    } catch (const json::exception& e) {
        return make_error(std::string("bad snapshot document: ") + e.what());
    }
}

} // namespace

Result<SnapshotInput> snapshot_input_from_control(std::string_view msg) {
    auto j = json::parse(msg, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("input"))
        return make_error("snapshot message without an input document");
    return input_from(j["input"]);
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
                                    {"xmpp_federation", d.services.xmpp_federation},
                                    {"sso", d.sso}});
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
    if (in.sso_check_internal) j["sso_check_internal_availability"] = *in.sso_check_internal;
    return j.dump();
}

Result<SnapshotInput> snapshot_input_from_json(std::string_view text) {
    try {
        return input_from(json::parse(text));
    } catch (const json::exception& e) {
        return make_error(std::string("bad snapshot document: ") + e.what());
    }
}

} // namespace edgepair::mra
