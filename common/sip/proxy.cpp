#include "common/sip/proxy.h"

#include "common/sip/base32.h"
#include "common/sip/lex.h"

#include <array>

namespace edgepair::sip {

using namespace lex;

namespace {

Validation bad(std::string detail, int status = 400) {
    return Validation{status, std::move(detail)};
}

bool broadcast_or_multicast(std::string_view host) {
    if (!host.empty() && host.front() == '[') return host.size() > 3 && iequals(host.substr(1, 2), "ff");
    if (host == "255.255.255.255" || host == "0.0.0.0") return true;
    size_t dot = host.find('.');
    uint64_t first = 0;
    if (dot == std::string_view::npos || parse_uint(host.substr(0, dot), 255, first) != Number::ok)
        return false;
    // Only a dotted quad is an address; "224.example.com" is a name.
    for (char c : host)
        if (!is_digit(c) && c != '.') return false;
    return first >= 224 && first <= 239;
}

Header* first_field(Message& m, HeaderId id) {
    for (auto& h : m.headers())
        if (h.id == id) return &h;
    return nullptr;
}

// Removes the first element of the first field of `id`.
void erase_top_element(Message& m, HeaderId id) {
    auto& hs = m.headers();
    for (auto it = hs.begin(); it != hs.end(); ++it) {
        if (it->id != id) continue;
        auto fe = first_element(it->value);
        if (fe.rest == std::string_view::npos)
            hs.erase(it);
        else
            it->value = std::string(trim(std::string_view(it->value).substr(fe.rest)));
        return;
    }
}

} // namespace

Validation validate(const Message& m, const ValidateOptions& opts, RoutingInfo* info) {
    // Filled in place: moving a RoutingInfo (two NameAddr and a Via) costs as much as a small parse.
    RoutingInfo local;
    RoutingInfo& ri = info ? *info : local;
    if (!iequals(m.version(), "SIP/2.0")) {
        // Only a well-formed other version earns 505 Version Not Supported (RFC 4475 badvers);
        // anything else in that place is a syntax error (RFC 4475 trws).
        std::string_view v = m.version();
        size_t dot = v.find('.');
        bool well_formed =
            istarts_with(v, "SIP/") && dot != std::string_view::npos && dot > 4 && dot + 1 < v.size();
        for (size_t i = 4; well_formed && i < v.size(); ++i)
            if (i != dot && !is_digit(v[i])) well_formed = false;
        if (!well_formed) return bad("malformed SIP version");
        return bad("unsupported SIP version " + m.version(), 505);
    }
    if (m.is_request()) {
        const std::string& ru = m.request_uri();
        if (ru.empty() || ru.find_first_of(" \t") != std::string::npos) return bad("malformed Request-URI");
        Uri u;
        if (auto r = Uri::parse_into(ru, u); !r) return bad("malformed Request-URI: " + r.error().message);
        // RFC 3261 19.1.1: the headers component is not allowed in a Request-URI (RFC 4475 escruri).
        if (u.is_sip() && u.headers) return bad("headers in Request-URI");
        if (!u.is_sip() && !iequals(u.scheme, "tel")) return bad("unsupported URI scheme " + u.scheme, 416);
    }
    if (m.count(HeaderId::call_id) != 1) return bad("need exactly one Call-ID");
    ri.call_id = m.find(HeaderId::call_id)->value;
    if (!valid_call_id(ri.call_id)) return bad("malformed Call-ID");

    if (m.count(HeaderId::cseq) != 1) return bad("need exactly one CSeq");
    auto cseq = m.cseq();
    if (!cseq) return bad(cseq.error().message);
    // Method names are case-sensitive (RFC 3261 7.1).
    if (m.is_request() && cseq->method != m.method())
        return bad("CSeq method does not match the request method");
    ri.cseq = std::move(*cseq);

    if (m.count(HeaderId::from) != 1) return bad("need exactly one From");
    if (auto r = NameAddr::parse_into(m.find(HeaderId::from)->value, ri.from); !r)
        return bad("malformed From: " + r.error().message);
    if (opts.require_from_tag && (!ri.from.tag() || ri.from.tag()->empty())) return bad("From without tag");

    if (m.count(HeaderId::to) != 1) return bad("need exactly one To");
    if (auto r = NameAddr::parse_into(m.find(HeaderId::to)->value, ri.to); !r)
        return bad("malformed To: " + r.error().message);

    auto vias = m.values(HeaderId::via);
    if (vias.empty()) return bad("missing Via");
    for (size_t i = 0; i < vias.size(); ++i) {
        // The top one is parsed into the RoutingInfo, the others only checked.
        Via other;
        Via& v = i == 0 ? ri.top_via : other;
        if (auto r = Via::parse_into(vias[i], v); !r) return bad("malformed Via: " + r.error().message);
        if (opts.reject_broadcast_via && broadcast_or_multicast(v.host)) return bad("broadcast Via sent-by");
        if (i == 0) {
            auto branch = v.branch();
            if (!branch || branch->empty()) return bad("top Via without branch");
            if (opts.require_magic_cookie && m.is_request() && !v.rfc3261_branch())
                return bad("top Via branch without magic cookie");
        }
    }

    size_t mf_count = m.count(HeaderId::max_forwards);
    if (mf_count > 1) return bad("more than one Max-Forwards");
    if (mf_count == 1) {
        auto mf = parse_max_forwards(m.find(HeaderId::max_forwards)->value);
        if (!mf) return bad(mf.error().message);
        ri.max_forwards = *mf;
    }
    return {};
}

std::vector<std::string> unsupported_proxy_require(const Message& m,
                                                   const std::vector<std::string_view>& supported) {
    std::vector<std::string> out;
    for (auto tag : m.values(HeaderId::proxy_require)) {
        if (tag.empty()) continue;
        bool known = false;
        for (auto s : supported)
            known = known || iequals(s, tag);
        if (!known) out.emplace_back(tag);
    }
    return out;
}

std::string make_branch(const RandomFill& random) {
    std::array<uint8_t, 16> bytes{};
    random(bytes.data(), bytes.size());
    return std::string(kMagicCookie) + base32::encode(bytes);
}

void push_via(Message& m, const ViaSpec& spec) {
    Via v;
    v.transport = spec.transport;
    v.host = spec.host;
    v.port = spec.port;
    v.params.set("branch", spec.branch);
    if (spec.rport) v.params.set("rport", std::nullopt);
    m.prepend_header(HeaderId::via, v.to_string());
}

bool pop_via(Message& m) {
    if (!first_field(m, HeaderId::via)) return false;
    erase_top_element(m, HeaderId::via);
    return true;
}

bool fill_received_rport(Message& m, std::string_view src_ip, uint16_t src_port) {
    Header* h = first_field(m, HeaderId::via);
    if (!h) return false;
    auto v = Via::parse(first_element(h->value).first);
    if (!v) return false;
    return fill_received_rport(m, std::move(*v), src_ip, src_port);
}

bool fill_received_rport(Message& m, Via top, std::string_view src_ip, uint16_t src_port) {
    Header* h = first_field(m, HeaderId::via);
    if (!h) return false;
    auto fe = first_element(h->value);
    // The sent-by of an IPv6 client is bracketed; the source address is not.
    std::string_view host = top.host;
    if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
    auto rport = top.params.get("rport");
    bool want_rport = rport && rport->empty();
    if (!want_rport && iequals(host, src_ip)) return true;
    top.params.set("received", std::string(src_ip));
    if (want_rport) top.params.set("rport", std::to_string(src_port));
    std::string out = top.to_string();
    if (fe.rest != std::string_view::npos) {
        out += ", ";
        out += trim(std::string_view(h->value).substr(fe.rest));
    }
    h->value = std::move(out);
    return true;
}

void push_record_route(Message& m, const Uri& uri) {
    m.prepend_header(HeaderId::record_route, "<" + uri.to_string() + ">");
}
void push_path(Message& m, const Uri& uri) {
    m.prepend_header(HeaderId::path, "<" + uri.to_string() + ">");
}
void push_route(Message& m, const Uri& uri) {
    m.prepend_header(HeaderId::route, "<" + uri.to_string() + ">");
}

Result<bool> pop_route_if(Message& m, const std::function<bool(const Uri&)>& is_us) {
    Header* h = first_field(m, HeaderId::route);
    if (!h) return false;
    auto na = NameAddr::parse(first_element(h->value).first);
    if (!na) return make_error("malformed Route: " + na.error().message);
    if (!is_us(na->uri)) return false;
    erase_top_element(m, HeaderId::route);
    return true;
}

Result<size_t> rewrite_contacts(Message& m,
                                const std::function<std::optional<std::string>(const Uri&)>& rewrite) {
    size_t n = 0;
    for (auto& h : m.headers()) {
        if (h.id != HeaderId::contact) continue;
        std::string joined;
        joined.reserve(h.value.size() + 64);
        for (auto part : split_list(h.value)) {
            if (!joined.empty()) joined += ", ";
            if (part == "*") {
                joined += part;
                continue;
            }
            NameAddr na;
            if (auto r = NameAddr::parse_into(part, na); !r)
                return make_error("malformed Contact: " + r.error().message);
            if (auto u = rewrite(na.uri)) {
                na.append_to(joined, *u);
                ++n;
            } else {
                joined += part;
            }
        }
        h.value = std::move(joined);
    }
    return n;
}

MaxForwardsResult decrement_max_forwards(Message& m, int initial) {
    size_t count = m.count(HeaderId::max_forwards);
    if (count > 1) return MaxForwardsResult::invalid;
    if (count == 0) {
        m.set_header(HeaderId::max_forwards, std::to_string(initial));
        return MaxForwardsResult::ok;
    }
    auto mf = parse_max_forwards(m.find(HeaderId::max_forwards)->value);
    if (!mf) return MaxForwardsResult::invalid;
    if (*mf == 0) return MaxForwardsResult::exhausted;
    m.set_header(HeaderId::max_forwards, std::to_string(*mf - 1));
    return MaxForwardsResult::ok;
}

std::string_view default_reason(int status) {
    switch (status) {
    case 100:
        return "Trying";
    case 180:
        return "Ringing";
    case 183:
        return "Session Progress";
    case 200:
        return "OK";
    case 202:
        return "Accepted";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 407:
        return "Proxy Authentication Required";
    case 408:
        return "Request Timeout";
    case 413:
        return "Request Entity Too Large";
    case 415:
        return "Unsupported Media Type";
    case 416:
        return "Unsupported URI Scheme";
    case 420:
        return "Bad Extension";
    case 423:
        return "Interval Too Brief";
    case 429:
        return "Too Many Requests";
    case 480:
        return "Temporarily Unavailable";
    case 481:
        return "Call/Transaction Does Not Exist";
    case 482:
        return "Loop Detected";
    case 483:
        return "Too Many Hops";
    case 484:
        return "Address Incomplete";
    case 486:
        return "Busy Here";
    case 487:
        return "Request Terminated";
    case 488:
        return "Not Acceptable Here";
    case 500:
        return "Server Internal Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Server Time-out";
    case 505:
        return "Version Not Supported";
    case 513:
        return "Message Too Large";
    case 603:
        return "Decline";
    default:
        break;
    }
    if (status >= 100 && status < 200) return "Trying";
    if (status < 300) return "OK";
    if (status < 400) return "Redirect";
    if (status < 500) return "Client Error";
    if (status < 600) return "Server Error";
    return "Global Failure";
}

Message make_response(const Message& request, int status, std::string_view reason, std::string_view to_tag) {
    Message r = Message::response(status, std::string(reason.empty() ? default_reason(status) : reason));
    for (const auto& h : request.headers()) {
        switch (h.id) {
        case HeaderId::via:
        case HeaderId::from:
        case HeaderId::call_id:
        case HeaderId::cseq:
            r.headers().push_back(h);
            break;
        case HeaderId::to: {
            Header to = h;
            if (status > 100 && !to_tag.empty()) {
                auto na = NameAddr::parse(h.value);
                if (na && !na->tag()) {
                    to.value += ";tag=";
                    to.value += to_tag;
                }
            }
            r.headers().push_back(std::move(to));
            break;
        }
        default:
            break;
        }
    }
    return r;
}

MethodPolicy mra_method_policy(std::string_view method) {
    if (method == "UPDATE") return MethodPolicy{501, "Not Implemented"};
    return {};
}

std::string_view mra_allow_header() {
    return "INVITE, ACK, BYE, CANCEL, OPTIONS, REGISTER, SUBSCRIBE, NOTIFY, REFER, INFO, MESSAGE, PRACK, "
           "PUBLISH";
}

} // namespace edgepair::sip
