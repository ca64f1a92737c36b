#include "edge-c/saml_sp.h"

#include <openssl/pem.h>
#include <openssl/x509.h>

#include <ctime>
#include <fstream>
#include <sstream>

// libxml2 first, outside lasso's extern "C": with ICU enabled it includes C++ headers of its own.
#include <libxml/encoding.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlstring.h>

#include <lasso/key.h>
#include <lasso/lasso.h>
#include <lasso/xml/misc_text_node.h>
#include <lasso/xml/saml-2.0/saml2_assertion.h>
#include <lasso/xml/saml-2.0/saml2_attribute.h>
#include <lasso/xml/saml-2.0/saml2_attribute_statement.h>
#include <lasso/xml/saml-2.0/saml2_attribute_value.h>
#include <lasso/xml/saml-2.0/saml2_audience_restriction.h>
#include <lasso/xml/saml-2.0/saml2_conditions.h>
#include <lasso/xml/saml-2.0/saml2_subject.h>
#include <lasso/xml/saml-2.0/saml2_subject_confirmation.h>
#include <lasso/xml/saml-2.0/saml2_subject_confirmation_data.h>
#include <lasso/xml/saml-2.0/samlp2_authn_request.h>
#include <lasso/xml/saml-2.0/samlp2_name_id_policy.h>
#include <lasso/xml/saml-2.0/samlp2_response.h>

#include <fmt/format.h>
#include <pugixml.hpp>

#include "common/http/b64_domain.h"
#include "common/obs/log.h"

namespace edgepair::edge_c {

namespace {

constexpr size_t kMaxForm = 256 * 1024;

std::once_flag g_lasso_once;
int g_lasso_init = 0;

// lasso (and xmlsec through it) reports through GLib's log, which prints to stderr: a stranger's malformed
// Response would write there at will. Its messages go to edgepair's log at debug level instead; the refusal
// itself is logged once, with its reason, by the caller.
void lasso_log(const gchar* domain, GLogLevelFlags, const gchar* message, gpointer) {
    EP_DEBUG("saml", "{}: {}", domain ? domain : "glib", message ? message : "");
}

Result<std::string> read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) return make_error("cannot read " + path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

Result<std::string> cert_der_b64(const std::string& pem) {
    BIO* b = BIO_new_mem_buf(pem.data(), int(pem.size()));
    X509* x = b ? PEM_read_bio_X509(b, nullptr, nullptr, nullptr) : nullptr;
    BIO_free(b);
    if (!x) return make_error("not a PEM certificate");
    unsigned char* der = nullptr;
    int n = i2d_X509(x, &der);
    X509_free(x);
    if (n <= 0) return make_error("cannot encode the certificate");
    std::string out = http::base64_encode(std::string_view(reinterpret_cast<char*>(der), size_t(n)));
    OPENSSL_free(der);
    return out;
}

int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::optional<std::string> form_decode(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (c == '+') {
            out.push_back(' ');
        } else if (c == '%') {
            if (i + 2 >= s.size()) return std::nullopt;
            int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
            if (h < 0 || l < 0) return std::nullopt;
            out.push_back(char(h * 16 + l));
            i += 2;
        } else {
            out.push_back(c);
        }
    }
    return out;
}

std::string_view str(const char* s) {
    return s ? std::string_view(s) : std::string_view();
}

// The text of an AttributeValue: lasso keeps xs:string content as a LassoMiscTextNode.
std::string value_text(LassoSaml2AttributeValue* v) {
    std::string out;
    for (GList* a = v ? v->any : nullptr; a; a = a->next)
        if (LASSO_IS_MISC_TEXT_NODE(a->data)) out += str(LASSO_MISC_TEXT_NODE(a->data)->content);
    return out;
}

SamlRefusal refusal_of_lasso(int rc) {
    switch (rc) {
    case LASSO_DS_ERROR_SIGNATURE_NOT_FOUND:
    case LASSO_DS_ERROR_INVALID_SIGNATURE:
    case LASSO_DS_ERROR_SIGNATURE_VERIFICATION_FAILED:
    case LASSO_DS_ERROR_INVALID_REFERENCE_FOR_SAML:
    case LASSO_PROFILE_ERROR_CANNOT_VERIFY_SIGNATURE:
    case LASSO_LOGIN_ERROR_ASSERTION_DOES_NOT_MATCH_REQUEST_ID:
        return rc == LASSO_LOGIN_ERROR_ASSERTION_DOES_NOT_MATCH_REQUEST_ID ? SamlRefusal::Unsolicited
                                                                           : SamlRefusal::Signature;
    case LASSO_LOGIN_ERROR_STATUS_NOT_SUCCESS:
    case LASSO_LOGIN_ERROR_REQUEST_DENIED:
    case LASSO_PROFILE_ERROR_STATUS_NOT_SUCCESS:
        return SamlRefusal::Status;
    default:
        return SamlRefusal::Invalid;
    }
}

struct LoginGuard {
    LassoLogin* p;
    ~LoginGuard() {
        if (p) lasso_login_destroy(p);
    }
};

} // namespace

