#pragma once
// MRA request paths on edge-e 8443: "/<base64 domain>/<service>/...". Jabber puts the user's domain in
// the first segment as base64 without padding, e.g. example.com -> ZXhhbXBsZS5jb20 (shared/MRA-PROTOCOL.md,
// "HTTPS on edge-e 8443", marked [public, confirm]; padding is accepted too in case a client sends it).
// The decoder is strict (canonical trailing bits,
// one alphabet, no junk) so that one domain has exactly one accepted spelling per alphabet/padding choice
// and rate limits or caches keyed on it cannot be split.
#include "common/core/result.h"
#include "common/http/url_path.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace edgepair::http {

// RFC 4648 base64. url_safe selects "-_" instead of "+/".
std::string base64_encode(std::string_view bytes, bool pad = true, bool url_safe = false);
// Accepts the standard or the URL-safe alphabet (not both in one input), with or without correct padding.
// Rejects whitespace, misplaced '=', a length of 4n+1 and non-zero unused trailing bits.
std::optional<std::string> base64_decode_strict(std::string_view text);

// Lowercase LDH DNS name, at most one trailing dot removed, labels 1..63, total <= 253, last label not
// all digits (an IP address is not a domain).
Result<std::string> canonical_domain(std::string_view domain);

// What Jabber sends: standard alphabet, no padding, of the lowercase domain.
std::string encode_domain(std::string_view domain);
// Errors: "bad_domain: ...".
Result<std::string> decode_domain(std::string_view b64);

// SsoAuthorize / SsoFedlet: the single sign-on start (`/<b64 domain>/authorize?...`, the SAML AuthnRequest is
// built there) and the assertion consumer (`/<b64 domain>/fedlet`, the IdP's POST binding), both as public
// captures show them (shared/MRA-PROTOCOL.md, "SSO").
enum class MraKind { EdgeConfig, EdgeSso, Proxy, SsoAuthorize, SsoFedlet, Other };
std::string_view mra_kind_name(MraKind k);

struct MraPath {
    std::string domain; // canonical, decoded from the first segment
    MraKind kind = MraKind::Other;
    std::string scheme; // Proxy: "http" or "https"
    std::string host;   // Proxy: canonical (canonical_host)
    uint16_t port = 0;  // Proxy
    // Everything after the service prefix, normalised by normalise_target on its own, so dot segments
    // can never climb out of it into the host or port segments. Always begins with '/'.
    // Other: the path after the domain segment.
    std::string path;
    std::string match_path;
    std::string query;
    bool has_query = false;
    // Proxy: the target came as one base64url segment "domain/scheme/host/port" (the form one public capture
    // shows) instead of "/<b64 domain>/<scheme>/<host>/<port>". Every other field reads the same either way.
    bool descriptor_form = false;
};

// raw_target: the request-target as received, in either proxy form. Errors: "bad_domain: ...",
// "bad_proxy_path: ...", or a PathReason label from the normaliser (e.g. "above_root: ...").
Result<MraPath> parse_mra_path(std::string_view raw_target, const PathPolicy& policy = {});

} // namespace edgepair::http
