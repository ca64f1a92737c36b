#include "common/http/url_path.h"

#include <arpa/inet.h>

#include <algorithm>
#include <utility>
#include <vector>

namespace edgepair::http {

namespace {

bool is_alpha(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_digit(char c) {
    return c >= '0' && c <= '9';
}
bool is_unreserved(char c) {
    return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}
bool is_sub_delim(char c) {
    switch (c) {
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
        return true;
    default:
        return false;
    }
}
bool is_pchar_raw(char c) {
    return is_unreserved(c) || is_sub_delim(c) || c == ':' || c == '@';
}

int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

constexpr char kHex[] = "0123456789ABCDEF";

char lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
}

bool istarts_with(std::string_view s, std::string_view prefix) {
    if (s.size() < prefix.size()) return false;
    for (size_t i = 0; i < prefix.size(); ++i)
        if (lower(s[i]) != prefix[i]) return false;
    return true;
}

struct Fail {
    PathReason reason;
    std::string detail;
};

Error make_path_error(PathReason r, std::string_view detail, PathReason* why) {
    if (why) *why = r;
    return make_error(std::string(path_reason_name(r)) + ": " + std::string(detail));
}

// Classifies a raw byte that is neither a pchar nor '%'.
PathReason raw_byte_reason(char c) {
    auto u = static_cast<unsigned char>(c);
    if (c == '\\') return PathReason::Backslash;
    if (u < 0x20 || u == 0x7f) return PathReason::ControlChar;
    if (u >= 0x80) return PathReason::NonAscii;
    if (c == '#') return PathReason::Fragment;
    return PathReason::BadChar;
}

// Query: not decoded (its meaning belongs to the application), only validated and hex-uppercased.
bool normalise_query(std::string_view q, std::string& out, Fail& f) {
    out.clear();
    out.reserve(q.size());
    for (size_t i = 0; i < q.size(); ++i) {
        char c = q[i];
        if (c == '%') {
            if (i + 2 >= q.size() || hexval(q[i + 1]) < 0 || hexval(q[i + 2]) < 0) {
                f = {PathReason::BadPercent, "malformed percent-encoding in query"};
                return false;
            }
            int v = hexval(q[i + 1]) * 16 + hexval(q[i + 2]);
            if (v < 0x20 || v == 0x7f) {
                f = {PathReason::ControlChar, "encoded control byte in query"};
                return false;
            }
            out += '%';
            out += kHex[v >> 4];
            out += kHex[v & 15];
            i += 2;
        } else if (is_pchar_raw(c) || c == '/' || c == '?') {
            out += c;
        } else {
            f = {raw_byte_reason(c), "byte not allowed in query"};
            return false;
        }
    }
    return true;
}

struct Segment {
    std::string full; // canonical encoding, ;params kept
    std::string name; // before the first raw ';'
};

bool has_double_encoding(std::string_view s) {
    for (size_t p = s.find("%25"); p != std::string_view::npos; p = s.find("%25", p + 1)) {
        if (p + 5 <= s.size() && hexval(s[p + 3]) >= 0 && hexval(s[p + 4]) >= 0) return true;
    }
    return false;
}

bool normalise_segment(std::string_view raw, Segment& seg, bool& name_encoded, Fail& f) {
    seg.full.clear();
    seg.full.reserve(raw.size());
    name_encoded = false;
    bool in_params = false;
    for (size_t i = 0; i < raw.size(); ++i) {
        char c = raw[i];
        if (c == '%') {
            if (i + 2 >= raw.size() || hexval(raw[i + 1]) < 0 || hexval(raw[i + 2]) < 0) {
                f = {PathReason::BadPercent, "malformed percent-encoding"};
                return false;
            }
            int v = hexval(raw[i + 1]) * 16 + hexval(raw[i + 2]);
            i += 2;
            char d = static_cast<char>(v);
            if (d == '/') {
                f = {PathReason::EncodedSlash, "encoded slash"};
                return false;
            }
            if (d == '\\') {
                f = {PathReason::Backslash, "encoded backslash"};
                return false;
            }
            if (v < 0x20 || v == 0x7f) {
                f = {PathReason::ControlChar, "encoded control byte"};
                return false;
            }
            if (!in_params) name_encoded = true;
            if (is_unreserved(d)) {
                seg.full += d;
            } else {
                seg.full += '%';
                seg.full += kHex[v >> 4];
                seg.full += kHex[v & 15];
            }
        } else if (is_pchar_raw(c)) {
            if (c == ';' && !in_params) {
                in_params = true;
                seg.name = seg.full;
            }
            seg.full += c;
        } else {
            f = {raw_byte_reason(c), "byte not allowed in path"};
            return false;
        }
    }
    if (!in_params) seg.name = seg.full;
    // Checked on the output so that "%25%32%65" (which decodes to "%2e") is caught as well as "%252e".
    if (has_double_encoding(seg.full)) {
        f = {PathReason::DoubleEncoding, "double percent-encoding"};
        return false;
    }
    return true;
}

bool normalise_path(std::string_view raw, const PathPolicy& policy, NormalisedTarget& out, Fail& f) {
    // raw starts with '/'
    std::vector<Segment> stack;
    size_t pos = 1;
    while (true) {
        size_t slash = raw.find('/', pos);
        bool last = slash == std::string_view::npos;
        std::string_view rs = raw.substr(pos, last ? std::string_view::npos : slash - pos);
        Segment seg;
        bool encoded = false;
        if (!normalise_segment(rs, seg, encoded, f)) return false;
        bool params = seg.name.size() != seg.full.size();
        if (seg.name == "." || seg.name == "..") {
            if (encoded) {
                f = {PathReason::EncodedDotSegment, "percent-encoded dot segment"};
                return false;
            }
            if (params) {
                f = {PathReason::DotSegmentParams, "dot segment with ;params"};
                return false;
            }
            if (seg.name == "..") {
                if (stack.empty()) {
                    f = {PathReason::AboveRoot, "path climbs above the root"};
                    return false;
                }
                stack.pop_back();
            }
            if (last) stack.push_back(Segment{}); // "/a/.." and "/a/." name the directory "/a/"
        } else if (seg.name.empty() && !last) {
            if (!policy.collapse_slashes || params) {
                f = {PathReason::EmptySegment, "empty path segment"};
                return false;
            }
        } else {
            stack.push_back(std::move(seg));
        }
        if (last) break;
        pos = slash + 1;
    }
    out.path = "/";
    out.match_path = "/";
    for (size_t k = 0; k < stack.size(); ++k) {
        if (k) {
            out.path += '/';
            out.match_path += '/';
        }
        out.path += stack[k].full;
        out.match_path += stack[k].name;
    }
    return true;
}

bool all_digits(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), is_digit);
}