const char* refusal_label(SamlRefusal r) {
    switch (r) {
    case SamlRefusal::BadForm:
        return "bad_form";
    case SamlRefusal::Invalid:
        return "invalid";
    case SamlRefusal::Signature:
        return "signature";
    case SamlRefusal::Status:
        return "status";
    case SamlRefusal::WrongIdp:
        return "wrong_idp";
    case SamlRefusal::Audience:
        return "audience";
    case SamlRefusal::Recipient:
        return "recipient";
    case SamlRefusal::NotYetValid:
        return "not_yet_valid";
    case SamlRefusal::Expired:
        return "expired";
    case SamlRefusal::Replay:
        return "replay";
    case SamlRefusal::Unsolicited:
        return "unsolicited";
    case SamlRefusal::NoUid:
        return "no_uid";
    }
    return "invalid";
}

const char* refusal_message(SamlRefusal r) {
    return r == SamlRefusal::NoUid ? "No uid Attribute in Assertion from IdP" : "Invalid SAML Response";
}

bool is_uid_attribute(std::string_view name, std::string_view friendly_name) {
    return name == "uid" || name == "urn:oid:0.9.2342.19200300.100.1.1" || friendly_name == "uid";
}

std::optional<SamlPostForm> parse_saml_post_form(std::string_view body) {
    if (body.size() > kMaxForm) return std::nullopt;
    SamlPostForm out;
    bool have_resp = false, have_relay = false;
    size_t i = 0;
    for (int guard = 0; i <= body.size() && guard < 64; ++guard) {
        size_t j = body.find('&', i);
        if (j == std::string_view::npos) j = body.size();
        auto pair = body.substr(i, j - i);
        i = j + 1;
        if (pair.empty()) continue;
        auto eq = pair.find('=');
        auto name = form_decode(pair.substr(0, eq));
        auto value = form_decode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
        if (!name || !value) return std::nullopt;
        if (*name == "SAMLResponse") {
            if (have_resp) return std::nullopt;
            have_resp = true;
            out.saml_response = std::move(*value);
        } else if (*name == "RelayState") {
            if (have_relay) return std::nullopt;
            have_relay = true;
            out.relay_state = std::move(*value);
        }
        if (j == body.size()) break;
    }
    if (!have_resp || out.saml_response.empty()) return std::nullopt;
    return out;
}

std::optional<int64_t> parse_saml_time(std::string_view s) {
    // YYYY-MM-DDTHH:MM:SS[.f+][Z]
    if (s.size() < 19 || s.size() > 40) return std::nullopt;
    auto num = [&](size_t pos, size_t n) -> int {
        int v = 0;
        for (size_t k = 0; k < n; ++k) {
            char c = s[pos + k];
            if (c < '0' || c > '9') return -1;
            v = v * 10 + (c - '0');
        }
        return v;
    };
    if (s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':') return std::nullopt;
    int Y = num(0, 4), M = num(5, 2), D = num(8, 2), h = num(11, 2), m = num(14, 2), sec = num(17, 2);
    if (Y < 1970 || M < 1 || M > 12 || D < 1 || D > 31 || h < 0 || h > 23 || m < 0 || m > 59 || sec < 0 ||
        sec > 60)
        return std::nullopt;
    size_t p = 19;
    if (p < s.size() && s[p] == '.') {
        ++p;
        size_t start = p;
        while (p < s.size() && s[p] >= '0' && s[p] <= '9')
            ++p;
        if (p == start) return std::nullopt;
    }
    if (p < s.size() && s[p] == 'Z') ++p;
    if (p != s.size()) return std::nullopt;
    std::tm tm{};
    tm.tm_year = Y - 1900;
    tm.tm_mon = M - 1;
    tm.tm_mday = D;
    tm.tm_hour = h;
    tm.tm_min = m;
    tm.tm_sec = sec;
    return int64_t(timegm(&tm));
}

