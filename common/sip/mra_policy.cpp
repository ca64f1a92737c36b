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

ContactVerdict rewrite_client_contacts(Message& m, ContactTable& table,
                                       const std::function<Uri(size_t)>& make) {
    bool full = false;
    auto n = rewrite_contacts(m, [&](const Uri& orig) -> std::optional<Uri> {
        auto idx = table.index_of(orig.to_string());
        if (!idx) {
            full = true;
            return std::nullopt;
        }
        return make(*idx);
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
