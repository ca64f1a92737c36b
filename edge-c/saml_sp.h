#pragma once
// The SAML 2.0 service provider role of the pair (issue #21; seeds/002 "Single Sign-On (SSO) Over the
// Collaboration Edge"). edge-c holds it: edge-e only carries the browser's requests over the link.
//
//   /<b64 domain>/authorize  -> a signed AuthnRequest (RSA-SHA256, HTTP-Redirect binding) to the domain's IdP
//   /<b64 domain>/fedlet     <- the IdP's Response (HTTP-POST binding), checked here, then an edge token
//
// Every XML and signature operation is liblasso's (which uses xmlsec1): parsing, the redirect signature, the
// Response's signature against the certificate in the IdP's imported metadata. What this file adds are the
// checks on the verified objects that a relying party must make itself and that the guide's errors name:
// issuer, audience, recipient, validity window, InResponseTo, replay, the `uid` attribute.
//
// Thread-safety: one instance per configuration generation, used by every worker; lasso objects are not
// documented as thread-safe, so each call holds the instance's lock (sign-ins are rare; a call is ~1 ms).
// The replay memory is process-wide (SamlReplayCache) and survives reloads.
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "common/config/edge_c_config.h"
#include "common/core/result.h"

namespace edgepair::edge_c {

// Why an assertion was refused: the `reason` label of edgepair_saml_responses_total.
enum class SamlRefusal {
    BadForm,     // the POST body is not a SAMLResponse form
    Invalid,     // not a SAML 2.0 Response lasso accepts (XML, schema, unknown issuer, ...)
    Signature,   // the Response is unsigned or its signature does not verify with the IdP's certificate
    Status,      // the IdP answered with a non-success status
    WrongIdp,    // signed by an IdP, but not the one of this domain
    Audience,    // no AudienceRestriction naming this service provider
    Recipient,   // SubjectConfirmationData@Recipient (or Response@Destination) is not this consumer URL
    NotYetValid, // NotBefore in the future (beyond the clock skew)
    Expired,     // NotOnOrAfter passed (Conditions or SubjectConfirmationData)
    Replay,      // this assertion ID was accepted before
    Unsolicited, // InResponseTo names no AuthnRequest this edge sent (or one already answered)
    NoUid,       // no `uid` attribute
};
const char* refusal_label(SamlRefusal r);
// What the client and the log see: the guide's wording (seeds/002 "Invalid SAML Assertions").
const char* refusal_message(SamlRefusal r);

// The `uid` attribute as the guide names it ("an attribute called uid"). Assumed, not confirmed: IdPs that
// name attributes by OID (urn:oid:0.9.2342.19200300.100.1.1 is uid's, RFC 4519) or give uid only as the
// FriendlyName are accepted too. Change the accepted names here only.
bool is_uid_attribute(std::string_view name, std::string_view friendly_name);

struct SamlIdentity {
    std::string uid;          // the user, as the IdP asserted it
    std::string idp;          // the IdP's entity ID
    std::string assertion_id; // for the log and the replay check
    // For SamlReplayCache::admit, which runs after consume() on another loop.
    std::string in_response_to; // the AuthnRequest this answers (empty: IdP-initiated)
    int64_t expires_s = 0;      // the assertion's NotOnOrAfter: how long its ID is remembered
    // sso_tokens: unified_cm only (consume() with keep_assertion): the <Assertion> element exactly as the
    // IdP signed it, standalone, for the RFC 7522 grant; and the OAuth client id its AuthnRequest carried.
    std::string assertion_xml;
    std::string client_id;
};

// The OAuth client id travels inside the AuthnRequest's ID ("<lasso id>.c<hex>"): the IdP echoes the ID as
// the signed InResponseTo, and the replay memory (local or the cluster's) already keys on it, so the id
// comes back tamper-proof on whichever edge-c peer the browser's POST lands, with nothing else to share.
std::string request_id_with_client(std::string_view lasso_id, std::string_view client_id);
// The client id a request ID carries; empty when none (or not a well-formed one).
std::string client_id_of_request(std::string_view request_id);

// The one <Assertion> child of the samlp:Response `response_xml` whose ID is `assertion_id`, serialized
// standalone: the namespaces in scope at it are declared on it (an exclusive-c14n signature's
// InclusiveNamespaces may name one declared on the Response) and nothing inside is re-encoded, so its own
// enveloped signature still verifies. Error when there is none, or it carries no signature of its own (a
// relying party holding only the Assertion could not check it).
Result<std::string> standalone_assertion(std::string_view response_xml, std::string_view assertion_id);

struct SamlPostForm {
    std::string saml_response; // base64, as posted
    std::string relay_state;
};
// application/x-www-form-urlencoded (HTML forms): SAMLResponse and RelayState, percent and '+' decoded.
// nullopt: no SAMLResponse, a field twice, bad percent-encoding or a body over 256 KiB.
std::optional<SamlPostForm> parse_saml_post_form(std::string_view body);

// xs:dateTime as SAML uses it (UTC, "Z" or no zone, optional fraction): seconds since the epoch.
std::optional<int64_t> parse_saml_time(std::string_view s);

// AuthnRequest IDs this edge sent (until answered or expired) and assertion IDs accepted (until their
// NotOnOrAfter), bounded. One per edge-c process and no lock: only worker 0's loop touches it, and the other
// workers post to it (EdgeC::saml_remember_request, EdgeC::saml_admit), so check-and-remember is one step
// whichever worker the browser's POST lands on. Replay across edge-c peers needs the cluster store (#17).
class SamlReplayCache {
  public:
    explicit SamlReplayCache(size_t max_entries = 100000) : max_(max_entries) {}
    void remember_request(const std::string& id, const std::string& domain, int64_t expires_s);
    // The request was sent for this domain and not yet answered: forgets it and says true.
    bool take_request(const std::string& id, const std::string& domain, int64_t now_s);
    // First acceptance of this assertion ID: remembers it until expires_s and says true.
    bool first_use(const std::string& assertion_id, int64_t expires_s, int64_t now_s);
    // An assertion consume() accepted: Replay when its ID was accepted before (checked first: a second post
    // of the same Response is a replay, whatever else it is), Unsolicited when it answers no open request
    // of this domain; else nothing, and both IDs are now used up. `detail` gets the reason in words.
    std::optional<SamlRefusal> admit(const SamlIdentity& id, const std::string& domain, int64_t now_s,
                                     std::string& detail);

