#pragma once
// The process shape both edges share: a main loop (signals, admin, reload) and N worker loops.
// SIGHUP asks for a reload, SIGTERM/SIGINT for a drain; what those mean is the edge's business.
#include <atomic>
#include <functional>
#include <memory>
#include <vector>

#include "common/core/loop.h"
#include "common/core/worker.h"

namespace edgepair::core {

class Process {
  public:
    explicit Process(unsigned workers); // 0 = one per core
    ~Process();

    Loop& main_loop() { return main_; }
    std::vector<std::unique_ptr<Worker>>& workers() { return workers_; }
    void on_reload(std::function<void()> fn) { reload_ = std::move(fn); }
    void on_drain(std::function<void()> fn) { drain_ = std::move(fn); }

    // `init` runs on each worker's own thread before its loop starts; start() returns once every init ran.
    void start_workers(const std::function<void(Worker&)>& init);
    // Runs `fn` on every worker thread; `done` runs on the main loop after the last one finished.
    void broadcast(std::function<void(Worker&)> fn, std::function<void()> done = {});
    // Runs the main loop until stop(); then stops and joins the workers.
    void run();
    void stop() { main_.stop(); }

  private:
    Loop main_;
    std::vector<std::unique_ptr<Worker>> workers_;
    std::function<void()> reload_, drain_;
    std::vector<std::unique_ptr<SignalWatcher>> signals_;
};

} // namespace edgepair::core
