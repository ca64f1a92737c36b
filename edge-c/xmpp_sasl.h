#pragma once
// Who signs in on an XMPP stream: the client's SASL <auth/> element (RFC 6120 6.4.2), read by edge-c before
// it reaches IM&P. Two owners use it: the MRA access policy and OAuth token check
// (edge-c/mra_access_policy.h, issue #15) and the home-node choice (edge-c/imp_home.h, issue #16).
//
// Confirmed (shared/MRA-PROTOCOL.md "XMPP"): IM&P offers PLAIN (RFC 4616) and CISCO-VTG-TOKEN, base64 of
// `userid=<user>@<domain>\0token=<one-time password>`. The token mechanisms OAUTHBEARER (RFC 7628) and
// X-OAUTH2 are read too; which one Jabber uses towards IM&P over MRA with OAuth is not public.
#include <optional>
#include <string>
#include <string_view>

namespace edgepair::edge_c {

struct SaslAuth {
    std::string mechanism;
    std::string user;  // lower case, no domain; empty when the mechanism names no user edge-c can read
    std::string token; // a token mechanism's bearer token; empty otherwise
};

// The raw bytes of one <auth/> element as the client sent them. nullopt when it is not a well-formed <auth/>
// or its payload is not strict base64. Network input: fuzzed (tests/fuzz/edge_c_imp_home_fuzz.cpp,
// edge_c_mra_policy_fuzz.cpp).
std::optional<SaslAuth> read_sasl_auth(std::string_view auth_raw);

// From the decoded initial response: PLAIN's authentication identity (the one whose password is checked;
// an authorization identity naming someone else makes the user unreadable, so a policy is never checked
// against the wrong user), CISCO-VTG-TOKEN's userid=. Empty for other mechanisms, or an id that is empty,
// longer than 256 bytes, or has control characters or '/'.
std::string sasl_user(std::string_view mechanism, std::string_view decoded);
// OAUTHBEARER (gs2 header, then "auth=Bearer <token>" between ^A separators) and X-OAUTH2 (NUL user NUL
// token). Empty for any other mechanism or form.
std::string sasl_bearer(std::string_view mechanism, std::string_view decoded);

} // namespace edgepair::edge_c
