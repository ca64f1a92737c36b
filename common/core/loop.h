#pragma once
// One libevent event_base per thread. Everything that touches a Loop runs on that loop's thread, except
// post(), which is how other threads (the main thread on reload, for instance) hand work to it.
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

struct event_base;
struct event;

namespace edgepair::core {

class Loop {
  public:
    Loop();
    ~Loop();
    Loop(const Loop&) = delete;
    Loop& operator=(const Loop&) = delete;

    event_base* base() const { return base_; }
    void run();
    void stop(); // thread-safe
    // Thread-safe: runs fn on the loop's thread at its next turn.
    void post(std::function<void()> fn);
    // Monotonic milliseconds, cached per loop turn by libevent.
    uint64_t now_ms() const;

  private:
    static void on_wake(int fd, short, void* arg);
    event_base* base_ = nullptr;
    event* wake_ = nullptr;
    int wake_fd_ = -1;
    std::mutex mu_;
    std::vector<std::function<void()>> queue_;
};

class Timer {
  public:
    Timer(Loop& loop, std::function<void()> fn);
    ~Timer();
    Timer(const Timer&) = delete;
    Timer& operator=(const Timer&) = delete;
    void arm(uint64_t ms);
    void cancel();
    bool armed() const;

  private:
    static void on_fire(int, short, void* arg);
    event* ev_ = nullptr;
    std::function<void()> fn_;
};

// Edge-triggered, persistent read+write interest on a socket (ANCHORS B7: no level-triggered re-arm per
// write). The owner reads/writes until EAGAIN on each callback, or, on a stream socket, until a read returns
// less than it asked for (epoll(7): the input is then exhausted, and more data raises a new edge) unless
// PeerClosed is set: the peer's FIN came before this event was collected, raises no edge of its own, and
// only a read to EOF finds it.
//
// ReadLevel is the other interest, for datagram sockets read in batches (the media relays): level-triggered
// reads only. The owner reads one bounded batch per callback and stops when the batch came back short: what
// arrives later raises the event again, so no read is spent on finding EAGAIN (one system call per packet on
// a relay where one packet arrives per wake-up).
class IoWatcher {
  public:
    enum : short { Read = 0x02, Write = 0x04, PeerClosed = 0x80 };
    enum class Interest { EdgeReadWrite, ReadLevel };
    IoWatcher(Loop& loop, int fd, std::function<void(short what)> fn)
        : IoWatcher(loop, fd, Interest::EdgeReadWrite, std::move(fn)) {}
    IoWatcher(Loop& loop, int fd, Interest interest, std::function<void(short what)> fn);
    ~IoWatcher();
    IoWatcher(const IoWatcher&) = delete;
    IoWatcher& operator=(const IoWatcher&) = delete;
    int fd() const { return fd_; }

  private:
    static void on_io(int, short what, void* arg);
    event* ev_ = nullptr;
    int fd_;
    std::function<void(short)> fn_;
};

class SignalWatcher {
  public:
    SignalWatcher(Loop& loop, int signo, std::function<void()> fn);
    ~SignalWatcher();
    SignalWatcher(const SignalWatcher&) = delete;
    SignalWatcher& operator=(const SignalWatcher&) = delete;

  private:
    static void on_signal(int, short, void* arg);
    event* ev_ = nullptr;
    std::function<void()> fn_;
};

} // namespace edgepair::core
