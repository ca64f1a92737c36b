#include "common/http/header_policy.h"

#include "common/http/h1_parser.h"

namespace edgepair::http {

namespace {

bool starts_with_ci(std::string_view s, std::string_view prefix) {
    return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

template <size_t N> bool one_of(std::string_view name, const std::string_view (&names)[N]) {
    for (auto n : names)
        if (iequals(n, name)) return true;
    return false;
}

constexpr std::string_view kConnectionFields[] = {
    "connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade", "http2-settings"};

constexpr std::string_view kRoutingOverrides[] = {"x-original-url",
                                                  "x-rewrite-url",
                                                  "x-http-method-override",
                                                  "x-http-method",
                                                  "x-method-override",
                                                  "x-forwarded-host",
                                                  "x-forwarded-server",
                                                  "x-forwarded-prefix",
                                                  "x-forwarded-proto",
                                                  "x-forwarded-port",
                                                  "x-host",
                                                  "forwarded"};

std::string_view trim_ows(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
        s.remove_suffix(1);
    return s;
}

} // namespace

bool is_connection_field(std::string_view name) {
    return one_of(name, kConnectionFields) || starts_with_ci(name, "proxy-");
}

bool is_framing_field(std::string_view name) {
    return iequals(name, "content-length") || iequals(name, "transfer-encoding");
}

bool is_link_private(std::string_view name) {
    return starts_with_ci(name, "x-edge-") || starts_with_ci(name, "x-link-") ||
           iequals(name, "x-client-addr") || iequals(name, "x-tunnel");
}

bool is_routing_override(std::string_view name) {
    return one_of(name, kRoutingOverrides);
}

bool is_lookalike(std::string_view name) {
    if (name.find('_') == std::string_view::npos) return false;
    std::string n;
    n.reserve(name.size());
    for (char c : name)
        n.push_back(c == '_' ? '-' : (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c);
    std::string_view v = n;
    // "Connection_" and "_Host": servers that build variable names by concatenation keep the stray '_', but
    // nothing guarantees every upstream does; the protected names never start or end with '-'.
    while (!v.empty() && v.front() == '-')
        v.remove_prefix(1);
    while (!v.empty() && v.back() == '-')
        v.remove_suffix(1);
    return is_connection_field(v) || is_framing_field(v) || is_link_private(v) || is_routing_override(v) ||
           v == "host" || v == "authorization" || v == "content-type" || v == "expect";
}

void ConnectionTokens::add_field_value(std::string_view v) {
    size_t i = 0;
    while (i <= v.size() && names_.size() < kMaxTokens) {
        size_t j = v.find(',', i);
        if (j == std::string_view::npos) j = v.size();
        auto tok = trim_ows(v.substr(i, j - i));
        if (!tok.empty()) names_.emplace_back(tok);
        i = j + 1;
    }
}

bool ConnectionTokens::contains(std::string_view name) const {
    for (const auto& t : names_)
        if (iequals(t, name)) return true;
    return false;
}

bool forwards(Hop hop, std::string_view name, std::string_view value, const ConnectionTokens* listed) {
    if (is_connection_field(name)) {
        // RFC 9113 8.2.2: the one connection field HTTP/2 allows, and only with this value.
        return hop == Hop::LinkFrame && iequals(name, "te") && iequals(trim_ows(value), "trailers");
    }
    if (listed && listed->contains(name)) return false;
    switch (hop) {
    case Hop::ClientRequest:
        return !iequals(name, "host") && !is_link_private(name) && !is_routing_override(name);
    case Hop::UpstreamRequest:
        return !is_link_private(name) && !is_routing_override(name);
    case Hop::UpstreamResponse:
    case Hop::ClientResponse:
        return !is_link_private(name);
    case Hop::LinkFrame:
        return !iequals(name, "host");
    case Hop::Http1Request:
        return true;
    }
    return false;
}

std::string_view refusal_label(FieldRefusal r) {
    switch (r) {
    case FieldRefusal::None:
        return "none";
    case FieldRefusal::Lookalike:
        return "lookalike_header";
    case FieldRefusal::DuplicateAuthorization:
        return "duplicate_authorization";
    }
    return "none";
}

bool RequestFieldCheck::add(std::string_view name) {
    if (refusal_ != FieldRefusal::None) return false;
    if (!name.empty() && name[0] == ':') return true;
    if (iequals(name, "authorization")) {
        if (have_authorization_) {
            refusal_ = FieldRefusal::DuplicateAuthorization;
            field_ = std::string(name);
            return false;
        }
        have_authorization_ = true;
    } else if (is_lookalike(name)) {
        refusal_ = FieldRefusal::Lookalike;
        field_ = std::string(name);
        return false;
    }
    return true;
}

} // namespace edgepair::http