// ---- replay cache ----

void SamlReplayCache::prune(std::unordered_map<std::string, std::pair<std::string, int64_t>>& m,
                            int64_t now_s) {
    if (m.size() < max_) return;
    for (auto it = m.begin(); it != m.end();)
        it = it->second.second <= now_s ? m.erase(it) : std::next(it);
    // Still full: the oldest entries cannot be told cheaply; drop any. A dropped request ID only makes its
    // answer unsolicited; a dropped assertion ID could be replayed until it expires, so the bound is large.
    while (m.size() >= max_)
        m.erase(m.begin());
}

void SamlReplayCache::remember_request(const std::string& id, const std::string& domain, int64_t expires_s) {
    prune(requests_, expires_s - 3600 * 24);
    requests_[id] = {domain, expires_s};
}

bool SamlReplayCache::take_request(const std::string& id, const std::string& domain, int64_t now_s) {
    auto it = requests_.find(id);
    if (it == requests_.end()) return false;
    bool ok = it->second.first == domain && it->second.second > now_s;
    requests_.erase(it);
    return ok;
}

bool SamlReplayCache::first_use(const std::string& assertion_id, int64_t expires_s, int64_t now_s) {
    auto it = seen_.find(assertion_id);
    if (it != seen_.end() && it->second.second > now_s) return false;
    prune(seen_, now_s);
    seen_[assertion_id] = {"", expires_s};
    return true;
}

std::optional<SamlRefusal> SamlReplayCache::admit(const SamlIdentity& id, const std::string& domain,
                                                  int64_t now_s, std::string& detail) {
    if (!first_use(id.assertion_id, id.expires_s, now_s)) {
        detail = fmt::format("assertion {} was accepted before", id.assertion_id);
        return SamlRefusal::Replay;
    }
    if (id.in_response_to.empty() || !take_request(id.in_response_to, domain, now_s)) {
        detail = id.in_response_to.empty()
                     ? "no InResponseTo (IdP-initiated sign-in is not accepted)"
                     : fmt::format("InResponseTo {} names no open AuthnRequest", id.in_response_to);
        return SamlRefusal::Unsolicited;
    }
    return std::nullopt;
}

// ---- the service provider ----

SamlServiceProvider::~SamlServiceProvider() {
    if (key_) g_object_unref(static_cast<LassoKey*>(key_));
    if (server_) lasso_server_destroy(static_cast<LassoServer*>(server_));
}

std::string SamlServiceProvider::metadata(const std::vector<std::string>& acs_urls) const {
    pugi::xml_document doc;
    auto ed = doc.append_child("md:EntityDescriptor");
    ed.append_attribute("xmlns:md") = "urn:oasis:names:tc:SAML:2.0:metadata";
    ed.append_attribute("xmlns:ds") = "http://www.w3.org/2000/09/xmldsig#";
    ed.append_attribute("entityID") = entity_id_.c_str();
    auto sp = ed.append_child("md:SPSSODescriptor");
    sp.append_attribute("AuthnRequestsSigned") = "true";
    sp.append_attribute("WantAssertionsSigned") = "true";
    sp.append_attribute("protocolSupportEnumeration") = "urn:oasis:names:tc:SAML:2.0:protocol";
    auto kd = sp.append_child("md:KeyDescriptor");
    kd.append_attribute("use") = "signing";
    kd.append_child("ds:KeyInfo")
        .append_child("ds:X509Data")
        .append_child("ds:X509Certificate")
        .text()
        .set(cert_b64_.c_str());
    sp.append_child("md:NameIDFormat").text().set("urn:oasis:names:tc:SAML:2.0:nameid-format:transient");
    int index = 0;
    for (const auto& url : acs_urls) {
        auto acs = sp.append_child("md:AssertionConsumerService");
        acs.append_attribute("Binding") = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";
        acs.append_attribute("Location") = url.c_str();
        acs.append_attribute("index") = index;
        if (index == 0) acs.append_attribute("isDefault") = "true";
        ++index;
    }
    std::ostringstream os;
    doc.save(os, "  ", pugi::format_default, pugi::encoding_utf8);
    return os.str();
}

