#include "edge-c/snapshot_input.h"

#include "common/obs/log.h"

namespace edgepair::edge_c {

namespace {
mra::Method to_method(config::HttpMethod m) {
    switch (m) {
    case config::HttpMethod::Get:
        return mra::Method::Get;
    case config::HttpMethod::Post:
        return mra::Method::Post;
    case config::HttpMethod::Put:
        return mra::Method::Put;
    case config::HttpMethod::Delete:
        return mra::Method::Delete;
    case config::HttpMethod::Head:
        return mra::Method::Head;
    }
    return mra::Method::Get;
}

mra::MethodSet to_methods(const std::vector<config::HttpMethod>& ms) {
    mra::MethodSet out;
    for (auto m : ms)
        out.add(to_method(m));
    return out;
}
} // namespace

mra::SnapshotInput snapshot_input(const config::EdgeCConfig& cfg, const std::vector<mra::UcNode>& nodes) {
    mra::SnapshotInput in;
    for (auto& d : cfg.deployments)
        if (d != in.default_deployment) in.deployments.push_back(mra::Deployment{d});
    for (auto& d : cfg.domains) {
        mra::Domain dom;
        dom.name = d.name;
        dom.deployment = d.deployment == in.default_deployment ? std::string() : d.deployment;
        dom.services.sip_on_ucm = d.sip;
        dom.services.imp = d.xmpp;
        dom.sso = config::to_string(d.sso);
        in.domains.push_back(std::move(dom));
    }
    in.nodes = nodes;
    for (auto& r : cfg.allow_list.rules) {
        auto url = mra::parse_rule_url(r.url);
        if (!url) {
            // The config validator already checked the URL; this only guards a format drift between the two.
            EP_WARN("edge-c", "allow_list rule {}: {}", r.url, url.error().message);
            continue;
        }
        mra::AllowRule rule;
        rule.url = *url;
        rule.deployment = r.deployment;
        if (!r.methods.empty()) rule.methods = to_methods(r.methods);
        rule.match = r.match == config::MatchKind::Exact ? mra::MatchType::Exact : mra::MatchType::Prefix;
        rule.description = r.description;
        in.editable_rules.push_back(std::move(rule));
    }
    in.default_methods = to_methods(cfg.allow_list.default_methods);
    in.sso_check_internal = cfg.sso.check_internal_availability;
    return in;
}

} // namespace edgepair::edge_c
