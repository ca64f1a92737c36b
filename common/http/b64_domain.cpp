#include "common/http/b64_domain.h"

#include <algorithm>
#include <vector>

namespace edgepair::http {

namespace {

constexpr char kStd[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr char kUrl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// 0..63, or -1; which alphabet the symbol commits to is reported separately.
int b64_value(char c, int& alphabet) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '/') {
        if (alphabet == 2) return -1;
        alphabet = 1;
        return c == '+' ? 62 : 63;
    }
    if (c == '-' || c == '_') {
        if (alphabet == 1) return -1;
        alphabet = 2;
        return c == '-' ? 62 : 63;
    }
    return -1;
}

constexpr size_t kMaxDomainB64 = 344; // base64 of 253 bytes, padded
// "domain/https/host/port": 253 + 5 + 255 (a name, or an IPv6 literal) + 5 + 3 separators, base64, padded.
constexpr size_t kMaxDescriptorB64 = 700;

Error mra_error(std::string_view label, std::string_view detail) {
    return make_error(std::string(label) + ": " + std::string(detail));
}

} // namespace

std::string base64_encode(std::string_view bytes, bool pad, bool url_safe) {
    const char* a = url_safe ? kUrl : kStd;
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    size_t i = 0;
    for (; i + 3 <= bytes.size(); i += 3) {
        uint32_t v = static_cast<uint32_t>(static_cast<unsigned char>(bytes[i])) << 16 |
                     static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8 |
                     static_cast<unsigned char>(bytes[i + 2]);
        out += a[v >> 18];
        out += a[(v >> 12) & 63];
        out += a[(v >> 6) & 63];
        out += a[v & 63];
    }
    size_t rest = bytes.size() - i;
    if (rest) {
        uint32_t v = static_cast<uint32_t>(static_cast<unsigned char>(bytes[i])) << 16;
        if (rest == 2) v |= static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8;
        out += a[v >> 18];
        out += a[(v >> 12) & 63];
        if (rest == 2) out += a[(v >> 6) & 63];
        if (pad) out.append(rest == 1 ? "==" : "=");
    }
    return out;
}

std::optional<std::string> base64_decode_strict(std::string_view text) {
    size_t pads = 0;
    while (!text.empty() && text.back() == '=' && pads < 2) {
        text.remove_suffix(1);
        ++pads;
    }
    if (pads && (text.size() + pads) % 4 != 0) return std::nullopt; // padding only as RFC 4648 places it
    if (text.size() % 4 == 1) return std::nullopt;
    int alphabet = 0;
    std::string out;
    out.reserve(text.size() * 3 / 4);
    uint32_t acc = 0;
    int bits = 0;
    for (char c : text) {
        int v = b64_value(c, alphabet);
        if (v < 0) return std::nullopt; // includes a third '=' or '=' in the middle
        acc = (acc << 6) | static_cast<uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((acc >> bits) & 0xff);
        }
    }
    // Non-zero leftover bits would give one domain many spellings.
    if (bits && (acc & ((1u << bits) - 1)) != 0) return std::nullopt;
    return out;
}

