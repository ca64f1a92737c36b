#include "common/media/sdp_relay.h"

#include <algorithm>

namespace edgepair::media {

namespace {

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
               return lower(x) == lower(y);
           });
}

// Transport attributes of the sender: ICE (edge-e latches instead), RTCP placement (the relay writes its
// own), keys (never cross legs), BUNDLE membership (the relay gives each m-line its own port).
void strip_transport(SdpMedia& md) {
    md.remove_attributes({"candidate", "ice-ufrag", "ice-pwd", "ice-options", "remote-candidates", "ice-lite",
                          "ice-mismatch", "end-of-candidates", "rtcp-mux", "rtcp-mux-only", "rtcp", "crypto",
                          "bundle-only"});
}

} // namespace

RelayKind relay_kind(const SdpMedia& md) {
    // A port count ("m=video 4000/2") is layered coding on several port pairs: not something we relay.
    if (md.port == 0 || md.port_count != 1) return RelayKind::None;
    if (md.is_rtp()) return RelayKind::Rtp;
    // Only the plain UDP transport: TCP/BFCP needs a TCP relay and the TLS/DTLS variants end-to-end keys.
    if (iequals(md.proto, "UDP/BFCP")) return RelayKind::Bfcp;
    return RelayKind::None;
}

bool wants_rtcp_mux(const SdpMedia& md) {
    return md.has_attribute("rtcp-mux") || md.has_attribute("rtcp-mux-only");
}

void rewrite_for_relay(Sdp& sdp, std::span<const LineView> lines, std::string_view address) {
    // A BUNDLE group would ask the receiver to put every m-line on one port, which the relay does not do.
    std::erase_if(sdp.session, [](const SdpLine& l) {
        return l.type == 'a' && (l.value == "group:BUNDLE" || l.value.starts_with("group:BUNDLE "));
    });
    for (size_t i = 0; i < sdp.media.size(); ++i) {
        SdpMedia& md = sdp.media[i];
        strip_transport(md);
        if (i >= lines.size() || !lines[i].relay) {
            // RFC 3264 6: a rejected stream keeps its m-line (same media, proto and formats) with port 0.
            md.port = 0;
            continue;
        }
        const LineView& v = lines[i];
        md.port = v.port;
        if (!v.proto.empty()) md.proto = v.proto;
        if (v.crypto) md.add_attribute("crypto", *v.crypto);
        if (v.rtcp_mux) md.add_attribute("rtcp-mux");
    }
    sdp.set_address(address);
}

} // namespace edgepair::media
