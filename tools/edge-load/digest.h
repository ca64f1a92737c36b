#pragma once
// HTTP Digest as SIP uses it (RFC 3261 22.4, RFC 2617 with MD5 and qop=auth): enough to answer a
// registrar's 401/407 challenge the way a phone does. Only the client side; nothing is verified here.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace edgepair::load {

struct DigestChallenge {
    std::string realm, nonce, opaque, algorithm;
    bool qop_auth = false; // the server offered qop "auth" (we never do auth-int)
    bool stale = false;
};

// Parses a WWW-Authenticate / Proxy-Authenticate value. nullopt for another scheme or no nonce.
std::optional<DigestChallenge> parse_digest_challenge(std::string_view value);

// The Authorization / Proxy-Authorization value answering `ch` for `method` on `uri`. `nc` counts the
// uses of this nonce (from 1); `cnonce` is the client's nonce (qop only).
std::string digest_authorization(const DigestChallenge& ch, std::string_view user, std::string_view password,
                                 std::string_view method, std::string_view uri, uint32_t nc,
                                 std::string_view cnonce);

std::string md5_hex(std::string_view data);

} // namespace edgepair::load
