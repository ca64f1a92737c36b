// libFuzzer target for request-target normalisation, host canonicalisation, base64 and MRA path parsing.
// Byte 0 picks the policy; the rest is the raw target.
//
// Invariants: an accepted path never contains anything an upstream could read as a traversal or a
// separator ("/../", "/./", "\", %2F, %5C, NUL, CR, LF, "//"), carries only RFC 3986 path characters
// with upper-case percent hex, and normalising it again changes nothing.
#include "common/http/b64_domain.h"
#include "common/http/url_path.h"

#include <cstdint>
#include <string>
#include <string_view>

using namespace edgepair::http;

namespace {

#define EP_CHECK(cond)                                                                                       \
    do {                                                                                                     \
        if (!(cond)) __builtin_trap();                                                                       \
    } while (0)

bool contains(std::string_view s, std::string_view needle) {
    return s.find(needle) != std::string_view::npos;
}

bool ends_with(std::string_view s, std::string_view tail) {
    return s.size() >= tail.size() && s.substr(s.size() - tail.size()) == tail;
}

bool path_char_ok(char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return std::string_view("-._~!$&'()*+,;=:@/%").find(c) != std::string_view::npos;
}

void check_path(std::string_view p) {
    EP_CHECK(!p.empty() && p[0] == '/');
    EP_CHECK(!contains(p, "/../") && !contains(p, "/./") && !ends_with(p, "/..") && !ends_with(p, "/."));
    EP_CHECK(!contains(p, "//"));
    for (size_t i = 0; i < p.size(); ++i) {
        EP_CHECK(path_char_ok(p[i]));
        if (p[i] == '%') {
            EP_CHECK(i + 2 < p.size());
            for (int k = 1; k <= 2; ++k) {
                char h = p[i + k];
                EP_CHECK((h >= '0' && h <= '9') || (h >= 'A' && h <= 'F'));
            }
            std::string_view enc = p.substr(i, 3);
            EP_CHECK(enc != "%2F" && enc != "%5C" && enc != "%00" && enc != "%0D" && enc != "%0A" &&
                     enc != "%2E");
        }
    }
}

void check_query(std::string_view q) {
    for (char c : q) {
        auto u = static_cast<unsigned char>(c);
        EP_CHECK(u > 0x20 && u < 0x7f && c != '#' && c != '\\');
    }
    EP_CHECK(!contains(q, "%00") && !contains(q, "%0D") && !contains(q, "%0A"));
}

void check_target(std::string_view in, const PathPolicy& pol) {
    PathReason why = PathReason::None;
    auto r = normalise_target(in, pol, &why);
    if (!r) {
        EP_CHECK(why != PathReason::None);
        EP_CHECK(error_label(r.error()) == path_reason_name(why));
        return;
    }
    EP_CHECK(why == PathReason::None);
    check_path(r->path);
    check_path(r->match_path);
    EP_CHECK(!contains(r->match_path, ";"));
    EP_CHECK(r->match_path.size() <= r->path.size());
    check_query(r->query);
    auto again = normalise_target(r->to_target(), pol);
    EP_CHECK(again.ok());
    EP_CHECK(again->path == r->path);
    EP_CHECK(again->match_path == r->match_path);
    EP_CHECK(again->query == r->query);
    EP_CHECK(again->has_query == r->has_query);
    if (!r->host.empty()) {
        auto h = canonical_host(r->host);
        EP_CHECK(h.ok() && *h == r->host);
        EP_CHECK(r->port != 0);
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    PathPolicy pol;
    pol.collapse_slashes = (data[0] & 1) != 0;
    pol.allow_absolute_form = (data[0] & 2) != 0;
    std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);

    check_target(in, pol);

    auto h = canonical_host(in);
    if (h) {
        auto again = canonical_host(*h);
        EP_CHECK(again.ok() && *again == *h);
        auto kind = host_kind(*h);
        EP_CHECK((kind == HostKind::IPv6) == (h->front() == '['));
    }
    auto port = parse_port(in);
    if (port) EP_CHECK(std::to_string(*port) == in);

    for (bool pad : {false, true})
        for (bool url : {false, true}) {
            auto enc = base64_encode(in, pad, url);
            auto dec = base64_decode_strict(enc);
            EP_CHECK(dec && *dec == in);
        }
    if (auto dec = base64_decode_strict(in)) {
        // Strict decoding means one spelling per alphabet and padding choice.
        bool url = in.find_first_of("-_") != std::string_view::npos;
        bool pad = !in.empty() && in.back() == '=';
        EP_CHECK(base64_encode(*dec, pad, url) == in);
    }

    auto mra = parse_mra_path(in, pol);
    if (mra) {
        check_path(mra->path);
        check_query(mra->query);
        auto dom = decode_domain(encode_domain(mra->domain));
        EP_CHECK(dom.ok() && *dom == mra->domain);
        if (mra->kind == MraKind::Proxy) {
            EP_CHECK(mra->port != 0);
            EP_CHECK(mra->scheme == "http" || mra->scheme == "https");
            auto hc = canonical_host(mra->host);
            EP_CHECK(hc.ok() && *hc == mra->host);
        }
    }
    return 0;
}
