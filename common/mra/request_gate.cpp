#include "common/mra/request_gate.h"

#include <fmt/format.h>

#include "common/http/header_policy.h"
#include "common/http/url_path.h"

namespace edgepair::mra {

std::string_view gate_reason_label(GateReason r) {
    switch (r) {
    case GateReason::Pass:
        return "pass";
    case GateReason::RateLimited:
        return "rate_limited";
    case GateReason::LookalikeHeader:
        return "lookalike_header";
    case GateReason::DuplicateAuthorization:
        return "duplicate_authorization";
    case GateReason::BadPath:
        return "bad_path";
    case GateReason::NoConfig:
        return "no_config";
    case GateReason::UnknownDomain:
        return "unknown_domain";
    case GateReason::UnknownService:
        return "unknown_service";
    case GateReason::MethodNotAllowed:
        return "method_not_allowed";
    case GateReason::Blocked:
        return "blocked";
    }
    return "other";
}

namespace {

GateVerdict refuse(GateVerdict v, GateReason r, int status, std::string message, std::string log) {
    v.reason = r;
    v.status = status;
    if (v.label.empty()) v.label = std::string(gate_reason_label(r));
    v.message = std::move(message);
    v.log = std::move(log);
    return v;
}

} // namespace

GateVerdict decide(const Snapshot* snap, const GateRequest& req) {
    GateVerdict v;
    if (req.rate && req.rate->limited) {
        v.retry_after_s = req.rate->retry_after_s ? req.rate->retry_after_s : 1;
        return refuse(std::move(v), GateReason::RateLimited, 429, "too many requests",
                      "over the request rate of its client address");
    }

    http::RequestFieldCheck fields;
    for (auto n : req.field_names)
        if (!fields.add(n)) break;
    switch (fields.refusal()) {
    case http::FieldRefusal::None:
        break;
    case http::FieldRefusal::Lookalike:
        return refuse(std::move(v), GateReason::LookalikeHeader, 400, "invalid header field name",
                      fmt::format("field '{}' reads as a framing, connection or edge field once '_' is '-'",
                                  fields.field()));
    case http::FieldRefusal::DuplicateAuthorization:
        return refuse(std::move(v), GateReason::DuplicateAuthorization, 400,
                      "more than one Authorization field", "a second Authorization field");
    }

    auto path = http::parse_mra_path(req.target);
    if (!path) {
        v.label = std::string(http::error_label(path.error()));
        return refuse(std::move(v), GateReason::BadPath, 400, "invalid request path", path.error().message);
    }
    v.path = std::move(*path);
    if (!snap)
        return refuse(std::move(v), GateReason::NoConfig, 503, "no MRA configuration yet", "no snapshot");
    const Domain* dom = snap->find_domain(v.path.domain);
    if (!dom)
        return refuse(std::move(v), GateReason::UnknownDomain, 404, "unknown domain",
                      fmt::format("domain {} is not served", v.path.domain));
    v.deployment = snap->resolve_deployment(dom->deployment);

    switch (v.path.kind) {
    case http::MraKind::Other:
        return refuse(std::move(v), GateReason::UnknownService, 404, "unknown service",
                      fmt::format("no MRA service at {}", v.path.path));
    case http::MraKind::EdgeConfig:
    case http::MraKind::EdgeSso:
        // Both are read-only answers built from the snapshot; no other method means anything for them.
        if (req.method != "GET" && req.method != "HEAD") {
            v.allow = "GET, HEAD";
            return refuse(std::move(v), GateReason::MethodNotAllowed, 405, "method not allowed",
                          fmt::format("{} on {}", req.method, http::mra_kind_name(v.path.kind)));
        }
        return v;
    case http::MraKind::SsoAuthorize:
        // The browser's redirect to the IdP starts here: a read.
        if (req.method != "GET" && req.method != "HEAD") {
            v.allow = "GET, HEAD";
            return refuse(std::move(v), GateReason::MethodNotAllowed, 405, "method not allowed",
                          fmt::format("{} on {}", req.method, http::mra_kind_name(v.path.kind)));
        }
        return v;
    case http::MraKind::SsoFedlet:
        // The SAML HTTP-POST binding (saml-bindings 3.5): the assertion arrives as a form, nothing else.
        if (req.method != "POST") {
            v.allow = "POST";
            return refuse(std::move(v), GateReason::MethodNotAllowed, 405, "method not allowed",
                          fmt::format("{} on {}", req.method, http::mra_kind_name(v.path.kind)));
        }
        return v;
    case http::MraKind::Proxy:
        break;
    }

    RequestTarget t{v.path.scheme == "http" ? Scheme::Http : Scheme::Https,
                    v.path.host,
                    v.path.port,
                    v.path.match_path,
                    req.method,
                    v.deployment};
    auto m = snap->allow_list.match(t);
    if (!m.allowed) {
        v.block_stage = m.stage;
        return refuse(std::move(v), GateReason::Blocked, 403, "blocked by the HTTP allow list",
                      fmt::format("{} {}://{}:{}{} blocked by the allow list: {}", req.method, v.path.scheme,
                                  v.path.host, v.path.port, v.path.match_path, m.reason));
    }
    if (m.rule && m.rule->own_user_only) {
        v.owner_user = owner_user_of(*m.rule, v.path.match_path);
        if (v.owner_user.empty()) {
            v.block_stage = BlockStage::Path;
            return refuse(std::move(v), GateReason::Blocked, 403, "blocked by the HTTP allow list",
                          fmt::format("{} {}://{}:{}{}: the rule {} needs a user id after its path",
                                      req.method, v.path.scheme, v.path.host, v.path.port, v.path.match_path,
                                      to_string(m.rule->url)));
        }
    }
    // The allow list matched match_path; an upstream that is not Tomcat reads ;params as part of the
    // segment name (nginx serves "/files;x/" as a directory of that name), so what matched is what leaves.
    v.params_dropped = v.path.match_path != v.path.path;
    v.forward_target = v.path.has_query ? v.path.match_path + "?" + v.path.query : v.path.match_path;
    return v;
}

} // namespace edgepair::mra
