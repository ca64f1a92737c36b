#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <sys/socket.h>

#include "common/core/result.h"

namespace edgepair::net {

struct SockAddr {
    sockaddr_storage ss{};
    socklen_t len = 0;
    int family() const { return ss.ss_family; }
    uint16_t port() const;
    std::string ip() const;
    std::string str() const; // "1.2.3.4:80" or "[::1]:80"
};

// Same family and IP address, whatever the ports: a source check per packet without formatting text.
bool same_host(const SockAddr& a, const SockAddr& b);

// Dotted-quad text of the 4 bytes of an IPv4 address (network order).
std::string ipv4_text(const void* in4);

// A numeric host ("127.0.0.1", "::1", "[::1]", "*" = any IPv4) and a port; no DNS.
Result<SockAddr> numeric_addr(std::string_view host, uint16_t port);
// "host:port" with a numeric host; "*:port" binds every IPv4 address.
Result<SockAddr> parse_listen(std::string_view hostport);
// Split "host:port" / "[v6]:port" without resolving. Port 0 when absent and no default is given.
Result<std::pair<std::string, uint16_t>> split_host_port(std::string_view s, uint16_t default_port = 0);
// Blocking getaddrinfo: for start-up only (binding to a configured host name), never on a worker loop.
Result<SockAddr> resolve_blocking(const std::string& host, uint16_t port);

SockAddr peer_of(int fd);
SockAddr local_of(int fd);

} // namespace edgepair::net