// WHATWG "ends in a number": such a host is an IPv4 address to every resolver and browser.
bool looks_numeric(std::string_view label) {
    if (all_digits(label)) return true;
    if (label.size() >= 2 && label[0] == '0' && lower(label[1]) == 'x')
        return std::all_of(label.begin() + 2, label.end(), [](char c) { return hexval(c) >= 0; });
    return false;
}

} // namespace

std::string_view path_reason_name(PathReason r) {
    switch (r) {
    case PathReason::None:
        return "none";
    case PathReason::Empty:
        return "empty";
    case PathReason::TooLong:
        return "too_long";
    case PathReason::AsteriskForm:
        return "asterisk_form";
    case PathReason::AbsoluteForm:
        return "absolute_form";
    case PathReason::AuthorityForm:
        return "authority_form";
    case PathReason::BadForm:
        return "bad_form";
    case PathReason::Fragment:
        return "fragment";
    case PathReason::BadChar:
        return "bad_char";
    case PathReason::NonAscii:
        return "non_ascii";
    case PathReason::ControlChar:
        return "control_char";
    case PathReason::Backslash:
        return "backslash";
    case PathReason::BadPercent:
        return "bad_percent";
    case PathReason::EncodedSlash:
        return "encoded_slash";
    case PathReason::EncodedDotSegment:
        return "encoded_dot_segment";
    case PathReason::DoubleEncoding:
        return "double_encoding";
    case PathReason::DotSegmentParams:
        return "dot_segment_params";
    case PathReason::AboveRoot:
        return "above_root";
    case PathReason::EmptySegment:
        return "empty_segment";
    case PathReason::BadHost:
        return "bad_host";
    case PathReason::BadPort:
        return "bad_port";
    }
    return "unknown";
}

