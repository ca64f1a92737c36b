// libFuzzer target: arbitrary bytes through Sdp::parse and CryptoAttr::parse, and for what parses, the edits
// edge-c's B2BUA makes. Invariants beyond "no crash":
// - serialize() output parses again (when still within the 64 kB limit) and re-serializes identically;
// - after set_address every media section resolves to that address, and the result still parses;
// - a parsed a=crypto formats to text that parses back to the same tag, suite and key.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/media/sdp.h"
#include "common/media/sdp_relay.h"

using namespace edgepair::media;

namespace {

constexpr size_t kMaxBody = 64 * 1024;
constexpr size_t kMaxLines = 1000;

void check(bool ok) {
    if (!ok) std::abort();
}

size_t line_count(const Sdp& s) {
    size_t n = s.session.size();
    for (const auto& m : s.media)
        n += 1 + m.lines.size();
    return n;
}

void crypto(std::string_view value) {
    auto c = CryptoAttr::parse(value);
    if (!c) return;
    check(c->master_key.size() == kSrtpMasterKeyLen);
    std::string text = c->format();
    auto back = CryptoAttr::parse(text);
    check(back.has_value());
    check(back->tag == c->tag && back->suite == c->suite && back->master_key == c->master_key);
    check(!back->has_lifetime_or_mki && back->session_params.empty());
    check(back->format() == text);
}

// serialize() must give a body the parser takes back unchanged, unless the edits pushed it over a limit.
void reparse(const Sdp& s) {
    std::string out = s.serialize();
    auto again = Sdp::parse(out);
    if (out.size() > kMaxBody || line_count(s) > kMaxLines) return;
    check(again.ok());
    check(again->session.size() == s.session.size());
    check(again->media.size() == s.media.size());
    check(again->serialize() == out);
}

void edit(Sdp s, std::string_view ip) {
    s.set_address(ip);
    s.bump_version();
    for (size_t i = 0; i < s.media.size(); ++i) {
        check(!s.media[i].connection());
        check(s.address_of(i) == std::string(ip));
    }
    for (auto& m : s.media) {
        m.remove_attributes({"crypto", "candidate", "rtcp", "ice-ufrag", "ice-pwd"});
        check(!m.has_attribute("crypto"));
        if (m.is_rtp()) {
            m.add_attribute("crypto",
                            "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR");
            m.add_attribute("rtcp-mux");
            check(m.attributes("crypto").size() == 1);
        }
        m.port = 36002;
    }
    reparse(s);
}

// The relay's rewrite (common/media/sdp_relay.h): every other relayable line relayed, the rest rejected. No
// m-line may be dropped, rejected lines carry port 0 and no keys, and what it writes parses back.
void relay(Sdp s) {
    std::vector<LineView> views(s.media.size());
    for (size_t i = 0; i < s.media.size(); ++i) {
        auto kind = relay_kind(s.media[i]);
        (void)wants_rtcp_mux(s.media[i]);
        if (kind == RelayKind::None || i % 2 == 1) continue;
        views[i] = {true, 36002, kind == RelayKind::Rtp ? "RTP/SAVP" : "",
                    kind == RelayKind::Rtp
                        ? std::optional<std::string>("1 AES_CM_128_HMAC_SHA1_80 inline:"
                                                     "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR")
                        : std::nullopt,
                    true};
    }
    size_t n = s.media.size();
    rewrite_for_relay(s, views, "198.51.100.7");
    check(s.media.size() == n);
    for (size_t i = 0; i < n; ++i) {
        const auto& m = s.media[i];
        check(!m.has_attribute("candidate") && !m.has_attribute("rtcp"));
        if (views[i].relay) {
            check(m.port == 36002 && m.has_attribute("rtcp-mux"));
        } else {
            check(m.port == 0 && !m.has_attribute("crypto") && !m.has_attribute("rtcp-mux"));
        }
    }
    reparse(s);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    crypto(in);
    auto r = Sdp::parse(in);
    if (!r) {
        check(!r.error().message.empty());
        return 0;
    }
    const Sdp& s = *r;
    check(!s.session.empty() && s.session[0].type == 'v');
    for (size_t i = 0; i <= s.media.size(); ++i)
        (void)s.address_of(i);
    for (const auto& m : s.media) {
        (void)m.is_rtp();
        (void)m.connection();
        for (auto v : m.attributes("crypto"))
            crypto(v);
    }
    reparse(s);
    edit(s, "203.0.113.1");
    edit(s, "2001:db8::1");
    relay(s);
    return 0;
}
