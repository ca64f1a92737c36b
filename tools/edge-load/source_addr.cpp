#include "tools/edge-load/source_addr.h"

#include <cerrno>
#include <cstring>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include "common/net/listener.h"
#include "tools/edge-load/options.h"

namespace edgepair::load {

uint32_t source_for(const Options& o, uint64_t n) {
    if (!o.source_lo) return 0;
    return o.source_lo + uint32_t(n % (uint64_t(o.source_hi) - o.source_lo + 1));
}

std::unique_ptr<net::Connection> connect_from(core::Loop& loop, const net::SockAddr& to, uint32_t source,
                                              SSL* ssl, std::string* err) {
    if (!source || to.family() != AF_INET) return net::Connection::connect(loop, to, ssl, err);
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    auto give_up = [&](const char* what) -> std::unique_ptr<net::Connection> {
        *err = fmt::format("{} (from {}.{}.{}.{} to {}): {}", what, source >> 24, (source >> 16) & 255,
                           (source >> 8) & 255, source & 255, to.str(), std::strerror(errno));
        if (fd >= 0) ::close(fd);
        if (ssl) SSL_free(ssl);
        return nullptr;
    };
    if (fd < 0) return give_up("socket()");
    // The port is picked at connect() per 4-tuple, so one source address serves any number of targets and
    // connections (a bind() with port 0 would reserve a port per source address for every destination).
    int one = 1;
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    sockaddr_in src{};
    src.sin_family = AF_INET;
    src.sin_addr.s_addr = htonl(source);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0) return give_up("bind");
    net::tune_socket(fd);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&to.ss), to.len) != 0 && errno != EINPROGRESS)
        return give_up("connect");
    return net::Connection::connecting(loop, fd, to, ssl);
}

} // namespace edgepair::load
