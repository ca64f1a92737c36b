// libFuzzer target: what edge-c reads from an XMPP sign-in to pick the user's IM&P home node
// (edge-c/imp_home.h): the client's SASL <auth/> element (from the internet, through edge-e) and an IM&P
// node's <stream:error/>. Invariants beyond "no crash": a user read is non-empty, at most 256 bytes, lower
// case, without '@', '/' or control characters; a hinted node is non-empty, without whitespace, '/', '@' or
// control characters (it becomes a DNS name edge-c may connect to, if discovery knows it).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "edge-c/imp_home.h"
#include "edge-c/xmpp_sasl.h"

using namespace edgepair;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view v(reinterpret_cast<const char*>(data), size);
    if (auto a = edge_c::read_sasl_auth(v); a && !a->user.empty()) {
        const auto* u = &a->user;
        if (u->size() > 256) std::abort();
        for (unsigned char c : *u)
            if (c < 0x20 || c == 0x7f || c == '/' || c == '@' || (c >= 'A' && c <= 'Z')) std::abort();
    }
    if (auto n = edge_c::home_node_hint(v)) {
        if (n->empty() || n->size() > 253) std::abort();
        for (unsigned char c : *n)
            if (c <= 0x20 || c == 0x7f || c == '/' || c == '@' || (c >= 'A' && c <= 'Z')) std::abort();
    }
    return 0;
}
