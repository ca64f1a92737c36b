// Feeds arbitrary bytes, as a remote XMPP server would send them, to the dialling side of server-to-server
// STARTTLS (common/xmpp/s2s.h) in each security mode, whole and split, and checks that the outcome does not
// depend on the split and that a plaintext outcome hands back only bytes that were received. The attribute
// reader, the domain policy and the STARTTLS offer edge-e adds to IM&P's features get the same bytes.
#include "common/xmpp/s2s.h"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

using namespace edgepair::xmpp;

namespace {

void check(bool ok) {
    if (!ok) std::abort();
}

DialStep run(std::string_view in, size_t chunk, S2sSecurity sec) {
    DialNegotiator n(sec, 2048);
    DialStep last;
    size_t pos = 0;
    while (pos < in.size()) {
        size_t k = std::min(chunk, in.size() - pos);
        auto st = n.feed(in.substr(pos, k));
        pos += k;
        // Events queued behind <starttls/>'s answer are drained as if the rest arrived later.
        for (int i = 0; st.kind == DialStep::SendStarttls && i < 4; ++i) {
            last = st;
            st = n.feed({});
        }
        if (st.kind != DialStep::More) {
            last = st;
            if (st.kind != DialStep::SendStarttls) break;
        }
    }
    return last;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    size_t chunk = (data[0] % 16) + 1;
    std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
    for (auto sec : {S2sSecurity::Required, S2sSecurity::Optional, S2sSecurity::None}) {
        DialStep whole = run(in, in.size() + 1, sec);
        DialStep split = run(in, chunk, sec);
        check(whole.kind == split.kind);
        if (whole.kind == DialStep::Plain) {
            check(whole.bytes == split.bytes);
            check(sec != S2sSecurity::Required);
            check(whole.bytes.size() <= in.size());
        }
    }
    std::string attr = start_tag_attr(in, "from");
    check(attr.size() <= in.size());
    DomainPolicy p{{"partner.test"}, {"*.bad.test"}};
    (void)p.refusal(attr);
    (void)normalise_domain(in);
    std::string offered = add_starttls_feature(in);
    check(offered.size() >= in.size());
    return 0;
}
