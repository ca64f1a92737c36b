// libFuzzer target: what a Unified CM publisher answers edge-c's MRA access policy look-up (AXL getUser and
// getUserProfileProvision, edge-c/mra_access_policy.h) and what an XMPP client sends before its SASL <auth>
// (XmppSaslWatch). The first byte picks the part: even = the AXL pair (split at the first NUL), odd = the
// XMPP bytes, fed in two pieces. Invariants beyond "no crash": a found user comes back with known policies,
// the watch never hands back more bytes than it was fed, and handing back everything restores the input.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "edge-c/mra_access_policy.h"

using namespace edgepair::edge_c;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
    if ((data[0] & 1) == 0) {
        auto cut = in.find('\0');
        std::string_view user = in.substr(0, cut);
        std::optional<std::pair<int, std::string_view>> prof;
        if (cut != std::string_view::npos) prof = std::pair<int, std::string_view>{200, in.substr(cut + 1)};
        auto r = access_from_axl("u", (data[0] & 2) ? 500 : 200, user, prof);
        if (r && !r->found && !r->devices.empty()) std::abort();
        if (r) {
            for (auto p : {r->desktop, r->mobile})
                if (p != MraPolicy::NoService && p != MraPolicy::ImOnly && p != MraPolicy::ImVoiceVideo)
                    std::abort();
            (void)effective_policy(*r, DeviceClass::Unknown, edgepair::config::UnknownDeviceClass::Strictest);
        }
        return 0;
    }
    XmppSaslWatch w;
    const size_t half = in.size() / 2;
    std::string out;
    w.feed(in.substr(0, half));
    out += w.take();
    w.feed(in.substr(half));
    out += w.take();
    if (out.size() > in.size()) std::abort();
    out += w.release();
    if (out != in) std::abort();
    (void)sasl_user(w.mechanism(), w.user());
    return 0;
}
