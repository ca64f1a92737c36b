#include "common/core/process.h"

#include <condition_variable>
#include <csignal>
#include <mutex>
#include <thread>

namespace edgepair::core {

Process::Process(unsigned workers) {
    if (workers == 0) workers = std::max(1u, std::thread::hardware_concurrency());
    // A peer that vanishes mid-write must cost one connection, not the process.
    std::signal(SIGPIPE, SIG_IGN);
    for (unsigned i = 0; i < workers; ++i)
        workers_.push_back(std::make_unique<Worker>(i));
    signals_.push_back(std::make_unique<SignalWatcher>(main_, SIGHUP, [this] {
        if (reload_) reload_();
    }));
    auto drain = [this] {
        if (drain_)
            drain_();
        else
            stop();
    };
    signals_.push_back(std::make_unique<SignalWatcher>(main_, SIGTERM, drain));
    signals_.push_back(std::make_unique<SignalWatcher>(main_, SIGINT, drain));
}

Process::~Process() {
    for (auto& w : workers_)
        w->stop();
    for (auto& w : workers_)
        w->join();
}

void Process::start_workers(const std::function<void(Worker&)>& init) {
    std::mutex mu;
    std::condition_variable cv;
    size_t started = 0;
    for (auto& w : workers_) {
        Worker* wp = w.get();
        wp->start([&, wp] {
            init(*wp);
            std::lock_guard<std::mutex> lk(mu);
            ++started;
            cv.notify_all();
        });
    }
    std::unique_lock<std::mutex> lk(mu);
    cv.wait(lk, [&] { return started == workers_.size(); });
}

void Process::broadcast(std::function<void(Worker&)> fn, std::function<void()> done) {
    auto remaining = std::make_shared<std::atomic<size_t>>(workers_.size());
    auto shared_fn = std::make_shared<std::function<void(Worker&)>>(std::move(fn));
    auto shared_done = std::make_shared<std::function<void()>>(std::move(done));
    for (auto& w : workers_) {
        Worker* wp = w.get();
        wp->loop().post([this, wp, remaining, shared_fn, shared_done] {
            (*shared_fn)(*wp);
            if (remaining->fetch_sub(1) == 1 && *shared_done) main_.post(*shared_done);
        });
    }
}

void Process::run() {
    main_.run();
    for (auto& w : workers_)
        w->stop();
    for (auto& w : workers_)
        w->join();
}

} // namespace edgepair::core
