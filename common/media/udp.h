#pragma once
// Non-blocking UDP sockets and the RTP/RTCP port-pair allocator both edges relay media with.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>

#include "common/core/result.h"
#include "common/net/address.h"

namespace edgepair::media {

class UdpSocket {
  public:
    UdpSocket() = default;
    explicit UdpSocket(int fd) : fd_(fd) {}
    ~UdpSocket();
    UdpSocket(UdpSocket&& o) noexcept
        : fd_(std::exchange(o.fd_, -1)), kernel_drops_(o.kernel_drops_),
          kernel_drops_taken_(o.kernel_drops_taken_) {}
    UdpSocket& operator=(UdpSocket&& o) noexcept;
    UdpSocket(const UdpSocket&) = delete;
    UdpSocket& operator=(const UdpSocket&) = delete;

    // Non-blocking, close-on-exec; SO_REUSEADDR off (a port in use must fail so the allocator moves on).
    static Result<UdpSocket> bind(const net::SockAddr& local);
    int fd() const { return fd_; }
    bool valid() const { return fd_ >= 0; }
    uint16_t local_port() const;
    // One datagram. -1 when none is waiting (EAGAIN) or on error (errno set); truncated datagrams are
    // reported with their full length > cap (MSG_TRUNC), so callers can count and drop them.
    ssize_t recv_from(uint8_t* buf, size_t cap, net::SockAddr& from);
    bool send_to(const uint8_t* buf, size_t len, const net::SockAddr& to);
    // Datagrams the kernel dropped because this socket's receive buffer was full, since the last call.
    // SO_RXQ_OVFL: the kernel stamps its running count on each datagram it queues, so drops show once the
    // next datagram after them has been read (in a media stream, 20 ms later).
    // Packets lost this way never reach the relay: without this, no counter would see them.
    uint32_t take_kernel_drops() {
        uint32_t d = kernel_drops_ - kernel_drops_taken_; // the kernel's counter is a wrapping u32
        kernel_drops_taken_ = kernel_drops_;
        return d;
    }

  private:
    int fd_ = -1;
    uint32_t kernel_drops_ = 0;
    uint32_t kernel_drops_taken_ = 0;
};

// Even RTP port + the odd RTCP port above it, bound on ip, from [lo, hi]. Hands out pairs round-robin from a
// moving cursor, so a port just released is not reused at once (late packets of the old call).
class PortPairAllocator {
  public:
    PortPairAllocator(net::SockAddr ip, uint16_t lo, uint16_t hi);
    struct Pair {
        UdpSocket rtp, rtcp;
        uint16_t port = 0; // the RTP port
    };
    // Error when every pair in the range is taken (after one full sweep).
    Result<Pair> allocate();
    uint16_t lo() const { return lo_; }
    uint16_t hi() const { return hi_; }

  private:
    net::SockAddr ip_;
    uint16_t lo_, hi_, next_;
};

// "36002-59999" -> {36002, 59999}. Errors for reversed, zero or malformed ranges.
Result<std::pair<uint16_t, uint16_t>> parse_port_range(std::string_view s);

} // namespace edgepair::media
