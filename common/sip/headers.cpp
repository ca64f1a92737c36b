#include "common/sip/headers.h"

#include "common/sip/lex.h"

#include <array>

namespace edgepair::sip {

using namespace lex;

namespace {

struct NameEntry {
    HeaderId id;
    std::string_view full;
    char compact; // 0 when none (RFC 3261 7.3.3 and the IANA SIP header registry)
};

constexpr std::array<NameEntry, 30> kNames{{
    {HeaderId::accept_contact, "Accept-Contact", 'a'},
    {HeaderId::allow, "Allow", 0},
    {HeaderId::allow_events, "Allow-Events", 'u'},
    {HeaderId::call_id, "Call-ID", 'i'},
    {HeaderId::contact, "Contact", 'm'},
    {HeaderId::content_encoding, "Content-Encoding", 'e'},
    {HeaderId::content_length, "Content-Length", 'l'},
    {HeaderId::content_type, "Content-Type", 'c'},
    {HeaderId::cseq, "CSeq", 0},
    {HeaderId::event, "Event", 'o'},
    {HeaderId::expires, "Expires", 0},
    {HeaderId::from, "From", 'f'},
    {HeaderId::identity, "Identity", 'y'},
    {HeaderId::identity_info, "Identity-Info", 'n'},
    {HeaderId::max_forwards, "Max-Forwards", 0},
    {HeaderId::path, "Path", 0},
    {HeaderId::proxy_require, "Proxy-Require", 0},
    {HeaderId::record_route, "Record-Route", 0},
    {HeaderId::refer_to, "Refer-To", 'r'},
    {HeaderId::referred_by, "Referred-By", 'b'},
    {HeaderId::reject_contact, "Reject-Contact", 'j'},
    {HeaderId::request_disposition, "Request-Disposition", 'd'},
    {HeaderId::require, "Require", 0},
    {HeaderId::route, "Route", 0},
    {HeaderId::session_expires, "Session-Expires", 'x'},
    {HeaderId::subject, "Subject", 's'},
    {HeaderId::supported, "Supported", 'k'},
    {HeaderId::to, "To", 't'},
    {HeaderId::unsupported, "Unsupported", 0},
    {HeaderId::via, "Via", 'v'},
}};

} // namespace

// By id, for header_name: an O(1) look-up (kNames is in name order, not id order).
constexpr auto kNameById = [] {
    std::array<std::string_view, 64> t{};
    for (const auto& e : kNames)
        t[size_t(e.id)] = e.full;
    return t;
}();
static_assert(size_t(HeaderId::via) < 64);

// Indices into kNames by lower-case first letter; kNoName ends each list.
constexpr uint8_t kNoName = 0xff;
constexpr auto kByLetter = [] {
    std::array<std::array<uint8_t, 8>, 26> t{};
    for (auto& row : t)
        row.fill(kNoName);
    for (size_t i = 0; i < kNames.size(); ++i) {
        auto& row = t[size_t(lower(kNames[i].full[0]) - 'a')];
        size_t k = 0;
        while (row[k] != kNoName)
            ++k;
        row[k] = uint8_t(i);
    }
    return t;
}();

HeaderId header_id(std::string_view name) {
    if (name.size() == 1) {
        char c = lower(name[0]);
        for (const auto& e : kNames)
            if (e.compact == c) return e.id;
        return HeaderId::other;
    }
    // Every header line of every message comes through here: only the names with its first letter are
    // compared.
    if (name.empty()) return HeaderId::other;
    const char c0 = lower(name[0]);
    if (c0 < 'a' || c0 > 'z') return HeaderId::other;
    for (uint8_t i : kByLetter[size_t(c0 - 'a')]) {
        if (i == kNoName) break;
        if (iequals(kNames[i].full, name)) return kNames[i].id;
    }
    return HeaderId::other;
}

std::string_view header_name(HeaderId id) {
    return size_t(id) < kNameById.size() ? kNameById[size_t(id)] : std::string_view{};
}

bool is_list_header(HeaderId id) {
    switch (id) {
    case HeaderId::via:
    case HeaderId::contact:
    case HeaderId::route:
    case HeaderId::record_route:
    case HeaderId::path:
    case HeaderId::allow:
    case HeaderId::supported:
    case HeaderId::require:
    case HeaderId::proxy_require:
    case HeaderId::unsupported:
    case HeaderId::allow_events:
        return true;
    default:
        return false;
    }
}

bool Via::rfc3261_branch() const {
    auto b = branch();
    return b && b->size() > kMagicCookie.size() && b->substr(0, kMagicCookie.size()) == kMagicCookie;
}

Result<void> Via::parse_into(std::string_view value, Via& v) {
    // sent-protocol = protocol-name SLASH protocol-version SLASH transport, SLASH = SWS "/" SWS
    std::string_view s = trim(value);
    std::string_view parts[3];
    for (int i = 0; i < 3; ++i) {
        skip_ws(s);
        parts[i] = take_token(s);
        if (parts[i].empty()) return make_error("malformed Via sent-protocol");
        skip_ws(s);
        if (i < 2) {
            if (s.empty() || s.front() != '/') return make_error("malformed Via sent-protocol");
            s.remove_prefix(1);
        }
    }
    v.protocol = std::string(parts[0]);
    v.version = std::string(parts[1]);
    v.transport = std::string(parts[2]);
    if (s.empty()) return make_error("Via without sent-by");
    skip_ws(s);
    size_t n = 0;
    if (!s.empty() && s.front() == '[') {
        n = s.find(']');
        if (n == std::string_view::npos) return make_error("malformed Via host");
        ++n;
    } else {
        while (n < s.size() && (is_alnum(s[n]) || s[n] == '-' || s[n] == '.' || s[n] == '_'))
            ++n;
    }
    std::string_view host = s.substr(0, n);
    if (!valid_host(host)) return make_error("malformed Via host");
    v.host = std::string(host);
    s.remove_prefix(n);
    skip_ws(s);
    if (!s.empty() && s.front() == ':') {
        s.remove_prefix(1);
        skip_ws(s);
        size_t d = 0;
        while (d < s.size() && is_digit(s[d]))
            ++d;
        uint64_t port = 0;
        if (d == 0 || d > 5 || parse_uint(s.substr(0, d), 65535, port) != Number::ok)
            return make_error("malformed Via port");
        v.port = static_cast<uint16_t>(port);
        s.remove_prefix(d);
    }
    auto params = parse_header_params(s);
    if (!params) return params.error();
    v.params = std::move(*params);
    return {};
}

Result<Via> Via::parse(std::string_view value) {
    Via v;
    if (auto r = parse_into(value, v); !r) return r.error();
    return v;
}

std::string Via::to_string() const {
    std::string out = protocol + "/" + version + "/" + transport + " " + host;
    if (port) out += ":" + std::to_string(*port);
    out += params.to_string();
    return out;
}

bool valid_method(std::string_view method) {
    return is_token(method);
}

Result<CSeq> CSeq::parse(std::string_view value) {
    std::string_view s = trim(value);
    size_t d = 0;
    while (d < s.size() && is_digit(s[d]))
        ++d;
    uint64_t num = 0;
    switch (parse_uint(s.substr(0, d), 0x7fffffff, num)) {
    case Number::ok:
        break;
    case Number::overflow:
        return make_error("CSeq number too large");
    case Number::invalid:
        return make_error("malformed CSeq number");
    }
    s.remove_prefix(d);
    if (s.empty() || !is_ws(s.front())) return make_error("malformed CSeq");
    skip_ws(s);
    if (!is_token(s)) return make_error("malformed CSeq method");
    return CSeq{static_cast<uint32_t>(num), std::string(s)};
}

Result<int> parse_max_forwards(std::string_view value) {
    uint64_t v = 0;
    switch (parse_uint(trim(value), 255, v)) {
    case Number::ok:
        return static_cast<int>(v);
    case Number::overflow:
        return make_error("Max-Forwards above 255");
    case Number::invalid:
        break;
    }
    return make_error("malformed Max-Forwards");
}

bool valid_call_id(std::string_view value) {
    // callid = word [ "@" word ]; word allows most visible ASCII, including ( ) < > : \ " / [ ] ? { }
    if (value.empty()) return false;
    size_t ats = 0;
    for (char c : value) {
        if (is_token_char(c)) continue;
        switch (c) {
        case '(':
        case ')':
        case '<':
        case '>':
        case ':':
        case '\\':
        case '"':
        case '/':
        case '[':
        case ']':
        case '?':
        case '{':
        case '}':
            continue;
        case '@':
            if (++ats > 1) return false;
            continue;
        default:
            return false;
        }
    }
    return value.front() != '@' && value.back() != '@';
}

} // namespace edgepair::sip
