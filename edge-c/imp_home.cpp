#include "edge-c/imp_home.h"

#include <pugixml.hpp>

#include "common/http/b64_domain.h"
#include "common/mra/snapshot.h"

namespace edgepair::edge_c {

namespace {

std::string_view local_name(std::string_view n) {
    auto c = n.find(':');
    return c == std::string_view::npos ? n : n.substr(c + 1);
}

std::string trim(std::string_view s) {
    auto b = s.find_first_not_of(" \t\r\n");
    if (b == std::string_view::npos) return {};
    auto e = s.find_last_not_of(" \t\r\n");
    return std::string(s.substr(b, e - b + 1));
}

} // namespace

std::optional<std::string> home_node_hint(std::string_view raw) {
    if constexpr (kHomeNodeHint == HomeNodeHint::None) {
        (void)raw;
        return std::nullopt;
    } else {
        pugi::xml_document doc;
        if (!doc.load_buffer(raw.data(), raw.size())) return std::nullopt;
        auto err = doc.first_child();
        if (err.type() != pugi::node_element || local_name(err.name()) != "error") return std::nullopt;
        for (auto c : err.children()) {
            if (c.type() != pugi::node_element || local_name(c.name()) != "see-other-host") continue;
            if (std::string_view(c.attribute("xmlns").value()) != "urn:ietf:params:xml:ns:xmpp-streams")
                return std::nullopt;
            // RFC 6120: the text is a domain or address, optionally with ":port" ("[v6]:port" for IPv6).
            std::string host = trim(c.child_value());
            if (!host.empty() && host.front() == '[') {
                auto e = host.find(']');
                if (e == std::string::npos) return std::nullopt;
                host = host.substr(1, e - 1);
            } else if (auto colon = host.find(':'); colon != std::string::npos) {
                host.resize(colon);
            }
            if (host.empty() || host.size() > 253) return std::nullopt;
            for (unsigned char ch : host)
                if (ch <= 0x20 || ch == 0x7f || ch == '/' || ch == '@') return std::nullopt;
            return mra::to_lower(host);
        }
        return std::nullopt;
    }
}

std::string ImpHomeCache::key(std::string_view deployment, std::string_view user) {
    std::string k(deployment);
    k.push_back('\0');
    k += user;
    return k;
}

std::optional<std::string> ImpHomeCache::get(std::string_view deployment, std::string_view user,
                                             uint64_t now_ms) {
    auto it = map_.find(key(deployment, user));
    if (it == map_.end()) return std::nullopt;
    if (it->second.expires_ms <= now_ms) {
        map_.erase(it);
        return std::nullopt;
    }
    return it->second.node;
}

void ImpHomeCache::put(std::string_view deployment, std::string_view user, std::string node, uint64_t now_ms,
                       uint64_t ttl_ms) {
    if (user.empty() || ttl_ms == 0) return;
    if (map_.size() >= max_)
        std::erase_if(map_, [now_ms](const auto& e) { return e.second.expires_ms <= now_ms; });
    auto k = key(deployment, user);
    if (map_.size() >= max_ && !map_.count(k)) return;
    map_[k] = Entry{std::move(node), now_ms + ttl_ms};
}

} // namespace edgepair::edge_c