std::string SamlServiceProvider::idp_entity_id(const std::string& idp_name) const {
    auto it = idps_.find(idp_name);
    return it == idps_.end() ? std::string() : it->second;
}

Result<std::shared_ptr<SamlServiceProvider>> SamlServiceProvider::create(const config::SsoConfig& cfg,
                                                                         std::vector<std::string> acs_urls) {
    std::call_once(g_lasso_once, [] {
        g_log_set_handler("Lasso", GLogLevelFlags(G_LOG_LEVEL_MASK | G_LOG_FLAG_FATAL | G_LOG_FLAG_RECURSION),
                          lasso_log, nullptr);
        g_lasso_init = lasso_init();
    });
    if (g_lasso_init != 0) return make_error(fmt::format("sso: lasso_init failed ({})", g_lasso_init));
    std::shared_ptr<SamlServiceProvider> sp(new SamlServiceProvider());
    sp->entity_id_ = cfg.entity_id;
    sp->skew_s_ = std::chrono::duration_cast<std::chrono::seconds>(cfg.clock_skew).count();
    sp->request_lifetime_s_ = std::chrono::duration_cast<std::chrono::seconds>(cfg.request_lifetime).count();
    auto cert = read_file(cfg.signing.cert);
    if (!cert) return make_error("sso.signing.cert: " + cert.error().message);
    auto key = read_file(cfg.signing.key);
    if (!key) return make_error("sso.signing.key: " + key.error().message);
    auto der = cert_der_b64(*cert);
    if (!der) return make_error("sso.signing.cert: " + der.error().message);
    sp->cert_b64_ = std::move(*der);
    std::string md = sp->metadata(acs_urls);
    LassoServer* server = lasso_server_new_from_buffers(md.c_str(), key->c_str(), nullptr, cert->c_str());
    if (!server) return make_error("sso.signing: lasso cannot load the service provider's key pair");
    sp->server_ = server;
    // The redirect binding's signature, made by lasso with an explicit RSA-SHA256 key: this lasso build signs
    // server messages RSA-SHA1 by default and exports no setter for that default. No certificate: a query
    // signature does not carry one (and lasso would take the PEM text for a file name).
    LassoKey* k = lasso_key_new_for_signature_from_memory(key->data(), key->size(), nullptr,
                                                          LASSO_SIGNATURE_METHOD_RSA_SHA256, nullptr);
    if (!k) return make_error("sso.signing.key: lasso cannot load it as an RSA-SHA256 signing key");
    sp->key_ = k;
    for (size_t i = 0; i < cfg.identity_providers.size(); ++i) {
        const auto& idp = cfg.identity_providers[i];
        const std::string key_name = fmt::format("sso.identity_providers[{}].metadata_file", i);
        auto text = read_file(idp.metadata_file);
        if (!text) return make_error(key_name + ": " + text.error().message);
        // The entity ID, read by lasso itself from the same document it imports.
        LassoProvider* probe =
            lasso_provider_new_from_buffer(LASSO_PROVIDER_ROLE_IDP, text->c_str(), nullptr, nullptr);
        if (!probe)
            return make_error(key_name + ": not SAML 2.0 IdP metadata lasso can import (" +
                              idp.metadata_file + ")");
        std::string entity = str(probe->ProviderID).data() ? std::string(str(probe->ProviderID)) : "";
        g_object_unref(probe);
        int rc = lasso_server_add_provider_from_buffer(server, LASSO_PROVIDER_ROLE_IDP, text->c_str(),
                                                       nullptr, nullptr);
        if (rc != 0 || entity.empty())
            return make_error(
                fmt::format("{}: cannot import ({})", key_name, rc ? lasso_strerror(rc) : "no entityID"));
        sp->idps_[idp.name] = entity;
    }
    return sp;
}

