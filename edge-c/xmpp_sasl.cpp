#include "edge-c/xmpp_sasl.h"

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

} // namespace

std::string sasl_user(std::string_view mechanism, std::string_view decoded) {
    if (mra::iequals(mechanism, "PLAIN")) {
        // RFC 4616: [authzid] NUL authcid NUL passwd.
        auto a = decoded.find('\0');
        if (a == std::string_view::npos) return {};
        auto b = decoded.find('\0', a + 1);
        if (b == std::string_view::npos) return {};
        std::string authcid = user_part(decoded.substr(a + 1, b - a - 1));
        std::string_view authzid = decoded.substr(0, a);
        if (!authzid.empty() && user_part(authzid) != authcid) return {};
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
        auto a = decoded.find('\0');
        if (a == std::string_view::npos) return {};
        auto rest = decoded.substr(a + 1);
        auto b = rest.find('\0');
        if (b == std::string_view::npos) return {};
        token = rest.substr(b + 1);
    } else {
        return {};
    }
    for (char c : token)
        if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return {};
    return std::string(token);
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
    return out;
}

} // namespace edgepair::edge_c