  private:
    void prune(std::unordered_map<std::string, std::pair<std::string, int64_t>>& m, int64_t now_s);
    size_t max_;
    std::unordered_map<std::string, std::pair<std::string, int64_t>> requests_; // id -> (domain, expiry)
    std::unordered_map<std::string, std::pair<std::string, int64_t>> seen_;     // id -> ("", expiry)
};

struct AuthnRedirect {
    std::string url; // the IdP's SingleSignOnService with SAMLRequest, RelayState, SigAlg, Signature
    std::string request_id;
    int64_t expires_s = 0; // when an answer to it is no longer accepted (sso.request_lifetime)
};

class SamlServiceProvider {
  public:
    ~SamlServiceProvider();
    // Loads the signing key pair and every IdP's metadata (errors name the config key). `acs_urls`: the
    // consumer URLs the exported metadata lists (every SSO domain at every edge-e address).
    static Result<std::shared_ptr<SamlServiceProvider>> create(const config::SsoConfig& cfg,
                                                               std::vector<std::string> acs_urls);

    const std::string& entity_id() const { return entity_id_; }
    // The pair's SP metadata (EntityDescriptor) for the IdP: signing certificate and the given consumers.
    std::string metadata(const std::vector<std::string>& acs_urls) const;
    // The entity ID of a configured IdP (by its config name); empty when unknown.
    std::string idp_entity_id(const std::string& idp_name) const;

    // The caller remembers the request ID for its domain (EdgeC::saml_remember_request).
    // `client_id` (may be empty) is carried in the request ID (request_id_with_client).
    Result<AuthnRedirect> authn_request(const std::string& idp_name, const std::string& acs_url,
                                        const std::string& relay_state, int64_t now_s,
                                        const std::string& client_id = {});
    // Everything but replay: the caller hands the identity to SamlReplayCache::admit before trusting it.
    // `detail` gets the reason in words for the log (never for the client).
    // `keep_assertion`: fill SamlIdentity::assertion_xml (refused as Signature when the Assertion is not
    // signed on its own) and client_id.
    std::variant<SamlIdentity, SamlRefusal> consume(const SamlPostForm& form, const std::string& idp_name,
                                                    const std::string& acs_url, int64_t now_s,
                                                    std::string& detail, bool keep_assertion = false);

  private:
    SamlServiceProvider() = default;
    std::string entity_id_;
    std::string cert_b64_; // DER, base64: the metadata's KeyDescriptor
    int64_t skew_s_ = 60;
    int64_t request_lifetime_s_ = 600;
    std::map<std::string, std::string> idps_; // config name -> entity ID
    std::mutex mu_;          // lasso's server object is not thread-safe; consume() is once per sign-in
    void* server_ = nullptr; // LassoServer* (kept out of this header: lasso pulls in glib)
    void* key_ = nullptr;    // LassoKey*: the RSA-SHA256 signing key of the redirect binding
};

} // namespace edgepair::edge_c
