#include "common/net/address.h"

#include <charconv>

#include <arpa/inet.h>
#include <cstring>
#include <netdb.h>
#include <netinet/in.h>

#include <fmt/format.h>

namespace edgepair::net {

uint16_t SockAddr::port() const {
    if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&ss)->sin_port);
    if (family() == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_port);
    return 0;
}

std::string ipv4_text(const void* in4) {
    // glibc's inet_ntop formats IPv4 through sprintf: about 1,800 instructions, and a request formats its
    // client's address several times (rate key, access log, x-client-addr).
    const auto* b = static_cast<const uint8_t*>(in4);
    char buf[16];
    char* p = buf;
    for (int i = 0; i < 4; ++i) {
        if (i) *p++ = '.';
        p = std::to_chars(p, buf + sizeof buf, unsigned(b[i])).ptr;
    }
    return std::string(buf, p);
}

std::string SockAddr::ip() const {
    if (family() == AF_INET) return ipv4_text(&reinterpret_cast<const sockaddr_in*>(&ss)->sin_addr);
    char buf[INET6_ADDRSTRLEN] = "?";
    if (family() == AF_INET6)
        inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_addr, buf, sizeof buf);
    return buf;
}

bool same_host(const SockAddr& a, const SockAddr& b) {
    if (a.family() != b.family()) return false;
    if (a.family() == AF_INET)
        return reinterpret_cast<const sockaddr_in*>(&a.ss)->sin_addr.s_addr ==
               reinterpret_cast<const sockaddr_in*>(&b.ss)->sin_addr.s_addr;
    if (a.family() == AF_INET6)
        return std::memcmp(&reinterpret_cast<const sockaddr_in6*>(&a.ss)->sin6_addr,
                           &reinterpret_cast<const sockaddr_in6*>(&b.ss)->sin6_addr, sizeof(in6_addr)) == 0;
    return false;
}

std::string SockAddr::str() const {
    std::string out;
    out.reserve(INET6_ADDRSTRLEN + 8);
    if (family() == AF_INET6) out.push_back('[');
    out += ip();
    if (family() == AF_INET6) out.push_back(']');
    out.push_back(':');
    char port_buf[8];
    out.append(port_buf, std::to_chars(port_buf, port_buf + sizeof port_buf, unsigned(port())).ptr);
    return out;
}

Result<SockAddr> numeric_addr(std::string_view host, uint16_t port) {
    SockAddr a;
    std::string h(host);
    if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
    if (h == "*" || h.empty()) h = "0.0.0.0";
    auto* v4 = reinterpret_cast<sockaddr_in*>(&a.ss);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.ss);
    if (inet_pton(AF_INET, h.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        a.len = sizeof(sockaddr_in);
        return a;
    }
    if (inet_pton(AF_INET6, h.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        a.len = sizeof(sockaddr_in6);
        return a;
    }
    return make_error(fmt::format("\"{}\" is not an IP address", host));
}

Result<std::pair<std::string, uint16_t>> split_host_port(std::string_view s, uint16_t default_port) {
    std::string_view host = s, port;
    if (!s.empty() && s.front() == '[') {
        auto close = s.find(']');
        if (close == std::string_view::npos) return make_error(fmt::format("\"{}\": missing ']'", s));
        host = s.substr(1, close - 1);
        auto rest = s.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') return make_error(fmt::format("\"{}\": junk after ']'", s));
            port = rest.substr(1);
        }
    } else {
        auto colon = s.rfind(':');
        if (colon != std::string_view::npos) {
            if (s.find(':') != colon)
                return make_error(fmt::format("\"{}\": IPv6 addresses need [brackets]", s));
            host = s.substr(0, colon);
            port = s.substr(colon + 1);
        }
    }
    if (host.empty()) return make_error(fmt::format("\"{}\": empty host", s));
    uint16_t p = default_port;
    if (!port.empty()) {
        unsigned v = 0;
        for (char c : port) {
            if (c < '0' || c > '9') return make_error(fmt::format("\"{}\": bad port", s));
            v = v * 10 + unsigned(c - '0');
            if (v > 65535) return make_error(fmt::format("\"{}\": port out of range", s));
        }
        if (v == 0) return make_error(fmt::format("\"{}\": port 0", s));
        p = uint16_t(v);
    }
    if (p == 0) return make_error(fmt::format("\"{}\": no port", s));
    return std::pair<std::string, uint16_t>{std::string(host), p};
}

Result<SockAddr> parse_listen(std::string_view hostport) {
    auto hp = split_host_port(hostport);
    if (!hp) return hp.error();
    return numeric_addr(hp->first, hp->second);
}

Result<SockAddr> resolve_blocking(const std::string& host, uint16_t port) {
    auto n = numeric_addr(host, port);
    if (n) return n;
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    int rc = getaddrinfo(host.c_str(), nullptr, &hints, &res);
    if (rc != 0 || !res) return make_error(fmt::format("cannot resolve \"{}\": {}", host, gai_strerror(rc)));
    SockAddr a;
    std::memcpy(&a.ss, res->ai_addr, res->ai_addrlen);
    a.len = socklen_t(res->ai_addrlen);
    freeaddrinfo(res);
    if (a.family() == AF_INET)
        reinterpret_cast<sockaddr_in*>(&a.ss)->sin_port = htons(port);
    else
        reinterpret_cast<sockaddr_in6*>(&a.ss)->sin6_port = htons(port);
    return a;
}

SockAddr peer_of(int fd) {
    SockAddr a;
    a.len = sizeof a.ss;
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&a.ss), &a.len) != 0) a.len = 0;
    return a;
}

SockAddr local_of(int fd) {
    SockAddr a;
    a.len = sizeof a.ss;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&a.ss), &a.len) != 0) a.len = 0;
    return a;
}

} // namespace edgepair::net
