#pragma once
// XMPP server-to-server (federation, RFC 6120 on port 5269, issue #19) pieces both edges share.
//
// The pair relays federation streams rather than being a server itself: each edge terminates TLS on its own
// side of the connection it accepted or dialled, and everything after the TLS stream restart travels end to
// end (so the stream id that dialback keys are computed over, XEP-0220 2.1, is the one the far server chose,
// and dialback works across the pair). The accepting side answers the pre-TLS stream itself with STARTTLS;
// the dialling side drives STARTTLS with DialNegotiator below, then sends the stream header it was given and
// relays raw bytes. When the dialled server offers no TLS and the policy allows plaintext, its stream header
// and features are handed back to be relayed instead (the header sent to it was the far end's own, so the
// far end just sees its stream answered).
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/xmpp/framer.h"

namespace edgepair::xmpp {

inline constexpr std::string_view kServerNs = "jabber:server";
inline constexpr std::string_view kDialbackNs = "jabber:server:dialback";
inline constexpr std::string_view kDialbackFeatureNs = "urn:xmpp:features:dialback";

// Security mode of a federation hop (docs/CONFIG.md, federation.xmpp.security).
//   required: STARTTLS is mandatory; the remote certificate must chain to the trusted CAs and name the
//             remote domain.
//   optional: STARTTLS when the remote offers it (dialling) / accepts it (accepting); the certificate is not
//             enforced.
//   none:     never TLS.
enum class S2sSecurity { Required, Optional, None };
const char* to_string(S2sSecurity s);

// `<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:db=... from to id version='1.0'>`.
std::string s2s_stream_header(std::string_view from, std::string_view to, std::string_view id);
// <stream:features> with STARTTLS (and <required/> when asked) and, when `dialback`, the XEP-0220 feature.
std::string s2s_features(bool starttls, bool required, bool dialback);
// A complete refusal for a peer whose header we have not answered yet: our header (with a stream id: Prosody
// drops a stream without one before reading the error), the error, the close.
std::string s2s_refusal(std::string_view from, std::string_view to, std::string_view id,
                        StreamErrorCondition c, std::string_view text);
// `features_raw` (a <stream:features> element, any prefix, possibly empty) with an optional STARTTLS feature
// added first; unchanged when it offers STARTTLS already or is not a start tag.
std::string add_starttls_feature(std::string_view features_raw);
// Framer options for a jabber:server stream.
FramerOptions s2s_framer_options(size_t max_stanza_size);

// Value of attribute `name` (no prefix) in the start tag that begins `raw`; "" when absent or malformed.
std::string start_tag_attr(std::string_view raw, std::string_view name);

// Lower-cased domain, or "" when it is not a plausible domain name (RFC 6120 domainpart, ASCII only here).
std::string normalise_domain(std::string_view d);

// Allowed / denied remote domains. An entry "example.org" matches that domain only; "*.example.org" its
// subdomains. With a non-empty allow list only listed domains federate; the deny list always applies.
struct DomainPolicy {
    std::vector<std::string> allow, deny; // normalised
    // "" when `domain` may federate, else the refusal reason (a stable metric label): "denied" (on the deny
    // list), "not_allowed" (an allow list is set and does not have it), "bad_domain".
    std::string_view refusal(std::string_view domain) const;
};

// The dialling side of STARTTLS: feed the dialled server's bytes; each call says what to do next.
struct DialStep {
    enum Kind {
        More,         // nothing to do yet
        SendStarttls, // write starttls_request() and keep feeding
        Handshake,    // <proceed/> arrived: start TLS (client); then write the far end's header, relay raw
        Plain,        // no TLS: relay `bytes` (the server's header and features) to the far end, then raw
        Fail,         // give up on this server: `reason`
    };
    Kind kind = More;
    std::string bytes;
    std::string reason;
};

class DialNegotiator {
  public:
    DialNegotiator(S2sSecurity security, size_t max_stanza_size);
    DialStep feed(std::string_view bytes);
    static std::string starttls_request();

  private:
    enum class Phase { Features, Proceed, Done };
    S2sSecurity sec_;
    Framer fr_;
    Phase phase_ = Phase::Features;
    std::string seen_; // the server's header and whitespace so far (relayed on the plaintext path)
};

} // namespace edgepair::xmpp
