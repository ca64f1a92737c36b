#pragma once
// A listening socket on one worker's loop. Every worker opens its own socket on the same address with
// SO_REUSEPORT, so the kernel spreads connections over workers and a connection never changes thread.
#include <functional>
#include <memory>

#include "common/core/loop.h"
#include "common/core/result.h"
#include "common/net/address.h"

namespace edgepair::net {

class Listener {
  public:
    using AcceptFn = std::function<void(int fd, const SockAddr& peer)>;
    static Result<std::unique_ptr<Listener>> open(core::Loop& loop, const SockAddr& addr, bool reuseport,
                                                  AcceptFn on_accept);
    ~Listener();
    const SockAddr& address() const { return addr_; } // the bound address (port resolved if 0 was asked)
    void pause();
    void resume();

  private:
    Listener(core::Loop& loop, int fd, SockAddr addr, AcceptFn fn);
    void accept_all();
    core::Loop& loop_;
    int fd_;
    SockAddr addr_;
    AcceptFn on_accept_;
    std::unique_ptr<core::IoWatcher> watcher_;
    bool paused_ = false;
};

// Socket options every connection gets (TCP_NODELAY: ANCHORS B7, TLS 1.3 ends with the client speaking).
void tune_socket(int fd);

} // namespace edgepair::net
