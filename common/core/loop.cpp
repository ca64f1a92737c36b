#include "common/core/loop.h"

#include <stdexcept>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>

namespace edgepair::core {

Loop::Loop() {
    event_config* cfg = event_config_new();
    // Each loop is confined to one thread; no libevent-internal locking needed.
    event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
    base_ = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (!base_) throw std::runtime_error("event_base_new failed");
    wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd_ < 0) throw std::runtime_error("eventfd failed");
    wake_ = event_new(base_, wake_fd_, EV_READ | EV_PERSIST, &Loop::on_wake, this);
    event_add(wake_, nullptr);
}

Loop::~Loop() {
    event_free(wake_);
    close(wake_fd_);
    event_base_free(base_);
}

void Loop::run() {
    event_base_loop(base_, EVLOOP_NO_EXIT_ON_EMPTY);
}

void Loop::stop() {
    post([this] { event_base_loopbreak(base_); });
}

void Loop::post(std::function<void()> fn) {
    {
        std::lock_guard<std::mutex> lk(mu_);
        queue_.push_back(std::move(fn));
    }
    uint64_t one = 1;
    ssize_t r = write(wake_fd_, &one, sizeof one);
    (void)r; // EAGAIN only when the counter is saturated, and then a wake-up is already pending
}

void Loop::on_wake(int fd, short, void* arg) {
    auto* self = static_cast<Loop*>(arg);
    uint64_t v;
    ssize_t r = read(fd, &v, sizeof v);
    (void)r;
    std::vector<std::function<void()>> q;
    {
        std::lock_guard<std::mutex> lk(self->mu_);
        q.swap(self->queue_);
    }
    for (auto& fn : q)
        fn();
}

uint64_t Loop::now_ms() const {
    timeval tv;
    event_base_gettimeofday_cached(base_, &tv);
    return uint64_t(tv.tv_sec) * 1000 + uint64_t(tv.tv_usec) / 1000;
}

Timer::Timer(Loop& loop, std::function<void()> fn) : fn_(std::move(fn)) {
    ev_ = evtimer_new(loop.base(), &Timer::on_fire, this);
}
Timer::~Timer() {
    event_free(ev_);
}
void Timer::arm(uint64_t ms) {
    timeval tv{time_t(ms / 1000), suseconds_t((ms % 1000) * 1000)};
    evtimer_add(ev_, &tv);
}
void Timer::cancel() {
    evtimer_del(ev_);
}
bool Timer::armed() const {
    return evtimer_pending(ev_, nullptr);
}
void Timer::on_fire(int, short, void* arg) {
    auto* self = static_cast<Timer*>(arg);
    self->fn_();
}

IoWatcher::IoWatcher(Loop& loop, int fd, Interest interest, std::function<void(short)> fn)
    : fd_(fd), fn_(std::move(fn)) {
    // EV_CLOSED (EPOLLRDHUP) adds no wake-up of its own (a FIN also makes the socket readable); it only marks
    // the events that carry one (PeerClosed).
    short what = interest == Interest::ReadLevel ? short(EV_READ | EV_PERSIST)
                                                 : short(EV_READ | EV_WRITE | EV_CLOSED | EV_PERSIST | EV_ET);
    ev_ = event_new(loop.base(), fd, what, &IoWatcher::on_io, this);
    event_add(ev_, nullptr);
}
IoWatcher::~IoWatcher() {
    event_free(ev_);
}
void IoWatcher::on_io(int, short what, void* arg) {
    auto* self = static_cast<IoWatcher*>(arg);
    short w = 0;
    if (what & EV_READ) w |= Read;
    if (what & EV_WRITE) w |= Write;
    if (what & EV_CLOSED) w |= Read | PeerClosed;
    self->fn_(w);
}

SignalWatcher::SignalWatcher(Loop& loop, int signo, std::function<void()> fn) : fn_(std::move(fn)) {
    ev_ = evsignal_new(loop.base(), signo, &SignalWatcher::on_signal, this);
    evsignal_add(ev_, nullptr);
}
SignalWatcher::~SignalWatcher() {
    event_free(ev_);
}
void SignalWatcher::on_signal(int, short, void* arg) {
    static_cast<SignalWatcher*>(arg)->fn_();
}

} // namespace edgepair::core
