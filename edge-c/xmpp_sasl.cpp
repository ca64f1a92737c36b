#include "edge-c/xmpp_sasl.h"

#include <optional>

#include <pugixml.hpp>

#include "common/http/b64_domain.h"
#include "common/mra/model.h"

namespace edgepair::edge_c {

namespace {

std::string_view local_name(std::string_view n) {
    auto c = n.find(':');
    return c == std::string_view::npos ? n : n.substr(c + 1);
}

std::string_view trim(std::string_view s) {
    auto b = s.find_first_not_of(" \t\r\n");
    if (b == std::string_view::npos) return {};
    auto e = s.find_last_not_of(" \t\r\n");
    return s.substr(b, e - b + 1);
}

// "alice@example.com" -> "alice", lower case; empty when the id is not a plausible user id.
std::string user_part(std::string_view id) {
    id = id.substr(0, id.find('@'));
    if (id.empty() || id.size() > 256) return {};
    for (char c : id)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f || c == '/') return {};
    return mra::to_lower(id);
}

// "alice@Example.COM" -> {alice, example.com}; unreadable (named, empty user) unless it is a plausible id.
SaslNamedId named_id(std::string_view id) {
    SaslNamedId out;
    if (id.empty()) return out;
    out.named = true;
    auto at = id.find('@');
    std::string_view domain = at == std::string_view::npos ? std::string_view() : id.substr(at + 1);
    if (at != std::string_view::npos && (domain.empty() || domain.find('@') != std::string_view::npos))
        return out;
    for (char c : domain)
        if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f || c == '/') return out;
    std::string user = user_part(id);
    if (user.empty() || domain.size() > 256) return out;
    out.user = std::move(user);
    out.domain = mra::to_lower(domain);
    return out;
}

// RFC 5801 saslname: ',' and '=' travel as =2C and =3D; any other '=' makes the name malformed.
std::optional<std::string> saslname(std::string_view v) {
    std::string out;
    for (size_t i = 0; i < v.size(); ++i) {
        if (v[i] != '=') {
            out.push_back(v[i]);
            continue;
        }
        auto esc = v.substr(i + 1, 2);
        if (mra::iequals(esc, "2C"))
            out.push_back(',');
        else if (mra::iequals(esc, "3D"))
            out.push_back('=');
        else
            return std::nullopt;
        i += 2;
    }
    return out;
}

// The form PLAIN (RFC 4616) and X-OAUTH2 share: [authzid] NUL authcid NUL secret.
struct NulFields {
    std::string_view authzid, authcid, secret;
};
std::optional<NulFields> nul_fields(std::string_view decoded) {
    auto a = decoded.find('\0');
    if (a == std::string_view::npos) return std::nullopt;
    auto b = decoded.find('\0', a + 1);
    if (b == std::string_view::npos) return std::nullopt;
    return NulFields{decoded.substr(0, a), decoded.substr(a + 1, b - a - 1), decoded.substr(b + 1)};
}

} // namespace

std::string sasl_user(std::string_view mechanism, std::string_view decoded) {
    if (mra::iequals(mechanism, "PLAIN")) {
        auto f = nul_fields(decoded);
        if (!f) return {};
        std::string authcid = user_part(f->authcid);
        if (!f->authzid.empty() && user_part(f->authzid) != authcid) return {};
        return authcid;
    }
    if (mra::iequals(mechanism, "CISCO-VTG-TOKEN")) {
        constexpr std::string_view kUserId = "userid=";
        std::string_view s = decoded.substr(0, decoded.find('\0'));
        if (!s.starts_with(kUserId)) return {};
        return user_part(s.substr(kUserId.size()));
    }
    return {};
}

std::string sasl_bearer(std::string_view mechanism, std::string_view decoded) {
    std::string_view token;
    if (mra::iequals(mechanism, "OAUTHBEARER")) {
        constexpr std::string_view kAuth =
            "\x01"
            "auth="; // two literals: in "\x01a" the hex escape would take the a
        auto a = decoded.find(kAuth);
        if (a == std::string_view::npos) return {};
        auto v = decoded.substr(a + kAuth.size());
        v = v.substr(0, v.find('\x01'));
        constexpr std::string_view kScheme = "bearer ";
        if (v.size() <= kScheme.size() || !mra::iequals(v.substr(0, kScheme.size()), kScheme)) return {};
        token = v.substr(kScheme.size());
    } else if (mra::iequals(mechanism, "X-OAUTH2")) {
        auto f = nul_fields(decoded);
        if (!f) return {};
        token = f->secret;
    } else {
        return {};
    }
    for (char c : token)
        if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return {};
    return std::string(token);
}

SaslNamedId sasl_named_id(std::string_view mechanism, std::string_view decoded) {
    SaslNamedId unreadable;
    unreadable.named = true;
    if (mra::iequals(mechanism, "OAUTHBEARER")) {
        // gs2-header = gs2-cb-flag "," [ "a=" saslname ] "," before the first ^A. Without one, what IM&P
        // would make of the message is unknown, so it counts as a name edge-c cannot read.
        std::string_view gs2 = decoded.substr(0, decoded.find('\x01'));
        auto c1 = gs2.find(',');
        if (c1 == std::string_view::npos) return unreadable;
        auto c2 = gs2.find(',', c1 + 1);
        if (c2 == std::string_view::npos || c2 + 1 != gs2.size()) return unreadable;
        std::string_view authzid = gs2.substr(c1 + 1, c2 - c1 - 1);
        if (authzid.empty()) return {};
        if (!authzid.starts_with("a=")) return unreadable;
        auto name = saslname(authzid.substr(2));
        if (!name) return unreadable;
        auto id = named_id(*name);
        return id.named ? id : unreadable; // "a=" with nothing after it is a malformed header
    }
    if (mra::iequals(mechanism, "X-OAUTH2")) {
        auto f = nul_fields(decoded);
        if (!f) return {};
        auto authcid = named_id(f->authcid);
        auto authzid = named_id(f->authzid);
        if (!authzid.named) return authcid;
        if (!authcid.named) return authzid;
        if (authzid.user.empty() || authzid.user != authcid.user || authzid.domain != authcid.domain)
            return unreadable;
        return authcid;
    }
    return {};
}

bool named_id_matches(const SaslNamedId& named, std::string_view token_user, std::string_view stream_domain) {
    if (!named.named) return true;
    if (named.user.empty()) return false;
    if (named.user != mra::to_lower(token_user.substr(0, token_user.find('@')))) return false;
    return named.domain.empty() || mra::iequals(named.domain, stream_domain);
}

std::optional<SaslAuth> read_sasl_auth(std::string_view raw) {
    pugi::xml_document doc;
    if (!doc.load_buffer(raw.data(), raw.size())) return std::nullopt;
    auto auth = doc.first_child();
    if (auth.type() != pugi::node_element || local_name(auth.name()) != "auth") return std::nullopt;
    auto decoded = http::base64_decode_strict(trim(auth.child_value()));
    if (!decoded) return std::nullopt;
    SaslAuth out;
    out.mechanism = auth.attribute("mechanism").value();
    out.user = sasl_user(out.mechanism, *decoded);
    out.token = sasl_bearer(out.mechanism, *decoded);
    if (!out.token.empty()) out.named = sasl_named_id(out.mechanism, *decoded);
    return out;
}

} // namespace edgepair::edge_c
