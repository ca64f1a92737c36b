// libFuzzer target: what a Unified CM publisher answers edge-c's MRA access policy look-up (AXL getUser and
// getUserProfileProvision, edge-c/mra_access_policy.h) and the client's SASL <auth/> the policy is checked
// for (edge-c/xmpp_sasl.h). The first byte picks the part: even = the AXL pair (split at the first NUL),
// odd = the <auth/>. Invariants beyond "no crash": a found user comes back with known policies; a user read
// from an <auth/> (or named by a token mechanism) is lower case without '@', '/' or control characters; a
// token has no whitespace; a named identity edge-c cannot read matches no token.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "edge-c/mra_access_policy.h"
#include "edge-c/xmpp_sasl.h"

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
    // The client's <auth/>: a user read is lower case without '@'; a token has no whitespace.
    if (auto a = read_sasl_auth(in)) {
        for (unsigned char c : a->user)
            if (c < 0x20 || c == '@' || c == '/' || (c >= 'A' && c <= 'Z')) std::abort();
        for (unsigned char c : a->token)
            if (c <= 0x20 || c == 0x7f) std::abort();
        // A token's named identity is read like the user, and an unreadable one never matches.
        for (unsigned char c : a->named.user)
            if (c < 0x20 || c == '@' || c == '/' || (c >= 'A' && c <= 'Z')) std::abort();
        if (a->named.named && a->named.user.empty() && named_id_matches(a->named, "u", "example.com"))
            std::abort();
        if (!a->named.named && !a->named.user.empty()) std::abort();
    }
    return 0;
}
