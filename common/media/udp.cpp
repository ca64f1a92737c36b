#include "common/media/udp.h"

#include <cerrno>
#include <cstring>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <fmt/format.h>

namespace edgepair::media {

UdpSocket::~UdpSocket() {
    if (fd_ >= 0) ::close(fd_);
}

UdpSocket& UdpSocket::operator=(UdpSocket&& o) noexcept {
    if (this != &o) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = std::exchange(o.fd_, -1);
        kernel_drops_ = o.kernel_drops_;
        kernel_drops_taken_ = o.kernel_drops_taken_;
    }
    return *this;
}

Result<UdpSocket> UdpSocket::bind(const net::SockAddr& local) {
    int family = local.family();
    if (family != AF_INET && family != AF_INET6) return make_error("UDP bind: not an IPv4/IPv6 address");
    int fd = ::socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return make_error(fmt::format("UDP socket: {}", std::strerror(errno)));
    UdpSocket s(fd);
    if (family == AF_INET6) {
        // v6 only: a dual-stack socket would report IPv4 peers as ::ffff:a.b.c.d, which latching compares
        // against the plain IPv4 address from SDP.
        int one = 1;
        if (::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0)
            return make_error(fmt::format("UDP IPV6_V6ONLY: {}", std::strerror(errno)));
    }
    // Best effort: without it the relay still works, only kernel drops go uncounted.
    int on = 1;
    (void)::setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &on, sizeof on);
    socklen_t len =
        local.len ? local.len : socklen_t(family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6));
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&local.ss), len) != 0)
        return make_error(fmt::format("UDP bind {}: {}", local.str(), std::strerror(errno)));
    return s;
}

uint16_t UdpSocket::local_port() const {
    if (fd_ < 0) return 0;
    return net::local_of(fd_).port();
}

ssize_t UdpSocket::recv_from(uint8_t* buf, size_t cap, net::SockAddr& from) {
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(uint32_t))];
    while (true) {
        iovec iov{buf, cap};
        msghdr msg{};
        msg.msg_name = &from.ss;
        msg.msg_namelen = sizeof from.ss;
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        ssize_t n = ::recvmsg(fd_, &msg, MSG_TRUNC);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            from.len = 0;
            return n;
        }
        from.len = msg.msg_namelen;
        // MSG_TRUNC in msg_flags is not needed: with MSG_TRUNC in flags, n is the datagram's full length.
        note_control(msg);
        return n;
    }
}

void UdpSocket::note_control(const msghdr& msg) {
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(const_cast<msghdr*>(&msg), c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL &&
            c->cmsg_len >= CMSG_LEN(sizeof(uint32_t)))
            std::memcpy(&kernel_drops_, CMSG_DATA(c), sizeof(uint32_t));
}

RecvBatch::RecvBatch(size_t headroom, size_t cap, size_t tailroom)
    : headroom_(headroom), cap_(cap), tailroom_(tailroom), slot_size_(headroom + cap + tailroom),
      storage_(kSlots * slot_size_) {}

ssize_t UdpSocket::recv_batch(RecvBatch& b) {
    for (size_t i = 0; i < RecvBatch::kSlots; ++i) {
        b.iov_[i] = {b.data(i), b.cap_};
        msghdr& m = b.msgs_[i].msg_hdr;
        m = msghdr{};
        m.msg_name = &b.from_[i].ss;
        m.msg_namelen = sizeof b.from_[i].ss;
        m.msg_iov = &b.iov_[i];
        m.msg_iovlen = 1;
        m.msg_control = b.control_[i];
        m.msg_controllen = RecvBatch::kControl;
        b.msgs_[i].msg_len = 0;
    }
    b.count_ = 0;
    int n;
    do
        n = ::recvmmsg(fd_, b.msgs_, RecvBatch::kSlots, MSG_TRUNC, nullptr);
    while (n < 0 && errno == EINTR);
    if (n <= 0) return n < 0 ? -1 : 0;
    b.count_ = size_t(n);
    for (size_t i = 0; i < b.count_; ++i) {
        b.from_[i].len = b.msgs_[i].msg_hdr.msg_namelen;
        note_control(b.msgs_[i].msg_hdr); // the kernel's running count: the last one read is the newest
    }
    return n;
}

