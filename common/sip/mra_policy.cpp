#include "common/sip/mra_policy.h"

#include "common/sip/proxy.h"

#include <charconv>

namespace edgepair::sip {

const std::vector<std::string_view>& mra_supported_proxy_extensions() {
    static const std::vector<std::string_view> none;
    return none;
}

std::optional<size_t> ContactTable::index_of(const std::string& uri) {
    for (size_t i = 0; i < uris_.size(); ++i)
        if (uris_[i] == uri) return i;
    if (uris_.size() >= cap_) return std::nullopt;
    uris_.push_back(uri);
    return uris_.size() - 1;
}

const std::string* ContactTable::lookup(std::string_view epc) const {
    size_t idx = 0;
    auto [p, ec] = std::from_chars(epc.data(), epc.data() + epc.size(), idx);
    if (ec != std::errc() || p != epc.data() + epc.size() || idx >= uris_.size()) return nullptr;
    return &uris_[idx];
}

Uri mra_contact(const Uri& client_contact, Uri base, std::string_view flow_token, size_t epc,
                std::string_view client_hostport) {
    if (kContactForm == ContactForm::token_user) {
        base.user = std::string(flow_token);
    } else {
        // Only the user part is taken from the client: its host, port and parameters name the client's
        // side of the NAT, which nothing inside may use.
        base.user = client_contact.user;
        base.params.set(kFlowParam, std::string(flow_token));
        if (!client_hostport.empty()) base.params.set(kOrigHostportParam, std::string(client_hostport));
    }
    base.params.set("epc", std::to_string(epc));
    return base;
}

std::optional<std::string_view> mra_flow_token(const Uri& u) {
    if (!u.is_sip()) return std::nullopt;
    if (auto t = u.params.get(kFlowParam); t && !t->empty()) return t;
    if (!u.user.empty()) return std::string_view(u.user);
    return std::nullopt;
}

ContactVerdict rewrite_client_contacts(Message& m, ContactTable& table,
                                       const std::function<Uri(size_t, const Uri&)>& make) {
    bool full = false;
    auto n = rewrite_contacts(m, [&](const Uri& orig) -> std::optional<std::string> {
        auto idx = table.index_of(orig.to_string());
        if (!idx) {
            full = true;
            return std::nullopt;
        }
        return make(*idx, orig).to_string();
    });
    if (!n) return ContactVerdict::malformed;
    return full ? ContactVerdict::too_many : ContactVerdict::ok;
}

RouteVerdict apply_client_route_policy(Message& m, const std::function<bool(const Uri&)>& is_edge,
                                       const std::function<bool(const Uri&)>& is_node) {
    RouteVerdict v;
    for (;;) {
        auto popped = pop_route_if(m, is_edge);
        if (!popped) {
            v.ok = false;
            v.foreign = "(malformed Route)";
            return v;
        }
        if (!*popped) break;
        ++v.popped;
    }
    for (auto value : m.values(HeaderId::route)) {
        auto na = NameAddr::parse(value);
        if (!na) {
            v.ok = false;
            v.foreign = "(malformed Route)";
            return v;
        }
        if (!is_node(na->uri) && !is_edge(na->uri)) {
            v.ok = false;
            v.foreign = na->uri.to_string();
            return v;
        }
    }
    return v;
}

} // namespace edgepair::sip
