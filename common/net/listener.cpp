#include "common/net/listener.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <fmt/format.h>

#include "common/obs/log.h"

namespace edgepair::net {

void tune_socket(int fd) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

Result<std::unique_ptr<Listener>> Listener::open(core::Loop& loop, const SockAddr& addr, bool reuseport,
                                                 AcceptFn on_accept) {
    int fd = ::socket(addr.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return make_error(fmt::format("socket(): {}", std::strerror(errno)));
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (reuseport) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (addr.family() == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr.ss), addr.len) != 0) {
        int e = errno;
        ::close(fd);
        return make_error(fmt::format("cannot bind {}: {}", addr.str(), std::strerror(e)));
    }
    if (::listen(fd, 4096) != 0) {
        int e = errno;
        ::close(fd);
        return make_error(fmt::format("cannot listen on {}: {}", addr.str(), std::strerror(e)));
    }
    return std::unique_ptr<Listener>(new Listener(loop, fd, local_of(fd), std::move(on_accept)));
}

Listener::Listener(core::Loop& loop, int fd, SockAddr addr, AcceptFn fn)
    : loop_(loop), fd_(fd), addr_(addr), on_accept_(std::move(fn)) {
    watcher_ = std::make_unique<core::IoWatcher>(loop_, fd_, [this](short) { accept_all(); });
}

Listener::~Listener() {
    watcher_.reset();
    ::close(fd_);
}

void Listener::pause() {
    paused_ = true;
}
void Listener::resume() {
    paused_ = false;
    accept_all(); // edge-triggered: connections queued while paused raise no new event
}

void Listener::accept_all() {
    while (!paused_) {
        SockAddr peer;
        peer.len = sizeof peer.ss;
        int fd =
            ::accept4(fd_, reinterpret_cast<sockaddr*>(&peer.ss), &peer.len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                EP_WARN("net", "accept on {} failed: {}", addr_.str(), std::strerror(errno));
            // EMFILE and friends: the event is edge-triggered, so back off briefly instead of spinning.
            return;
        }
        tune_socket(fd);
        on_accept_(fd, peer);
    }
}

} // namespace edgepair::net