Result<std::string> canonical_domain(std::string_view domain) {
    std::string d;
    d.reserve(domain.size());
    for (char c : domain)
        d += (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
    if (!d.empty() && d.back() == '.') d.pop_back();
    if (d.empty() || d.size() > 253) return mra_error("bad_domain", "empty or longer than 253");
    size_t start = 0;
    std::string_view last;
    while (true) {
        size_t dot = d.find('.', start);
        std::string_view label(d.data() + start, (dot == std::string::npos ? d.size() : dot) - start);
        if (label.empty() || label.size() > 63) return mra_error("bad_domain", "empty or overlong label");
        if (label.front() == '-' || label.back() == '-') return mra_error("bad_domain", "label edge hyphen");
        if (!std::all_of(label.begin(), label.end(),
                         [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; }))
            return mra_error("bad_domain", "not letters, digits, hyphen");
        last = label;
        if (dot == std::string::npos) break;
        start = dot + 1;
    }
    if (std::all_of(last.begin(), last.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return mra_error("bad_domain", "numeric top-level label");
    return d;
}

std::string encode_domain(std::string_view domain) {
    std::string d(domain);
    for (auto& c : d)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    return base64_encode(d, false, false);
}

namespace {
// decode_domain's checks on a segment whose strict decoding (`raw`) is already known: parse_mra_path decodes
// the first segment once for both of its readings.
Result<std::string> domain_of(std::string_view b64, const std::optional<std::string>& raw) {
    if (b64.empty() || b64.size() > kMaxDomainB64) return mra_error("bad_domain", "bad base64 length");
    if (!raw) return mra_error("bad_domain", "not strict base64");
    return canonical_domain(*raw);
}
} // namespace

Result<std::string> decode_domain(std::string_view b64) {
    // Bounded before decoding: the length check is domain_of's first.
    if (b64.size() > kMaxDomainB64) return domain_of(b64, std::nullopt);
    return domain_of(b64, base64_decode_strict(b64));
}

std::string_view mra_kind_name(MraKind k) {
    switch (k) {
    case MraKind::EdgeConfig:
        return "edge_config";
    case MraKind::EdgeSso:
        return "edge_sso";
    case MraKind::Proxy:
        return "proxy";
    case MraKind::SsoAuthorize:
        return "sso_authorize";
    case MraKind::SsoFedlet:
        return "sso_fedlet";
    case MraKind::Other:
        return "other";
    }
    return "unknown";
}

namespace {

// The proxy target both path forms share: scheme, host (already percent-decoded where the form allows it)
// and port, canonicalised the same way whichever form carried them.
Result<void> set_proxy_target(MraPath& out, std::string_view scheme, std::string_view host,
                              std::string_view port) {
    out.kind = MraKind::Proxy;
    out.scheme = std::string(scheme);
    if (host.find(':') != std::string_view::npos && (host.empty() || host.front() != '['))
        return mra_error("bad_proxy_path", "IPv6 host must be bracketed");
    auto h = canonical_host(host);
    if (!h) return mra_error("bad_proxy_path", h.error().message);
    out.host = std::move(*h);
    auto p = parse_port(port);
    if (!p) return mra_error("bad_proxy_path", p.error().message);
    out.port = *p;
    return {};
}

// `descriptor`: the decoded first segment, "domain/scheme/host/port"; `rest`: the path after that segment.
Result<MraPath> parse_descriptor(std::string_view descriptor, const std::string& rest,
                                 const PathPolicy& policy) {
    std::string_view parts[4];
    size_t n = 0, start = 0;
    while (n < 4) {
        size_t slash = descriptor.find('/', start);
        parts[n++] = descriptor.substr(start, slash == std::string_view::npos ? std::string_view::npos
                                                                              : slash - start);
        if (slash == std::string_view::npos) break;
        start = slash + 1;
        if (n == 4) return mra_error("bad_proxy_path", "descriptor has more than domain/scheme/host/port");
    }
    if (n != 4) return mra_error("bad_proxy_path", "descriptor is not domain/scheme/host/port");
    MraPath out;
    out.descriptor_form = true;
    auto dom = canonical_domain(parts[0]);
    if (!dom) return dom.error();
    out.domain = std::move(*dom);
    if (parts[1] != "http" && parts[1] != "https")
        return mra_error("bad_proxy_path", "descriptor scheme is not http or https");
    // Decoded bytes, not a URI: a '%' or any byte outside a host name's alphabet is refused by
    // canonical_host, so nothing here is decoded a second time.
    if (parts[2].find('%') != std::string_view::npos)
        return mra_error("bad_proxy_path", "percent-encoding in a descriptor host");
    if (auto t = set_proxy_target(out, parts[1], parts[2], parts[3]); !t) return t.error();
    auto norm = normalise_target(rest, policy);
    if (!norm) return norm.error();
    out.path = std::move(norm->path);
    out.match_path = std::move(norm->match_path);
    out.query = std::move(norm->query);
    out.has_query = norm->has_query;
    return out;
}

} // namespace

Result<MraPath> parse_mra_path(std::string_view raw_target, const PathPolicy& policy) {
    if (raw_target.empty() || raw_target.front() != '/')
        return mra_error("bad_proxy_path", "MRA paths are origin-form");
    size_t qpos = raw_target.find('?');
    std::string_view raw_path = raw_target.substr(0, qpos);
    std::string_view raw_query =
        qpos == std::string_view::npos ? std::string_view{} : raw_target.substr(qpos);

    // Leading fixed segments, taken raw: none of them may be a dot segment or hide a separator, so
    // they are split before any decoding happens.
    auto next_segment = [&](size_t& pos, std::string_view& seg) {
        if (pos > raw_path.size()) return false;
        size_t slash = raw_path.find('/', pos);
        seg = raw_path.substr(pos, slash == std::string_view::npos ? std::string_view::npos : slash - pos);
        pos = slash == std::string_view::npos ? raw_path.size() + 1 : slash + 1;
        return true;
    };
    // The rest of the path from `pos`, including its leading '/', plus the query.
    auto remainder = [&](size_t pos) {
        std::string r = "/";
        if (pos <= raw_path.size()) r.append(raw_path.substr(pos));
        r.append(raw_query);
        return r;
    };

    MraPath out;
    size_t pos = 1;
    std::string_view seg;
    next_segment(pos, seg);
    // The single-segment descriptor form (MRA-PROTOCOL.md, "Proxied HTTP": one public capture encodes
    // "domain/https/host/port" as one base64url segment, the path following it). A domain never contains
    // '/', so a first segment whose strict decoding has one can only be a descriptor; both forms then go
    // through the same canonicalisation below, and the allow list sees one MraPath whatever the spelling.
    // The segment is decoded once for both readings (this runs on every request, on both edges).
    std::optional<std::string> raw;
    if (seg.size() <= kMaxDescriptorB64) {
        raw = base64_decode_strict(seg);
        if (raw && raw->find('/') != std::string::npos) return parse_descriptor(*raw, remainder(pos), policy);
    }
    auto dom = domain_of(seg, raw);
    if (!dom) return dom.error();
    out.domain = std::move(*dom);

    size_t service_pos = pos;
    std::string_view service;
    if (!next_segment(pos, service)) service = {};
    std::string rest;
    if (service == "get_edge_config" || service == "get_edge_sso") {
        out.kind = service == "get_edge_config" ? MraKind::EdgeConfig : MraKind::EdgeSso;
        rest = remainder(pos);
    } else if (service == "authorize" || service == "fedlet") {
        out.kind = service == "authorize" ? MraKind::SsoAuthorize : MraKind::SsoFedlet;
        rest = remainder(pos);
    } else if (service == "http" || service == "https") {
        std::string_view host_seg, port_seg;
        if (!next_segment(pos, host_seg) || !next_segment(pos, port_seg))
            return mra_error("bad_proxy_path", "expected /<scheme>/<host>/<port>");
        // The host may carry an encoded IPv6 literal (%5B..%5D, %3A); nothing else is decoded.
        std::string host;
        for (size_t i = 0; i < host_seg.size(); ++i) {
            char c = host_seg[i];
            if (c == '%' && i + 2 < host_seg.size()) {
                std::string_view e = host_seg.substr(i, 3);
                char d = 0;
                if (e == "%5B" || e == "%5b")
                    d = '[';
                else if (e == "%5D" || e == "%5d")
                    d = ']';
                else if (e == "%3A" || e == "%3a")
                    d = ':';
                else
                    return mra_error("bad_proxy_path", "unexpected percent-encoding in host");
                host += d;
                i += 2;
            } else {
                host += c;
            }
        }
        if (auto t = set_proxy_target(out, service, host, port_seg); !t) return t.error();
        rest = remainder(pos);
    } else {
        out.kind = MraKind::Other;
        rest = remainder(service_pos);
    }

    auto n = normalise_target(rest, policy);
    if (!n) return n.error();
    out.path = std::move(n->path);
    out.match_path = std::move(n->match_path);
    out.query = std::move(n->query);
    out.has_query = n->has_query;
    return out;
}

} // namespace edgepair::http
