#pragma once
// SDP (RFC 8866) as edge-c's media B2BUA needs it: parse a body, change addresses, ports, protocols and
// attributes of each media section, and write it back. Lines the B2BUA does not touch are kept verbatim and
// in order, so codecs, fmtp, bandwidth and vendor attributes pass through unchanged.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/core/result.h"

namespace edgepair::media {

// One "<type>=<value>" line; value without the line ending.
struct SdpLine {
    char type = 0;
    std::string value;
};

struct SdpMedia {
    std::string media;       // "audio", "video", "application", ...
    uint16_t port = 0;       // 0 = disabled stream
    unsigned port_count = 1; // the "/<n>" suffix, 1 when absent
    std::string proto;       // "RTP/AVP", "RTP/SAVP", "UDP/BFCP", ...
    std::vector<std::string> formats;
    std::vector<SdpLine> lines; // every line after m= up to the next m= (i=, c=, b=, k=, a=), in order

    bool is_rtp() const; // proto is RTP/AVP, RTP/SAVP, RTP/AVPF or RTP/SAVPF
    // Values of "a=<name>:<value>" (or "" for a flag "a=<name>"), in order.
    std::vector<std::string_view> attributes(std::string_view name) const;
    bool has_attribute(std::string_view name) const;
    // Removes every "a=<name>..." line whose name is in names. Returns how many were removed.
    size_t remove_attributes(std::initializer_list<std::string_view> names);
    void add_attribute(std::string_view name, std::string_view value = {}); // value empty: flag attribute
    // The section's own c= address, if it has one.
    std::optional<std::string> connection() const;
};

struct Sdp {
    std::vector<SdpLine> session; // v=, o=, s=, c=, t=, a=, ... before the first m=, in order
    std::vector<SdpMedia> media;

    // Accepts CRLF or LF line endings. Errors name the line number and the problem. Limits: 64 kB body,
    // 64 media sections, 1000 lines.
    static Result<Sdp> parse(std::string_view body);
    std::string serialize() const; // CRLF line endings, m= lines rebuilt from the fields

    // The address media i is sent to: its own c= or the session c=. Empty for 0.0.0.0 / none.
    std::optional<std::string> address_of(size_t i) const;
    // Replace every c= (session and media) with one session-level "c=IN IP4|IP6 <ip>" and set the o= line's
    // unicast address to ip too. ip is a numeric IPv4 or IPv6 address.
    void set_address(std::string_view ip);
    // o= session version + 1, as RFC 3264 8 asks of a changed offer/answer.
    void bump_version();
};

// a=crypto (RFC 4568 SDES) for the suites edgepair handles.
enum class SrtpSuite { AES_CM_128_HMAC_SHA1_80, AES_CM_128_HMAC_SHA1_32 };
std::optional<SrtpSuite> suite_from_name(std::string_view name);
const char* suite_name(SrtpSuite s);
inline constexpr size_t kSrtpMasterKeyLen = 30; // 16-byte AES key + 14-byte salt, both suites

struct CryptoAttr {
    unsigned tag = 1;
    SrtpSuite suite = SrtpSuite::AES_CM_128_HMAC_SHA1_80;
    std::string master_key;           // kSrtpMasterKeyLen raw bytes (decoded from inline:)
    bool has_lifetime_or_mki = false; // "|2^31" or "|1:4" after the key
    // An MKI ("|1:4") or several keys: refused (edgepair runs one key per direction, without MKI). A lifetime
    // alone ("|2^31", as Jabber sends) is accepted: it bounds how long the sender may use its key, which is
    // the sender's concern (libsrtp enforces its own limit).
    bool has_mki = false;
    std::vector<std::string> session_params; // e.g. "UNENCRYPTED_SRTCP": we refuse any

    // value is what follows "a=crypto:"; nullopt for an unknown suite or a malformed key.
    static std::optional<CryptoAttr> parse(std::string_view value);
    std::string format() const; // "<tag> <suite> inline:<base64 key>"
    // A new random key (OpenSSL RAND_bytes).
    static CryptoAttr random(unsigned tag, SrtpSuite suite);
};

} // namespace edgepair::media