Result<AuthnRedirect> SamlServiceProvider::authn_request(const std::string& idp_name,
                                                         const std::string& acs_url,
                                                         const std::string& relay_state, int64_t now_s,
                                                         const std::string& client_id) {
    std::string entity = idp_entity_id(idp_name);
    if (entity.empty()) return make_error("unknown identity provider " + idp_name);
    std::lock_guard<std::mutex> lk(mu_);
    LoginGuard g{lasso_login_new(static_cast<LassoServer*>(server_))};
    if (!g.p) return make_error("lasso_login_new failed");
    LassoProfile* profile = LASSO_PROFILE(g.p);
    int rc =
        lasso_login_init_authn_request(g.p, const_cast<gchar*>(entity.c_str()), LASSO_HTTP_METHOD_REDIRECT);
    if (rc != 0) return make_error(fmt::format("AuthnRequest: {}", lasso_strerror(rc)));
    LassoSamlp2AuthnRequest* req = LASSO_SAMLP2_AUTHN_REQUEST(profile->request);
    if (!client_id.empty()) {
        auto* ra = LASSO_SAMLP2_REQUEST_ABSTRACT(req);
        const std::string id = request_id_with_client(str(ra->ID), client_id);
        if (id.empty()) return make_error("AuthnRequest: unusable OAuth client id");
        g_free(ra->ID);
        ra->ID = g_strdup(id.c_str());
    }
    g_free(req->AssertionConsumerServiceURL);
    req->AssertionConsumerServiceURL = g_strdup(acs_url.c_str());
    g_free(req->ProtocolBinding);
    req->ProtocolBinding = g_strdup(LASSO_SAML2_METADATA_BINDING_POST);
    if (!req->NameIDPolicy)
        req->NameIDPolicy = LASSO_SAMLP2_NAME_ID_POLICY(lasso_samlp2_name_id_policy_new());
    g_free(req->NameIDPolicy->Format);
    req->NameIDPolicy->Format = g_strdup(LASSO_SAML2_NAME_IDENTIFIER_FORMAT_TRANSIENT);
    req->NameIDPolicy->AllowCreate = TRUE;
    // Built unsigned, then signed below over the query (saml-bindings 3.4.4.1) with the RSA-SHA256 key.
    lasso_profile_set_signature_hint(profile, LASSO_PROFILE_SIGNATURE_HINT_FORBID);
    if (!relay_state.empty()) {
        g_free(profile->msg_relayState);
        profile->msg_relayState = g_strdup(relay_state.c_str());
    }
    rc = lasso_login_build_authn_request_msg(g.p);
    if (rc != 0) return make_error(fmt::format("AuthnRequest: {}", lasso_strerror(rc)));
    AuthnRedirect out;
    const std::string unsigned_url(str(profile->msg_url));
    out.request_id = str(LASSO_SAMLP2_REQUEST_ABSTRACT(req)->ID);
    const size_t q = unsigned_url.find("SAMLRequest=");
    if (q == std::string::npos || q == 0 || (unsigned_url[q - 1] != '?' && unsigned_url[q - 1] != '&') ||
        out.request_id.empty())
        return make_error("AuthnRequest: lasso built no redirect URL");
    char* signed_query = lasso_key_query_sign(static_cast<LassoKey*>(key_), unsigned_url.c_str() + q);
    if (!signed_query) return make_error("AuthnRequest: signing the query failed");
    out.url = unsigned_url.substr(0, q) + signed_query;
    g_free(signed_query);
    out.expires_s = now_s + request_lifetime_s_;
    return out;
}

