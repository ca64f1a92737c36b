#include "common/mra/allow_list.h"

#include <algorithm>
#include <array>
#include <utility>

namespace edgepair::mra {

std::string_view to_string(Scheme s) {
    return s == Scheme::Http ? "http" : "https";
}
std::uint16_t default_port(Scheme s) {
    return s == Scheme::Http ? 80 : 443;
}
std::string_view to_string(MatchType m) {
    return m == MatchType::Exact ? "exact" : "prefix";
}

namespace {

constexpr std::array<std::pair<Method, std::string_view>, 8> kMethods{{
    {Method::Get, "GET"},
    {Method::Head, "HEAD"},
    {Method::Post, "POST"},
    {Method::Put, "PUT"},
    {Method::Delete, "DELETE"},
    {Method::Options, "OPTIONS"},
    {Method::Patch, "PATCH"},
    {Method::Propfind, "PROPFIND"},
}};

bool is_alpha(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_digit(char c) {
    return c >= '0' && c <= '9';
}
bool is_hex(char c) {
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// RFC 3986 pchar without pct-encoded (checked separately) plus '/'.
bool is_path_char(char c) {
    if (is_alpha(c) || is_digit(c)) {
        return true;
    }
    switch (c) {
    case '-':
    case '.':
    case '_':
    case '~':
    case '!':
    case '$':
    case '&':
    case '\'':
    case '(':
    case ')':
    case '*':
    case '+':
    case ',':
    case ';':
    case '=':
    case ':':
    case '@':
    case '/':
        return true;
    default:
        return false;
    }
}

bool has_dot_segment(std::string_view path) {
    std::size_t i = 0;
    while (i < path.size()) {
        std::size_t j = path.find('/', i);
        if (j == std::string_view::npos) {
            j = path.size();
        }
        std::string_view seg = path.substr(i, j - i);
        if (seg == "." || seg == "..") {
            return true;
        }
        i = j + 1;
    }
    return false;
}

Result<void> check_path(std::string_view path) {
    if (path.empty()) {
        return {};
    }
    if (path.front() != '/') {
        return make_error("path must start with '/'");
    }
    for (std::size_t i = 0; i < path.size(); ++i) {
        const char c = path[i];
        if (c == '%') {
            if (i + 2 >= path.size() || !is_hex(path[i + 1]) || !is_hex(path[i + 2])) {
                return make_error("bad percent-encoding in path");
            }
            i += 2;
            continue;
        }
        if (c == '?' || c == '#') {
            return make_error("a rule URL takes no query or fragment");
        }
        if (!is_path_char(c)) {
            return make_error("character not allowed in a path");
        }
    }
    // Requests reach the matcher normalised (no dot segments), so a rule with one could never match: refuse
    // it rather than let the operator believe it protects something.
    if (has_dot_segment(path)) {
        return make_error("path contains a '.' or '..' segment");
    }
    return {};
}

Result<void> check_dns_host(std::string_view host) {
    if (host.size() > 253) {
        return make_error("host name too long");
    }
    std::size_t label = 0;
    for (char c : host) {
        if (c == '.') {
            if (label == 0) {
                return make_error("empty label in host name");
            }
            label = 0;
            continue;
        }
        if (!(is_alpha(c) || is_digit(c) || c == '-' || c == '_')) {
            return make_error("character not allowed in a host name");
        }
        if (++label > 63) {
            return make_error("host name label too long");
        }
    }
    if (label == 0) {
        return make_error("host name must not end with '.'");
    }
    return {};
}

Result<void> check_ipv6_literal(std::string_view inner) {
    if (inner.empty() || inner.size() > 45) {
        return make_error("bad IPv6 literal");
    }
    for (char c : inner) {
        if (!(is_hex(c) || c == ':' || c == '.')) {
            return make_error("bad IPv6 literal");
        }
    }
    return {};
}

// Paths handed to the matcher must already be normalised by common/http. Anything that still looks
// un-normalised is blocked here too, so a gap in the caller cannot become a traversal past a prefix rule.
bool looks_normalised(std::string_view path) {
    if (path.empty() || path.front() != '/') {
        return false;
    }
    for (char c : path) {
        if (static_cast<unsigned char>(c) < 0x21 || c == 0x7f || c == '\\' || c == '?' || c == '#') {
            return false;
        }
    }
    return !has_dot_segment(path);
}

} // namespace

std::optional<Method> parse_method(std::string_view token) {
    for (const auto& [m, name] : kMethods) {
        if (token == name) {
            return m;
        }
    }
    return std::nullopt;
}

std::string_view to_string(Method m) {
    for (const auto& [mm, name] : kMethods) {
        if (mm == m) {
            return name;
        }
    }
    return "?";
}

std::string MethodSet::to_string() const {
    std::string out;
    for (const auto& [m, name] : kMethods) {
        if (contains(m)) {
            if (!out.empty()) {
                out.push_back(',');
            }
            out.append(name);
        }
    }
    return out;
}

bool is_valid_host(std::string_view host) {
    if (!host.empty() && host.front() == '[') {
        return host.size() >= 2 && host.back() == ']' &&
               check_ipv6_literal(host.substr(1, host.size() - 2)).ok();
    }
    return !host.empty() && check_dns_host(host).ok();
}

Result<RuleUrl> parse_rule_url(std::string_view text) {
    RuleUrl u;
    const auto sep = text.find("://");
    if (sep == std::string_view::npos) {
        return make_error("URL must start with http:// or https://");
    }
    const std::string_view scheme = text.substr(0, sep);
    if (iequals(scheme, "http")) {
        u.scheme = Scheme::Http;
    } else if (iequals(scheme, "https")) {
        u.scheme = Scheme::Https;
    } else {
        return make_error("protocol must be http or https");
    }
    std::string_view rest = text.substr(sep + 3);
    const auto slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    std::string_view path = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
    if (authority.find_first_of("@?#") != std::string_view::npos) {
        return make_error("URL must be protocol://host[:port][/path]");
    }

    std::string_view host;
    std::string_view port;
    bool has_port = false;
    if (!authority.empty() && authority.front() == '[') {
        const auto close = authority.find(']');
        if (close == std::string_view::npos) {
            return make_error("unterminated IPv6 literal");
        }
        host = authority.substr(0, close + 1);
        if (auto r = check_ipv6_literal(host.substr(1, host.size() - 2)); !r) {
            return r.error();
        }
        std::string_view after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') {
                return make_error("unexpected characters after IPv6 literal");
            }
            has_port = true;
            port = after.substr(1);
        }
    } else {
        const auto colon = authority.find(':');
        host = authority.substr(0, colon);
        if (colon != std::string_view::npos) {
            has_port = true;
            port = authority.substr(colon + 1);
        }
        if (host.empty()) {
            return make_error("URL has no host");
        }
        if (auto r = check_dns_host(host); !r) {
            return r.error();
        }
    }

