// libFuzzer target for the HTTP/2 request head: the input is an HPACK header block, decoded by nghttp2's
// inflater exactly as edge-e's h2 session does, and fed field by field to H2RequestBuilder.
//
// Invariants: what the builder accepts carries a token method other than CONNECT, an origin-form or
// other non-empty :path, exactly one Host, no connection-specific field, only lower-case token names and
// values without NUL/CR/LF or edge whitespace; and it never stores more than its header budget.
#include "common/http/h2_request.h"

#include <cstdint>
#include <string>
#include <string_view>

#include <nghttp2/nghttp2.h>

using namespace edgepair::http;

namespace {

#define EP_CHECK(cond)                                                                                       \
    do {                                                                                                     \
        if (!(cond)) __builtin_trap();                                                                       \
    } while (0)

bool lower_token(std::string_view n) {
    if (n.empty()) return false;
    for (char c : n)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos))
            return false;
    return true;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    nghttp2_hd_inflater* inf = nullptr;
    if (nghttp2_hd_inflate_new(&inf) != 0) return 0;
    H2RequestLimits lim;
    lim.max_header_bytes = 2048;
    lim.max_headers = 16;
    H2RequestBuilder b(lim);
    const uint8_t* in = data;
    size_t left = size;
    bool ok = true;
    for (int guard = 0; guard < 100000; ++guard) {
        nghttp2_nv nv;
        int flags = 0;
        ssize_t n = nghttp2_hd_inflate_hd2(inf, &nv, &flags, in, left, 1);
        if (n < 0) {
            ok = false;
            break;
        }
        in += n;
        left -= size_t(n);
        if (flags & NGHTTP2_HD_INFLATE_EMIT)
            b.add(std::string_view(reinterpret_cast<const char*>(nv.name), nv.namelen),
                  std::string_view(reinterpret_cast<const char*>(nv.value), nv.valuelen));
        if (flags & NGHTTP2_HD_INFLATE_FINAL) {
            nghttp2_hd_inflate_end_headers(inf);
            break;
        }
        if (n == 0 && left == 0) break;
    }
    nghttp2_hd_inflate_del(inf);
    if (!ok || !b.finish()) return 0;

    const auto& h = b.head();
    EP_CHECK(!h.method.empty() && h.method != "CONNECT");
    EP_CHECK(!h.target.empty());
    EP_CHECK(h.headers.count("host") == 1);
    size_t bytes = 0;
    for (const auto& f : h.headers) {
        EP_CHECK(lower_token(f.name));
        EP_CHECK(f.name != "connection" && f.name != "transfer-encoding" && f.name != "upgrade" &&
                 f.name != "keep-alive" && f.name != "proxy-connection" && f.name != "te");
        EP_CHECK(f.value.find_first_of(std::string_view("\0\r\n", 3)) == std::string::npos);
        if (f.name != "cookie") bytes += f.name.size() + f.value.size() + 32; // crumbs were counted apart
        if (!f.value.empty()) EP_CHECK(f.value.front() != ' ' && f.value.back() != ' ');
    }
    EP_CHECK(bytes <= lim.max_header_bytes + 64); // + the Host copied from :authority
    return 0;
}