std::string_view error_label(const Error& e) {
    std::string_view m = e.message;
    size_t c = m.find(':');
    return c == std::string_view::npos ? m : m.substr(0, c);
}

Result<NormalisedTarget> normalise_target(std::string_view raw, const PathPolicy& policy, PathReason* why) {
    if (why) *why = PathReason::None;
    if (raw.empty()) return make_path_error(PathReason::Empty, "empty request-target", why);
    if (raw.size() > policy.max_length)
        return make_path_error(PathReason::TooLong, "request-target too long", why);
    if (raw == "*") return make_path_error(PathReason::AsteriskForm, "asterisk-form", why);

    NormalisedTarget out;
    std::string_view rest = raw;
    std::string rooted;
    if (raw[0] != '/') {
        size_t scheme_len = istarts_with(raw, "http://") ? 4 : istarts_with(raw, "https://") ? 5 : 0;
        if (scheme_len == 0) {
            bool authority_like =
                raw.find('/') == std::string_view::npos && raw.find(':') != std::string_view::npos;
            return make_path_error(authority_like ? PathReason::AuthorityForm : PathReason::BadForm,
                                   "request-target is not origin-form", why);
        }
        if (!policy.allow_absolute_form)
            return make_path_error(PathReason::AbsoluteForm, "absolute-form not allowed here", why);
        out.scheme = scheme_len == 4 ? "http" : "https";
        std::string_view after = raw.substr(scheme_len + 3);
        size_t end = after.find_first_of("/?#");
        auto auth = parse_authority(after.substr(0, end), out.scheme);
        if (!auth) {
            PathReason r =
                error_label(auth.error()) == "bad_port" ? PathReason::BadPort : PathReason::BadHost;
            return make_path_error(r, auth.error().message, why);
        }
        out.host = std::move(auth->host);
        out.port = auth->port;
        rest = end == std::string_view::npos ? std::string_view{} : after.substr(end);
        if (rest.empty() || rest[0] != '/') {
            // "http://h" and "http://h?q" address the root.
            rooted = "/";
            rooted.append(rest);
            rest = rooted;
        }
    }

    size_t q = rest.find('?');
    std::string_view path = rest.substr(0, q);
    Fail f{PathReason::None, {}};
    if (q != std::string_view::npos) {
        out.has_query = true;
        if (!normalise_query(rest.substr(q + 1), out.query, f))
            return make_path_error(f.reason, f.detail, why);
    }
    if (!normalise_path(path, policy, out, f)) return make_path_error(f.reason, f.detail, why);
    return out;
}