    u.port = default_port(u.scheme);
    if (has_port) {
        // ":port is optional, and may only be : followed by one number in the range 0-65535" (Table 4)
        if (port.empty() || port.size() > 5) {
            return make_error("port must be a number in the range 0-65535");
        }
        unsigned value = 0;
        for (char c : port) {
            if (!is_digit(c)) {
                return make_error("port must be a number in the range 0-65535");
            }
            value = value * 10 + static_cast<unsigned>(c - '0');
        }
        if (value > 65535) {
            return make_error("port must be a number in the range 0-65535");
        }
        u.port = static_cast<std::uint16_t>(value);
    }
    if (auto r = check_path(path); !r) {
        return r.error();
    }
    u.host = to_lower(host);
    u.path = std::string(path);
    return u;
}

std::string to_string(const RuleUrl& u) {
    std::string out(to_string(u.scheme));
    out += "://";
    out += u.host;
    out += ':';
    out += std::to_string(u.port);
    out += u.path;
    return out;
}

// Exact: the whole normalised path equals the rule path ("/" when the rule has none).
//
// Prefix: the guide lets a prefix rule "use a partial path or omit the path" and warns that this "could be a
// security risk if the target resources are not resilient to malformed URLs" (Table 3). edgepair reads
// "partial path" as whole leading segments: a prefix "/cucm-uds" covers "/cucm-uds" and "/cucm-uds/..." but
// not "/cucm-uds-evil" or "/cucm-udsx", and "/cucm-uds/" covers only what lies below the slash. Matching on
// raw characters would let a rule written for one resource expose every sibling that shares its spelling; a
// rule that ends in '/' already says "this directory", so it matches below it without a second slash. No path
// (or
// "/") with prefix match allows every path on that scheme, host and port, as Table 3 describes.
bool path_matches(MatchType match, std::string_view rule_path, std::string_view path) {
    if (match == MatchType::Exact) {
        return path == (rule_path.empty() ? std::string_view{"/"} : rule_path);
    }
    if (rule_path.empty() || rule_path == "/") {
        return true;
    }
    if (path.size() < rule_path.size() || path.compare(0, rule_path.size(), rule_path) != 0) {
        return false;
    }
    if (rule_path.back() == '/' || path.size() == rule_path.size()) {
        return true;
    }
    return path[rule_path.size()] == '/';
}

Result<std::uint32_t> AllowList::add(AllowRule rule) {
    if (rule.deployment.empty()) {
        return make_error("allow list rule has no deployment");
    }
    if (rule.url.host.empty()) {
        return make_error("allow list rule has no host");
    }
    rule.url.host = to_lower(rule.url.host);
    rule.id = next_id_++;
    const std::uint32_t id = rule.id;
    by_host_[rule.url.host].push_back(rules_.size());
    rules_.push_back(std::move(rule));
    return id;
}

Result<void> AllowList::remove(std::uint32_t id) {
    auto it = std::find_if(rules_.begin(), rules_.end(), [&](const AllowRule& r) { return r.id == id; });
    if (it == rules_.end()) {
        return make_error("no allow list rule with id " + std::to_string(id));
    }
    if (it->origin == RuleOrigin::Automatic) {
        return make_error("automatically added allow list rules cannot be deleted");
    }
    rules_.erase(it);
    reindex();
    return {};
}

const AllowRule* AllowList::find(std::uint32_t id) const {
    for (const AllowRule& r : rules_) {
        if (r.id == id) {
            return &r;
        }
    }
    return nullptr;
}

void AllowList::reindex() {
    by_host_.clear();
    for (std::size_t i = 0; i < rules_.size(); ++i) {
        by_host_[rules_[i].url.host].push_back(i);
    }
}

std::string_view block_stage_label(BlockStage s) {
    switch (s) {
    case BlockStage::None:
        return "none";
    case BlockStage::Unnormalised:
        return "unnormalised";
    case BlockStage::Host:
        return "host";
    case BlockStage::Scheme:
        return "scheme";
    case BlockStage::Port:
        return "port";
    case BlockStage::Deployment:
        return "deployment";
    case BlockStage::Path:
        return "path";
    case BlockStage::Method:
        return "method";
    case BlockStage::User:
        return "user";
    }
    return "none";
}

MatchResult AllowList::match(const RequestTarget& req) const {
    MatchResult res;
    const std::string host = to_lower(req.host);
    if (!looks_normalised(req.path)) {
        res.stage = BlockStage::Unnormalised;
        res.reason = "request path is not normalised";
        return res;
    }
    const auto method = parse_method(req.method);
    auto it = by_host_.find(host);
    if (it == by_host_.end()) {
        res.stage = BlockStage::Host;
        res.reason = "no rule for host " + host;
        return res;
    }
    // The furthest a rule got before failing decides the stage, so a report says "method not allowed" rather
    // than "no rule" when only the method is wrong. Port before Scheme: a rule on the right port with the
    // other scheme is nearer than one on another port.
    BlockStage best = BlockStage::Port;
    const AllowRule* near = nullptr;
    const AllowRule* scoped = nullptr;
    auto note = [&](BlockStage stage, const AllowRule& r) {
        if (stage > best || near == nullptr) {
            best = stage > best ? stage : best;
            near = &r;
        }
    };
    for (std::size_t idx : it->second) {
        const AllowRule& r = rules_[idx];
        if (r.url.port != req.port) {
            continue;
        }
        if (r.url.scheme != req.scheme) {
            note(BlockStage::Scheme, r);
            continue;
        }
        note(BlockStage::Deployment, r);
        if (r.deployment != req.deployment) {
            continue;
        }
        note(BlockStage::Path, r);
        if (!path_matches(r.match, r.url.path, req.path)) {
            continue;
        }
        note(BlockStage::Method, r);
        if (!method || !effective_methods(r).contains(*method)) {
            continue;
        }
        // A rule that allows the request for everyone wins over one that allows it only for the user the
        // path names: the operator's wider rule is what they asked for.
        if (r.own_user_only) {
            if (scoped == nullptr) {
                scoped = &r;
            }
            continue;
        }
        res.allowed = true;
        res.rule = &r;
        return res;
    }
    if (scoped != nullptr) {
        res.allowed = true;
        res.rule = scoped;
        return res;
    }
    res.rule = near;
    res.stage = best;
    // Built only on the block path: the allow path stays allocation-light.
    const std::string target =
        std::string(to_string(req.scheme)) + "://" + host + ":" + std::to_string(req.port);
    switch (best) {
    case BlockStage::Port:
    case BlockStage::Scheme:
        res.reason = "no rule for " + target;
        break;
    case BlockStage::Deployment:
        res.reason = "no rule for " + target + " in deployment '" + std::string(req.deployment) + "'";
        break;
    case BlockStage::Path:
        res.reason = "path " + std::string(req.path) + " not allowed on " + target;
        break;
    default:
        res.reason =
            "method " + std::string(req.method) + " not allowed on " + target + std::string(req.path);
        break;
    }
    return res;
}

namespace {

AllowRule auto_rule(const UcNode& n, std::string_view deployment, Scheme scheme, std::uint16_t port,
                    std::string_view path, MethodSet methods, std::string_view what) {
    AllowRule r;
    r.url.scheme = scheme;
    r.url.host = to_lower(n.name);
    r.url.port = port;
    r.url.path = std::string(path);
    r.deployment = std::string(deployment);
    r.methods = methods;
    r.match = MatchType::Prefix;
    r.description = std::string(what) + " on " + r.url.host;
    r.origin = RuleOrigin::Automatic;
    return r;
}

} // namespace

// Table 2 of the guide names the node types (Unified CM servers, IM and Presence Service nodes, Unity
// Connection servers, TFTP) and the columns of a rule, but not the rule rows themselves, and no public Cisco
// document found lists them. The rows below are the narrowest set that serves what MRA clients fetch through
// the edge, with ports from the guide's "Mobile and Remote Access Port Reference" ("From Expressway-C to
// Internal Infrastructure"): every rule is a prefix on a service directory, never on "/", except TFTP whose
// file names are the whole namespace of that port.
//   Unified CM  https 8443  prefix /cucm-uds/         GET            UDS: home cluster, user, devices (8443
//   "HTTP proxy (UDS)") Unified CM  https 8443  prefix /ssosp/            GET,POST       OAuth / SSO token
//   endpoints on the home cluster TFTP        http  6970  prefix /                  GET configuration files
//   (6970 "HTTP (configuration file retrieval)") IM&P        https 8443  prefix /EPASSoap/service/ POST IM&P
//   SOAP login (8443 "HTTP proxy (SOAP)") Unity Conn. https 443   prefix /vmrest/ GET,POST,PUT,DELETE  visual
//   voicemail REST (443 "CUC (voicemail)")
// AXL (/axl/) is deliberately absent: only edge-c itself talks AXL, never a remote client.
// Issue #16 added: Unified CM https 8443 prefix /cucm-uds/user/ PUT,DELETE for the signed-in user's own id
// only (own_user_only; Jabber writes some settings there), and TFTP over HTTPS on 6972 beside HTTP on 6970
// (the Port Reference lists both for configuration file retrieval).
std::string owner_user_of(const AllowRule& rule, std::string_view match_path) {
    std::string_view base = rule.url.path;
    if (!base.empty() && base.back() == '/') {
        base.remove_suffix(1);
    }
    if (match_path.size() <= base.size() + 1 || match_path.substr(0, base.size()) != base ||
        match_path[base.size()] != '/') {
        return {};
    }
    std::string_view seg = match_path.substr(base.size() + 1);
    seg = seg.substr(0, seg.find('/'));
    // The normaliser already refused bad escapes, %2F and encoded control bytes; what is left decodes once.
    auto hex = [](char c) {
        if (c >= '0' && c <= '9') {
            return c - '0';
        }
        if (c >= 'a' && c <= 'f') {
            return c - 'a' + 10;
        }
        if (c >= 'A' && c <= 'F') {
            return c - 'A' + 10;
        }
        return -1;
    };
    std::string id;
    for (std::size_t i = 0; i < seg.size(); ++i) {
        if (seg[i] != '%') {
            id += seg[i];
            continue;
        }
        if (i + 2 >= seg.size() || hex(seg[i + 1]) < 0 || hex(seg[i + 2]) < 0) {
            return {};
        }
        id += static_cast<char>(hex(seg[i + 1]) * 16 + hex(seg[i + 2]));
        i += 2;
    }
    // UDS does not support user ids containing '/' (UDS API reference), nor can an id be a dot segment.
    if (id.empty() || id == "." || id == ".." || id.find('/') != std::string::npos) {
        return {};
    }
    for (char c : id) {
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
            return {};
        }
    }
    return id;
}

