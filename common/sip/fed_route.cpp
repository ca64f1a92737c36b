#include "common/sip/fed_route.h"

#include <algorithm>

#include "common/sip/lex.h"
#include "common/sip/proxy.h"

namespace edgepair::sip {

namespace {

std::string_view unbracketed(std::string_view h) {
    if (h.size() > 1 && h.front() == '[' && h.back() == ']') return h.substr(1, h.size() - 2);
    return h;
}

bool dns_name(std::string_view d) {
    if (d.empty() || d.size() > 253 || d.front() == '.' || d.back() == '.') return false;
    char prev = 0;
    for (char c : d) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                  c == '.';
        if (!ok || (c == '.' && prev == '.')) return false;
        prev = c;
    }
    return true;
}

} // namespace

bool fed_dialog_forming(const Message& m) {
    if (!m.is_request()) return false;
    const auto& meth = m.method();
    if (meth != "INVITE" && meth != "SUBSCRIBE" && meth != "REFER") return false;
    auto to = m.to();
    return to && (!to->tag() || to->tag()->empty());
}

bool fed_names(const Uri& u, std::string_view host, uint16_t port) {
    if (!u.is_sip() || !lex::iequals(unbracketed(u.host), unbracketed(host))) return false;
    uint16_t p = 5060;
    if (u.port) {
        p = *u.port;
    } else if (u.is_sips() || (u.transport() && lex::iequals(*u.transport(), "tls"))) {
        p = 5061;
    }
    return p == port;
}

Uri fed_record_route(std::string_view host, uint16_t port, std::string_view transport,
                     std::string_view domain) {
    Uri u;
    u.scheme = "sip";
    u.host = host.find(':') != std::string_view::npos && host.front() != '[' ? "[" + std::string(host) + "]"
                                                                             : std::string(host);
    u.port = port;
    u.params.set("transport", std::string(transport));
    u.params.set("lr", std::nullopt);
    if (!domain.empty()) u.params.set(kFedDomainParam, std::string(domain));
    return u;
}

std::optional<std::string> fed_domain(const Uri& u) {
    auto d = u.params.get(kFedDomainParam);
    if (!d || !dns_name(*d)) return std::nullopt;
    std::string out(*d);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return char(std::tolower(c)); });
    return out;
}

Result<FedPopped> fed_pop_own_routes(Message& m, std::string_view host, uint16_t port) {
    FedPopped out;
    for (int i = 0; i < 4; ++i) { // bounded: a route set naming us more often is not ours to unwind
        auto popped = pop_route_if(m, [&](const Uri& u) {
            if (!fed_names(u, host, port)) return false;
            if (auto d = fed_domain(u)) out.domain = std::move(d);
            return true;
        });
        if (!popped) return popped.error();
        if (!*popped) break;
        ++out.count;
    }
    return out;
}

bool fed_record(Message& m, const FedHop& hop, std::string_view domain) {
    if (!fed_dialog_forming(m)) return false;
    push_record_route(m, fed_record_route(hop.host, hop.port, hop.transport, domain));
    return true;
}

std::optional<std::string> fed_route_through(std::string_view bytes, Message& m, const FedHop& hop,
                                             std::string_view domain) {
    if (!m.is_request()) return std::string(bytes);
    bool changed = false;
    if (m.find(HeaderId::route)) {
        auto popped = fed_pop_own_routes(m, hop.host, hop.port);
        if (!popped) return std::nullopt;
        changed = popped->count > 0;
    }
    if (fed_record(m, hop, domain)) changed = true;
    return changed ? m.serialize() : std::string(bytes);
}

} // namespace edgepair::sip
