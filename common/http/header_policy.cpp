#include "common/http/header_policy.h"

#include <array>
#include <iterator>

#include "common/http/h1_parser.h"

namespace edgepair::http {

namespace {

// Every field of every proxied message is classified on several hops (about 50 calls per request through
// the pair), so a name is matched by its length, then its first letter, before any full comparison.
enum Class : uint8_t { kConnection = 1, kLinkPrivate = 2, kOverride = 4, kHost = 8, kTe = 16, kFraming = 32 };

struct Fixed {
    std::string_view name;
    uint8_t cls;
};

// RFC 9110 7.6.1 / RFC 9113 8.2.2 connection fields, the link's private fields, the routing overrides
// (header_policy.h lists why each is here), Host and the framing fields.
constexpr Fixed kFixed[] = {
    {"te", kConnection | kTe},
    {"host", kHost},
    {"x-host", kOverride},
    {"upgrade", kConnection},
    {"trailer", kConnection},
    {"x-tunnel", kLinkPrivate},
    {"forwarded", kOverride},
    {"connection", kConnection},
    {"keep-alive", kConnection},
    {"x-client-addr", kLinkPrivate},
    {"x-http-method", kOverride},
    {"x-rewrite-url", kOverride},
    {"http2-settings", kConnection},
    {"x-original-url", kOverride},
    {"content-length", kFraming},
    {"x-forwarded-host", kOverride},
    {"x-forwarded-port", kOverride},
    {"x-method-override", kOverride},
    {"transfer-encoding", kConnection | kFraming},
    {"x-forwarded-proto", kOverride},
    {"x-forwarded-server", kOverride},
    {"x-forwarded-prefix", kOverride},
    {"x-http-method-override", kOverride},
};
constexpr size_t kLongestFixed = 22;

// kFixed is sorted by length, so each length's candidates are one range: most names have none, or none
// whose first letter matches.
struct Range {
    uint8_t begin = 0, end = 0;
};
constexpr auto kByLength = [] {
    std::array<Range, kLongestFixed + 1> r{};
    for (size_t i = 0; i < std::size(kFixed); ++i) {
        const size_t n = kFixed[i].name.size();
        if (r[n].end == 0) r[n].begin = uint8_t(i);
        r[n].end = uint8_t(i + 1);
    }
    return r;
}();
static_assert([] {
    for (size_t i = 1; i < std::size(kFixed); ++i)
        if (kFixed[i].name.size() < kFixed[i - 1].name.size() || kFixed[i].name.size() > kLongestFixed)
            return false;
    return true;
}());

constexpr char lower(char c) {
    return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c;
}

// `lower_name` is all lower case, `s` any case, s.size() >= lower_name.size(): the first
// lower_name.size() bytes of s equal lower_name, ignoring case.
[[gnu::always_inline]] inline bool starts_lower(std::string_view s, std::string_view lower_name) {
    for (size_t i = 0; i < lower_name.size(); ++i)
        if (lower(s[i]) != lower_name[i]) return false;
    return true;
}

uint8_t classify(std::string_view name) {
    const size_t n = name.size();
    if (n == 0) return 0;
    uint8_t cls = 0;
    const char first = lower(name[0]);
    if (first == 'p') {
        if (n >= 6 && starts_lower(name, "proxy-")) cls |= kConnection;
    } else if (first == 'x' && n >= 7 && name[1] == '-') {
        const char c2 = lower(name[2]);
        if ((c2 == 'e' && starts_lower(name, "x-edge-")) || (c2 == 'l' && starts_lower(name, "x-link-")))
            cls |= kLinkPrivate;
    }
    if (n > kLongestFixed) return cls;
    const Range r = kByLength[n];
    for (size_t i = r.begin; i < r.end; ++i)
        if (kFixed[i].name[0] == first && starts_lower(name, kFixed[i].name)) return cls | kFixed[i].cls;
    return cls;
}

std::string_view trim_ows(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
        s.remove_suffix(1);
    return s;
}

} // namespace

bool is_connection_field(std::string_view name) {
    return classify(name) & kConnection;
}

bool is_framing_field(std::string_view name) {
    return classify(name) & kFraming;
}

bool is_link_private(std::string_view name) {
    return classify(name) & kLinkPrivate;
}

bool is_routing_override(std::string_view name) {
    return classify(name) & kOverride;
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
    return classify(v) != 0 || v == "authorization" || v == "content-type" || v == "expect";
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
    const uint8_t cls = classify(name);
    if (cls & kConnection) {
        // RFC 9113 8.2.2: the one connection field HTTP/2 allows, and only with this value.
        return hop == Hop::LinkFrame && (cls & kTe) && iequals(trim_ows(value), "trailers");
    }
    if (listed && !listed->empty() && listed->contains(name)) return false;
    switch (hop) {
    case Hop::ClientRequest:
        return !(cls & (kHost | kLinkPrivate | kOverride));
    case Hop::UpstreamRequest:
        return !(cls & (kLinkPrivate | kOverride));
    case Hop::UpstreamResponse:
    case Hop::ClientResponse:
        return !(cls & kLinkPrivate);
    case Hop::LinkFrame:
        return !(cls & kHost);
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