Result<std::string> canonical_host(std::string_view host) {
    auto bad = [](std::string_view d) { return make_error("bad_host: " + std::string(d)); };
    if (host.empty()) return bad("empty host");
    if (host.front() == '[') {
        if (host.back() != ']' || host.size() < 4) return bad("unterminated IPv6 literal");
        std::string inner(host.substr(1, host.size() - 2));
        // Zone ids ("%25eth0") are link-local plumbing, never a legitimate upstream here.
        if (!std::all_of(inner.begin(), inner.end(),
                         [](char c) { return hexval(c) >= 0 || c == ':' || c == '.'; }))
            return bad("invalid IPv6 literal");
        in6_addr a{};
        if (inet_pton(AF_INET6, inner.c_str(), &a) != 1) return bad("invalid IPv6 literal");
        char buf[INET6_ADDRSTRLEN];
        if (!inet_ntop(AF_INET6, &a, buf, sizeof buf)) return bad("invalid IPv6 literal");
        return "[" + std::string(buf) + "]";
    }
    std::string h(host);
    for (auto& c : h)
        c = lower(c);
    if (h.back() == '.') h.pop_back();
    if (h.empty() || h.size() > 253) return bad("host length");

    // Labels are walked in place (this runs on every proxied request, twice on edge-e): no list of them.
    const std::string_view hv = h;
    const size_t last_dot = hv.rfind('.');
    const std::string_view last = last_dot == std::string_view::npos ? hv : hv.substr(last_dot + 1);
    auto each_label = [hv](auto&& ok) {
        for (size_t pos = 0;;) {
            size_t dot = hv.find('.', pos);
            if (!ok(hv.substr(pos, dot == std::string_view::npos ? std::string_view::npos : dot - pos)))
                return false;
            if (dot == std::string_view::npos) return true;
            pos = dot + 1;
        }
    };
    if (looks_numeric(last)) {
        if (std::count(hv.begin(), hv.end(), '.') != 3) return bad("non-canonical IPv4 address");
        bool over = false;
        bool canonical = each_label([&over](std::string_view l) {
            if (!all_digits(l) || l.size() > 3 || (l.size() > 1 && l[0] == '0')) return false;
            unsigned v = 0;
            for (char c : l)
                v = v * 10 + unsigned(c - '0');
            if (v > 255) over = true;
            return !over;
        });
        if (over) return bad("IPv4 octet out of range");
        if (!canonical) return bad("non-canonical IPv4 address");
        return h;
    }
    const char* why = nullptr;
    each_label([&why](std::string_view l) {
        if (l.empty() || l.size() > 63)
            why = "empty or overlong label";
        else if (l.front() == '-' || l.back() == '-')
            why = "label starts or ends with '-'";
        // '_' is not LDH, but internal Windows-era host names carry it and it cannot alias anything.
        else if (!std::all_of(l.begin(), l.end(),
                              [](char c) { return is_alpha(c) || is_digit(c) || c == '-' || c == '_'; }))
            why = "invalid character in host";
        return why == nullptr;
    });
    if (why) return bad(why);
    return h;
}

HostKind host_kind(std::string_view canonical) {
    if (!canonical.empty() && canonical.front() == '[') return HostKind::IPv6;
    size_t dot = canonical.rfind('.');
    std::string_view last = dot == std::string_view::npos ? canonical : canonical.substr(dot + 1);
    return all_digits(last) ? HostKind::IPv4 : HostKind::Name;
}

Result<uint16_t> parse_port(std::string_view s) {
    if (!all_digits(s) || s.size() > 5 || s[0] == '0') return make_error("bad_port: not 1..65535");
    unsigned v = 0;
    for (char c : s)
        v = v * 10 + static_cast<unsigned>(c - '0');
    if (v < 1 || v > 65535) return make_error("bad_port: not 1..65535");
    return static_cast<uint16_t>(v);
}

uint16_t default_port(std::string_view scheme) {
    std::string s;
    for (char c : scheme)
        s += lower(c);
    if (s == "http") return 80;
    if (s == "https") return 443;
    return 0;
}

Result<Authority> parse_authority(std::string_view authority, std::string_view scheme) {
    if (authority.find('@') != std::string_view::npos) return make_error("bad_host: userinfo not allowed");
    std::string_view host = authority, port;
    bool has_port = false;
    if (!authority.empty() && authority.front() == '[') {
        size_t close = authority.find(']');
        if (close == std::string_view::npos) return make_error("bad_host: unterminated IPv6 literal");
        host = authority.substr(0, close + 1);
        std::string_view after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') return make_error("bad_host: junk after IPv6 literal");
            port = after.substr(1);
            has_port = true;
        }
    } else if (size_t colon = authority.find(':'); colon != std::string_view::npos) {
        host = authority.substr(0, colon);
        port = authority.substr(colon + 1);
        has_port = true;
    }
    auto h = canonical_host(host);
    if (!h) return h.error();
    Authority a;
    a.host = std::move(*h);
    if (has_port) {
        auto p = parse_port(port);
        if (!p) return p.error();
        a.port = *p;
    } else {
        a.port = default_port(scheme);
        if (a.port == 0) return make_error("bad_port: no port and no default for the scheme");
    }
    return a;
}

} // namespace edgepair::http
