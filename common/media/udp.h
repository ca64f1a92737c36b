#pragma once
// Non-blocking UDP sockets and the RTP/RTCP port-pair allocator both edges relay media with.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <sys/socket.h>
#include <utility>
#include <vector>

#include "common/core/result.h"
#include "common/net/address.h"

namespace edgepair::media {

// Datagrams read by one recvmmsg(2): the relays' receive path. Each slot keeps `headroom` bytes before its
// datagram and `tailroom` after its `cap`, so a relay can prepend the traversal header or grow an SRTP
// packet in place without a copy. A batch is scratch space: one serves all of its owner's sockets that read
// into the same layout, one after the other on the owner's thread.
class RecvBatch {
  public:
    static constexpr size_t kSlots = 16;
    RecvBatch(size_t headroom, size_t cap, size_t tailroom);
    RecvBatch(const RecvBatch&) = delete;
    RecvBatch& operator=(const RecvBatch&) = delete;

    size_t count() const { return count_; }
    // Datagram i of the last read; len(i) is its full length, > cap() when it was truncated.
    uint8_t* data(size_t i) { return slot(i) + headroom_; }
    size_t len(size_t i) const { return msgs_[i].msg_len; }
    const net::SockAddr& from(size_t i) const { return from_[i]; }
    uint8_t* slot(size_t i) { return storage_.data() + i * slot_size_; }
    size_t headroom() const { return headroom_; }
    size_t cap() const { return cap_; }
    size_t tailroom() const { return tailroom_; }

  private:
    friend class UdpSocket;
    static constexpr size_t kControl = CMSG_SPACE(sizeof(uint32_t));
    size_t headroom_, cap_, tailroom_, slot_size_;
    size_t count_ = 0;
    std::vector<uint8_t> storage_;
    mmsghdr msgs_[kSlots];
    iovec iov_[kSlots];
    net::SockAddr from_[kSlots];
    alignas(cmsghdr) char control_[kSlots][kControl];
};

// Batches one read event may take before the relay goes back to the loop (level-triggered: what is left
// raises the event again), so that one busy socket cannot starve the others of a worker.
inline constexpr int kMaxBatchesPerEvent = 4;

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
    // Up to RecvBatch::kSlots waiting datagrams in one system call: their count (also b.count()), or -1 when
    // none is waiting (EAGAIN) or on error (errno set). Truncated ones are reported as recv_from does.
    // With a level-triggered watcher (IoWatcher::Interest::ReadLevel) a short batch means the queue was
    // empty at the time of the call, and the caller can wait for the next event instead of reading again.
    ssize_t recv_batch(RecvBatch& b);
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
    void note_control(const msghdr& msg);
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
