#include "common/mra/model.h"

#include <cstdio>

namespace edgepair::mra {

std::string_view to_string(NodeType t) {
    switch (t) {
    case NodeType::UnifiedCM:
        return "unified_cm";
    case NodeType::ImP:
        return "imp";
    case NodeType::UnityConnection:
        return "unity_connection";
    }
    return "unknown";
}

std::string_view to_string(NodeStatus s) {
    switch (s) {
    case NodeStatus::Unknown:
        return "unknown";
    case NodeStatus::Active:
        return "active";
    case NodeStatus::Unreachable:
        return "unreachable";
    }
    return "unknown";
}

std::uint16_t https_port_of(const UcNode& n) {
    if (n.https_port != 0) {
        return n.https_port;
    }
    return n.type == NodeType::UnityConnection ? 443 : 8443;
}

std::string to_lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) {
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
    }
    return out;
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') {
            x = static_cast<char>(x - 'A' + 'a');
        }
        if (y >= 'A' && y <= 'Z') {
            y = static_cast<char>(y - 'A' + 'a');
        }
        if (x != y) {
            return false;
        }
    }
    return true;
}

namespace {

constexpr std::string_view kTcpPrefix = "CEtcp-";
constexpr std::string_view kTlsPrefix = "CEtls-";

std::uint32_t fnv1a(std::string_view s) {
    std::uint32_t h = 2166136261u;
    for (unsigned char c : s) {
        h ^= c;
        h *= 16777619u;
    }
    return h;
}

bool is_long_node_name(std::string_view node) {
    // Both prefixes have the same length, so "long" is the same for the TCP and TLS zone of a node.
    return kTcpPrefix.size() + node.size() > kMaxZoneNameLength;
}

std::string regex_escape(std::string_view s) {
    std::string out;
    for (char c : s) {
        switch (c) {
        case '\\':
        case '^':
        case '$':
        case '.':
        case '|':
        case '?':
        case '*':
        case '+':
        case '(':
        case ')':
        case '[':
        case ']':
        case '{':
        case '}':
            out.push_back('\\');
            break;
        default:
            break;
        }
        out.push_back(c);
    }
    return out;
}

// Host part of a SIP alias "user@host[:port][;params]" or of a bare host.
std::string_view alias_host(std::string_view alias) {
    if (auto at = alias.rfind('@'); at != std::string_view::npos) {
        alias.remove_prefix(at + 1);
    }
    if (auto semi = alias.find(';'); semi != std::string_view::npos) {
        alias = alias.substr(0, semi);
    }
    if (!alias.empty() && alias.front() == '[') { // IPv6 literal: the port follows the bracket
        auto close = alias.find(']');
        return close == std::string_view::npos ? alias : alias.substr(0, close + 1);
    }
    if (auto colon = alias.find(':'); colon != std::string_view::npos) {
        alias = alias.substr(0, colon);
    }
    return alias;
}

} // namespace

std::string zone_name(ZoneTransport t, std::string_view node) {
    const std::string_view prefix = t == ZoneTransport::Tcp ? kTcpPrefix : kTlsPrefix;
    if (!is_long_node_name(node)) {
        return std::string(prefix) + std::string(node);
    }
    char hash[16];
    std::snprintf(hash, sizeof hash, "-%08x", static_cast<unsigned>(fnv1a(node)));
    const std::size_t keep = kMaxZoneNameLength - prefix.size() - 9;
    return std::string(prefix) + std::string(node.substr(0, keep)) + hash;
}

bool SearchRule::matches(std::string_view host) const {
    return iequals(alias_host(host), node);
}

ZonesAndRules generate_zones(const std::vector<UcNode>& nodes) {
    ZonesAndRules out;
    for (const UcNode& n : nodes) {
        if (n.type != NodeType::UnifiedCM) {
            continue;
        }
        const std::string node = to_lower(n.name);
        auto add = [&](ZoneTransport t, std::uint16_t port, bool verify) {
            Zone z;
            z.name = zone_name(t, node);
            z.transport = t;
            z.node = node;
            z.port = port;
            z.tls_verify = verify;
            z.deployment = n.deployment;
            SearchRule r;
            r.name = z.name;
            r.target_zone = z.name;
            r.node = node;
            // "If the Unified CM node that is targeted by the search rule has a long name, the search rule
            // will use a regex for its address pattern match." (Automatically Generated Zones and Search
            // Rules). A long name is one whose zone name had to be shortened: the name no longer says which
            // node it targets, so the pattern carries the full node name as an anchored regex over the alias.
            if (is_long_node_name(node)) {
                r.pattern_type = PatternType::Regex;
                r.pattern = "(.*@)?" + regex_escape(node) + "(:[0-9]+)?(;.*)?";
            } else {
                r.pattern_type = PatternType::Exact;
                r.pattern = node;
            }
            out.zones.push_back(std::move(z));
            out.search_rules.push_back(std::move(r));
        };
        add(ZoneTransport::Tcp, n.sip_tcp_port, false);
        // "a TLS zone is created also if the Unified CM node is configured with a Cluster Security Mode of
        // 1 (Mixed) ... configured with its TLS verify mode set to On if the Unified CM discovery had TLS
        // verify mode enabled."
        if (n.mixed_mode) {
            add(ZoneTransport::Tls, n.sip_tls_port, n.tls_verify);
        }
    }
    return out;
}

} // namespace edgepair::mra