bool same_user(std::string_view a, std::string_view b) {
    return a.size() == b.size() && to_lower(a) == to_lower(b);
}

std::vector<AllowRule> automatic_rules_for(const UcNode& node, std::string_view deployment) {
    std::vector<AllowRule> out;
    const std::uint16_t https = https_port_of(node);
    switch (node.type) {
    case NodeType::UnifiedCM:
        out.push_back(auto_rule(node, deployment, Scheme::Https, https, "/cucm-uds/", {Method::Get}, "UDS"));
        {
            auto r = auto_rule(node, deployment, Scheme::Https, https, "/cucm-uds/user/",
                               {Method::Put, Method::Delete}, "UDS settings of the signed-in user");
            r.own_user_only = true;
            out.push_back(std::move(r));
        }
        out.push_back(auto_rule(node, deployment, Scheme::Https, https, "/ssosp/",
                                {Method::Get, Method::Post}, "OAuth/SSO"));
        if (node.tftp) {
            out.push_back(auto_rule(node, deployment, Scheme::Http, 6970, "/", {Method::Get}, "TFTP files"));
            out.push_back(auto_rule(node, deployment, Scheme::Https, 6972, "/", {Method::Get},
                                    "TFTP files over HTTPS"));
        }
        break;
    case NodeType::ImP:
        out.push_back(auto_rule(node, deployment, Scheme::Https, https, "/EPASSoap/service/", {Method::Post},
                                "IM&P SOAP"));
        break;
    case NodeType::UnityConnection:
        out.push_back(auto_rule(node, deployment, Scheme::Https, https, "/vmrest/",
                                {Method::Get, Method::Post, Method::Put, Method::Delete}, "Voicemail REST"));
        break;
    }
    return out;
}

} // namespace edgepair::mra
