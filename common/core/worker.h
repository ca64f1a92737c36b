#pragma once
// A worker is a thread running its own Loop. Client sessions live on exactly one worker from accept to
// close (DESIGN.md section 3), so nothing on the request path is shared between threads.
#include <functional>
#include <memory>
#include <thread>

#include "common/core/loop.h"

namespace edgepair::core {

class Worker {
  public:
    explicit Worker(unsigned index) : index_(index) {}
    ~Worker() { join(); }
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;

    unsigned index() const { return index_; }
    Loop& loop() { return loop_; }
    // `init` runs on the worker thread before its loop starts; it creates the worker's objects.
    void start(std::function<void()> init) {
        thread_ = std::thread([this, init = std::move(init)] {
            if (init) init();
            loop_.run();
        });
    }
    void stop() { loop_.stop(); }
    void join() {
        if (thread_.joinable()) thread_.join();
    }

  private:
    unsigned index_;
    Loop loop_;
    std::thread thread_;
};

} // namespace edgepair::core
