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

// Whom a token mechanism's message says it signs in (OAUTHBEARER's gs2 authzid, X-OAUTH2's authcid). IM&P may
// sign in that name rather than the token's user (Prosody's mod_sasl_oauthbearer does: its token check does
// not bind the token to a user), so edge-c holds the two together (docs/SECURITY.md "XMPP with a token").
struct SaslNamedId {
    bool named = false; // the message names someone; with an empty user, in a form edge-c cannot read
    std::string user;   // local part, lower case
    std::string domain; // lower case; empty when the id has no '@'
};

struct SaslAuth {
    std::string mechanism;
    std::string user;  // lower case, no domain; empty when the mechanism names no user edge-c can read
    std::string token; // a token mechanism's bearer token; empty otherwise
    SaslNamedId named; // a token mechanism's named identity
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
// The identity a token mechanism names: OAUTHBEARER's gs2 header `a=` (RFC 5801 saslname, =2C and =3D
// decoded), X-OAUTH2's authcid (an authzid beside it must name the same id). Not named when the field is
// absent or empty; named but unreadable (empty user) for a malformed gs2 header, an id that is too long or
// has control characters or '/', more than one '@', or X-OAUTH2's two ids that disagree.
SaslNamedId sasl_named_id(std::string_view mechanism, std::string_view decoded);
// Whether `named` may sign in with a token of `token_user` on a stream to `stream_domain`: not named, or the
// same local part (case-insensitive) and, when it names a domain, the stream's.
bool named_id_matches(const SaslNamedId& named, std::string_view token_user, std::string_view stream_domain);

} // namespace edgepair::edge_c
