#include "common/config/media_config.h"

#include "common/config/yaml_reader.h"
#include "common/media/udp.h"
#include "common/net/address.h"

namespace edgepair::config {

namespace {

void read_ip(const Map& m, std::string_view key, std::string& out, bool required) {
    auto n = required ? m.require(key) : m.get(key);
    if (!n) return;
    auto v = n->as_string();
    if (!v) return;
    std::string host = *v;
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    auto a = net::numeric_addr(host, 0);
    if (!a || host == "*")
        n->error("expected a numeric IPv4 or IPv6 address (media is addressed by IP in SDP), got \"" + *v +
                 "\"");
    else
        out = host;
}

void read_range(const Map& m, std::string_view key, PortRange& out, uint16_t min_size) {
    auto n = m.get(key);
    if (!n) return;
    auto v = n->as_string();
    if (!v) return;
    auto r = media::parse_port_range(*v);
    if (!r) {
        n->error(r.error().message);
        return;
    }
    if (r->first < 1024) {
        n->error("media ports must be above 1023, got \"" + *v + "\"");
        return;
    }
    if (size_t(r->second) - r->first + 1 < min_size) {
        n->error("range \"" + *v + "\" is too small (at least " + std::to_string(min_size) + " ports)");
        return;
    }
    out = {r->first, r->second};
}

} // namespace

const char* to_string(MediaEncryption e) {
    return e == MediaEncryption::Force ? "force" : "best_effort";
}

void parse_edge_e_media(const Node& n, EdgeEMediaConfig& out) {
    auto m = n.as_map(
        {"listen", "public_address", "ports", "traversal_listen", "traversal_ports", "idle_timeout"});
    read_ip(m, "listen", out.listen, true);
    read_ip(m, "public_address", out.public_address, false);
    if (out.public_address.empty()) out.public_address = out.listen;
    read_range(m, "ports", out.ports, 2);
    read_ip(m, "traversal_listen", out.traversal_listen, false);
    read_range(m, "traversal_ports", out.traversal_ports, 1);
    m.duration("idle_timeout", out.idle_timeout, std::chrono::seconds(5), std::chrono::hours(24));
}

void parse_edge_c_media(const Node& n, EdgeCMediaConfig& out) {
    auto m = n.as_map({"address", "ports", "encryption", "idle_timeout"});
    read_ip(m, "address", out.address, true);
    read_range(m, "ports", out.ports, 2);
    static constexpr EnumName<MediaEncryption> kEnc[] = {{"force", MediaEncryption::Force},
                                                         {"best_effort", MediaEncryption::BestEffort}};
    m.enumeration<MediaEncryption>("encryption", out.encryption, kEnc);
    m.duration("idle_timeout", out.idle_timeout, std::chrono::seconds(5), std::chrono::hours(24));
}

} // namespace edgepair::config