std::variant<SamlIdentity, SamlRefusal> SamlServiceProvider::consume(const SamlPostForm& form,
                                                                     const std::string& idp_name,
                                                                     const std::string& acs_url,
                                                                     int64_t now_s, std::string& detail,
                                                                     bool keep_assertion) {
    const std::string want_idp = idp_entity_id(idp_name);
    std::lock_guard<std::mutex> lk(mu_);
    LoginGuard g{lasso_login_new(static_cast<LassoServer*>(server_))};
    if (!g.p) {
        detail = "lasso_login_new failed";
        return SamlRefusal::Invalid;
    }
    LassoProfile* profile = LASSO_PROFILE(g.p);
    // The whole Response must be signed (the guide asks ADFS for "MessageAndAssertion"): an unsigned one is
    // refused, not merely unverified.
    lasso_profile_set_signature_verify_hint(profile, LASSO_PROFILE_SIGNATURE_VERIFY_HINT_FORCE);
    int rc = lasso_login_process_authn_response_msg(g.p, const_cast<gchar*>(form.saml_response.c_str()));
    if (rc != 0) {
        detail = fmt::format("lasso: {} ({})", lasso_strerror(rc), rc);
        return refusal_of_lasso(rc);
    }
    if (int st = lasso_profile_get_signature_status(profile); st != 0) {
        detail = fmt::format("signature status: {} ({})", lasso_strerror(st), st);
        return SamlRefusal::Signature;
    }
    if (!LASSO_IS_SAMLP2_RESPONSE(profile->response)) {
        detail = "not a samlp:Response";
        return SamlRefusal::Invalid;
    }
    auto* resp = LASSO_SAMLP2_RESPONSE(profile->response);
    auto* sr = LASSO_SAMLP2_STATUS_RESPONSE(profile->response);
    const std::string issuer(str(profile->remote_providerID));
    if (issuer != want_idp) {
        detail = fmt::format("issued by {}, the domain's IdP is {}", issuer, want_idp);
        return SamlRefusal::WrongIdp;
    }
    if (sr->Destination && str(sr->Destination) != acs_url) {
        detail = fmt::format("Destination {} is not {}", str(sr->Destination), acs_url);
        return SamlRefusal::Recipient;
    }
    if (resp->EncryptedAssertion || !resp->Assertion || resp->Assertion->next) {
        detail = "expected exactly one plain Assertion";
        return SamlRefusal::Invalid;
    }
    if (!LASSO_IS_SAML2_ASSERTION(resp->Assertion->data)) {
        detail = "not a saml:Assertion";
        return SamlRefusal::Invalid;
    }
    auto* a = LASSO_SAML2_ASSERTION(resp->Assertion->data);
    if (!a->Issuer || str(a->Issuer->content) != want_idp) {
        detail = "the assertion's Issuer is not the domain's IdP";
        return SamlRefusal::WrongIdp;
    }
    if (!a->ID || !*a->ID) {
        detail = "assertion without ID";
        return SamlRefusal::Invalid;
    }

    // Validity window: Conditions and the bearer SubjectConfirmationData, each with the clock skew.
    int64_t expires = INT64_MAX;
    auto window = [&](const char* nb, const char* noa, const char* what) -> std::optional<SamlRefusal> {
        if (nb) {
            auto t = parse_saml_time(nb);
            if (!t) {
                detail = fmt::format("{} NotBefore \"{}\" unreadable", what, nb);
                return SamlRefusal::Invalid;
            }
            if (*t > now_s + skew_s_) {
                detail = fmt::format("{} NotBefore {} is in the future", what, nb);
                return SamlRefusal::NotYetValid;
            }
        }
        if (noa) {
            auto t = parse_saml_time(noa);
            if (!t) {
                detail = fmt::format("{} NotOnOrAfter \"{}\" unreadable", what, noa);
                return SamlRefusal::Invalid;
            }
            if (*t + skew_s_ <= now_s) {
                detail = fmt::format("{} NotOnOrAfter {} has passed", what, noa);
                return SamlRefusal::Expired;
            }
            expires = std::min(expires, *t + skew_s_);
        }
        return std::nullopt;
    };
    if (!a->Conditions) {
        detail = "no Conditions (audience)";
        return SamlRefusal::Audience;
    }
    if (auto r = window(a->Conditions->NotBefore, a->Conditions->NotOnOrAfter, "Conditions")) return *r;
    // SAML core 2.5.1.4: every AudienceRestriction must be satisfied, not just one of them.
    size_t restrictions = 0;
    for (GList* l = a->Conditions->AudienceRestriction; l; l = l->next, ++restrictions) {
        auto* ar = LASSO_SAML2_AUDIENCE_RESTRICTION(l->data);
        if (!ar || str(ar->Audience) != entity_id_) {
            detail = fmt::format("an AudienceRestriction names {}, not {}", ar ? str(ar->Audience) : "",
                                 entity_id_);
            return SamlRefusal::Audience;
        }
    }
    if (restrictions == 0) {
        detail = fmt::format("no AudienceRestriction names {}", entity_id_);
        return SamlRefusal::Audience;
    }
    LassoSaml2SubjectConfirmationData* scd = nullptr;
    if (a->Subject && a->Subject->SubjectConfirmation) {
        // Web browser SSO profile (saml-profiles 4.1.4.2): the confirmation is a bearer one; holder-of-key or
        // sender-vouches would need checks this SP does not make.
        if (str(a->Subject->SubjectConfirmation->Method) != "urn:oasis:names:tc:SAML:2.0:cm:bearer") {
            detail = fmt::format("SubjectConfirmation Method {} is not bearer",
                                 str(a->Subject->SubjectConfirmation->Method));
            return SamlRefusal::Invalid;
        }
        scd = a->Subject->SubjectConfirmation->SubjectConfirmationData;
    }
    if (!scd) {
        detail = "no SubjectConfirmationData (recipient)";
        return SamlRefusal::Recipient;
    }
    if (str(scd->Recipient) != acs_url) {
        detail = fmt::format("Recipient {} is not {}", str(scd->Recipient), acs_url);
        return SamlRefusal::Recipient;
    }
    if (auto r = window(scd->NotBefore, scd->NotOnOrAfter, "SubjectConfirmationData")) return *r;
    if (!scd->NotOnOrAfter) {
        detail = "bearer SubjectConfirmationData without NotOnOrAfter";
        return SamlRefusal::Invalid;
    }

    // Replay and InResponseTo are SamlReplayCache::admit's, on the loop that owns the cache.
    SamlIdentity id;
    id.in_response_to = str(scd->InResponseTo);
    if (id.in_response_to.empty()) id.in_response_to = str(sr->InResponseTo);
    id.expires_s = expires;
    for (GList* s = a->AttributeStatement; s && id.uid.empty(); s = s->next) {
        auto* st = LASSO_SAML2_ATTRIBUTE_STATEMENT(s->data);
        for (GList* at = st ? st->Attribute : nullptr; at && id.uid.empty(); at = at->next) {
            auto* attr = LASSO_SAML2_ATTRIBUTE(at->data);
            if (!attr || !is_uid_attribute(str(attr->Name), str(attr->FriendlyName))) continue;
            for (GList* v = attr->AttributeValue; v; v = v->next)
                if (LASSO_IS_SAML2_ATTRIBUTE_VALUE(v->data)) {
                    id.uid = value_text(LASSO_SAML2_ATTRIBUTE_VALUE(v->data));
                    if (!id.uid.empty()) break;
                }
        }
    }
    // A uid becomes a UDS path segment and a log field: printable, no '/', bounded.
    bool printable = id.uid.size() <= 256;
    for (char c : id.uid)
        printable = printable && static_cast<unsigned char>(c) > 0x20 && c != 0x7f && c != '/';
    if (id.uid.empty() || !printable) {
        detail = id.uid.empty() ? "no uid attribute" : "uid attribute unusable as a user id";
        return SamlRefusal::NoUid;
    }
    id.idp = issuer;
    id.assertion_id = a->ID;
    if (keep_assertion) {
        // The bytes lasso verified, read again: lasso's objects re-serialize, which would not keep the
        // signature valid for Unified CM.
        std::string b64;
        for (char c : form.saml_response)
            if (c != ' ' && c != '\t' && c != '\r' && c != '\n') b64.push_back(c);
        auto xml = http::base64_decode_strict(b64);
        auto ax = xml ? standalone_assertion(*xml, id.assertion_id)
                      : Result<std::string>(make_error("the SAMLResponse is not base64"));
        if (!ax) {
            detail = "for Unified CM: " + ax.error().message;
            return ax.error().message.starts_with("unsigned:") ? SamlRefusal::Signature
                                                               : SamlRefusal::Invalid;
        }
        id.assertion_xml = std::move(*ax);
        id.client_id = client_id_of_request(id.in_response_to);
    }
    return id;
}

