// libFuzzer target: the Authorization header value a client on the internet sends through edge-e to edge-c
// (edge-c/credentials.h). Invariants beyond "no crash": what parses is a non-empty user without control
// characters that re-encodes to an accepted header, and the UDS path segment built from it is unreserved
// characters and %XX escapes only, never a dot segment.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/http/b64_domain.h"
#include "edge-c/credentials.h"

using namespace edgepair;

namespace {

bool has_ctl(std::string_view s) {
    for (unsigned char c : s)
        if (c < 0x20 || c == 0x7f) return true;
    return false;
}

bool unreserved(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

bool is_hex_upper(char c) {
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view v(reinterpret_cast<const char*>(data), size);
    const std::string prefixed = "Basic " + std::string(v);
    for (std::string_view h : {v, std::string_view(prefixed)}) {
        auto c = edge_c::parse_basic_auth(h);
        if (!c) continue;
        if (c->user.empty() || c->user.size() > 256 || c->user.find(':') != std::string::npos) std::abort();
        if (has_ctl(c->user) || has_ctl(c->password)) std::abort();
        auto again = edge_c::parse_basic_auth("Basic " + http::base64_encode(c->user + ":" + c->password));
        if (!again || again->user != c->user || again->password != c->password) std::abort();

        auto seg = edge_c::encode_path_segment(c->user);
        if (seg == "." || seg == "..") std::abort();
        for (size_t i = 0; i < seg.size(); ++i) {
            if (seg[i] == '%') {
                if (i + 2 >= seg.size()) std::abort();
                if (!is_hex_upper(seg[i + 1]) || !is_hex_upper(seg[i + 2])) std::abort();
                i += 2;
            } else if (!unreserved(static_cast<unsigned char>(seg[i]))) {
                std::abort();
            }
        }
    }
    return 0;
}