bool UdpSocket::send_to(const uint8_t* buf, size_t len, const net::SockAddr& to) {
    while (true) {
        ssize_t n = ::sendto(fd_, buf, len, MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&to.ss), to.len);
        if (n < 0 && errno == EINTR) continue;
        return n >= 0 && size_t(n) == len;
    }
}

namespace {

// The lowest even port of [lo, hi] whose odd neighbour is in range too, as a wider type for the
// arithmetic near 65535; 0 when there is none. Port 0 is never handed out (it would mean "any").
uint32_t first_even(uint16_t lo) {
    uint32_t p = lo + (lo & 1u);
    return p == 0 ? 2 : p;
}

uint32_t pair_count(uint16_t lo, uint16_t hi) {
    uint32_t first = first_even(lo);
    if (first + 1 > hi) return 0;
    return (uint32_t(hi) - 1 - first) / 2 + 1;
}

net::SockAddr with_port(net::SockAddr a, uint16_t port) {
    if (a.family() == AF_INET)
        reinterpret_cast<sockaddr_in*>(&a.ss)->sin_port = htons(port);
    else if (a.family() == AF_INET6)
        reinterpret_cast<sockaddr_in6*>(&a.ss)->sin6_port = htons(port);
    return a;
}

} // namespace

PortPairAllocator::PortPairAllocator(net::SockAddr ip, uint16_t lo, uint16_t hi)
    : ip_(ip), lo_(lo), hi_(hi), next_(uint16_t(first_even(lo))) {}

Result<PortPairAllocator::Pair> PortPairAllocator::allocate() {
    uint32_t count = pair_count(lo_, hi_);
    if (count == 0) return make_error(fmt::format("port range {}-{} holds no RTP/RTCP pair", lo_, hi_));
    uint32_t first = first_even(lo_);
    std::string last_error;
    for (uint32_t tried = 0; tried < count; ++tried) {
        uint32_t p = next_;
        if (p < first || p + 1 > hi_) p = first;
        uint32_t after = p + 2;
        next_ = uint16_t(after + 1 > hi_ ? first : after);
        auto rtp = UdpSocket::bind(with_port(ip_, uint16_t(p)));
        if (!rtp) {
            last_error = rtp.error().message;
            continue;
        }
        auto rtcp = UdpSocket::bind(with_port(ip_, uint16_t(p + 1)));
        if (!rtcp) {
            last_error = rtcp.error().message;
            continue;
        }
        Pair pair;
        pair.rtp = std::move(*rtp);
        pair.rtcp = std::move(*rtcp);
        pair.port = uint16_t(p);
        return pair;
    }
    return make_error(
        fmt::format("no free RTP/RTCP port pair in {}-{} on {} (last: {})", lo_, hi_, ip_.ip(), last_error));
}

Result<std::pair<uint16_t, uint16_t>> parse_port_range(std::string_view s) {
    auto dash = s.find('-');
    if (dash == std::string_view::npos) return make_error(fmt::format("\"{}\": expected LO-HI", s));
    auto num = [](std::string_view t) -> std::optional<uint16_t> {
        if (t.empty() || t.size() > 5) return std::nullopt;
        uint32_t v = 0;
        for (char c : t) {
            if (c < '0' || c > '9') return std::nullopt;
            v = v * 10 + uint32_t(c - '0');
        }
        if (v == 0 || v > 65535) return std::nullopt;
        return uint16_t(v);
    };
    auto lo = num(s.substr(0, dash)), hi = num(s.substr(dash + 1));
    if (!lo || !hi) return make_error(fmt::format("\"{}\": ports must be numbers from 1 to 65535", s));
    if (*lo > *hi) return make_error(fmt::format("\"{}\": range is reversed", s));
    return std::pair<uint16_t, uint16_t>{*lo, *hi};
}

} // namespace edgepair::media