std::string request_id_with_client(std::string_view lasso_id, std::string_view client_id) {
    if (!config::valid_oauth_client_id(client_id)) return {};
    static const char* hex = "0123456789abcdef";
    std::string out(lasso_id);
    out += ".c";
    for (unsigned char c : client_id) {
        out.push_back(hex[c >> 4]);
        out.push_back(hex[c & 15]);
    }
    return out;
}

std::string client_id_of_request(std::string_view request_id) {
    const auto at = request_id.rfind(".c");
    if (at == std::string_view::npos) return {};
    const auto h = request_id.substr(at + 2);
    if (h.empty() || h.size() % 2) return {};
    std::string out;
    for (size_t i = 0; i < h.size(); i += 2) {
        const int hi = hexval(h[i]), lo = hexval(h[i + 1]);
        if (hi < 0 || lo < 0) return {};
        out.push_back(char(hi * 16 + lo));
    }
    return config::valid_oauth_client_id(out) ? out : std::string();
}

namespace {

constexpr const char* kSamlAssertionNs = "urn:oasis:names:tc:SAML:2.0:assertion";
constexpr const char* kSamlProtocolNs = "urn:oasis:names:tc:SAML:2.0:protocol";
constexpr const char* kXmlDsigNs = "http://www.w3.org/2000/09/xmldsig#";

bool is_element(xmlNodePtr n, const char* local, const char* ns) {
    return n && n->type == XML_ELEMENT_NODE && n->ns && xmlStrEqual(n->name, BAD_CAST local) &&
           xmlStrEqual(n->ns->href, BAD_CAST ns);
}

struct DocGuard {
    xmlDocPtr p;
    ~DocGuard() {
        if (p) xmlFreeDoc(p);
    }
};

} // namespace

Result<std::string> standalone_assertion(std::string_view response_xml, std::string_view assertion_id) {
    if (response_xml.size() > kMaxForm) return make_error("the Response is too large");
    // No network, no entity substitution, nothing on stderr: the document lasso accepted, read for its bytes.
    DocGuard doc{xmlReadMemory(response_xml.data(), int(response_xml.size()), nullptr, nullptr,
                               XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING)};
    xmlNodePtr root = doc.p ? xmlDocGetRootElement(doc.p) : nullptr;
    if (!is_element(root, "Response", kSamlProtocolNs)) return make_error("not a samlp:Response");
    xmlNodePtr found = nullptr;
    int count = 0;
    for (xmlNodePtr c = root->children; c; c = c->next) {
        if (!is_element(c, "Assertion", kSamlAssertionNs)) continue;
        ++count;
        xmlChar* id = xmlGetProp(c, BAD_CAST "ID");
        if (id && std::string_view(reinterpret_cast<const char*>(id)) == assertion_id) found = c;
        xmlFree(id);
    }
    if (count != 1 || !found) return make_error("not exactly one Assertion with the ID lasso checked");
    bool signed_itself = false;
    for (xmlNodePtr c = found->children; c; c = c->next)
        signed_itself = signed_itself || is_element(c, "Signature", kXmlDsigNs);
    if (!signed_itself)
        return make_error("unsigned: the IdP signs the Response but not the Assertion, which Unified CM "
                          "gets alone; have the IdP sign assertions too");
    DocGuard out{xmlNewDoc(BAD_CAST "1.0")};
    if (!out.p) return make_error("out of memory");
    xmlNodePtr copy = xmlDocCopyNode(found, out.p, 1);
    if (!copy) return make_error("cannot copy the Assertion");
    xmlDocSetRootElement(out.p, copy);
    if (xmlNsPtr* in_scope = xmlGetNsList(doc.p, found)) {
        for (xmlNsPtr* ns = in_scope; *ns; ++ns) {
            bool declared = false;
            for (xmlNsPtr d = copy->nsDef; d && !declared; d = d->next)
                declared = xmlStrEqual(d->prefix, (*ns)->prefix);
            if (!declared) xmlNewNs(copy, (*ns)->href, (*ns)->prefix);
        }
        xmlFree(in_scope);
    }
    xmlChar* buf = nullptr;
    int n = 0;
    xmlDocDumpMemoryEnc(out.p, &buf, &n, "UTF-8");
    if (!buf || n <= 0) return make_error("cannot serialize the Assertion");
    std::string text(reinterpret_cast<const char*>(buf), size_t(n));
    xmlFree(buf);
    return text;
}

} // namespace edgepair::edge_c
