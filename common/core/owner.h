#pragma once
// The one deferred-delete path for objects that live on a loop (a stream handler, an abandoned
// connection). Such an object usually learns it is finished inside one of its own callbacks, where it
// cannot be freed; its Owner frees it on the loop's next turn instead. Whatever the owner still holds when
// it is cleared or destroyed is freed with it, so nothing outlives the loop it runs on and nothing is freed
// twice. Owned by (and only touched from) the loop's thread.
#include <memory>
#include <unordered_map>
#include <vector>

#include "common/core/loop.h"

namespace edgepair::core {

class Owner {
  public:
    explicit Owner(Loop& loop) : flush_(loop, [this] { flush(); }) {}
    ~Owner() { clear(); }
    Owner(const Owner&) = delete;
    Owner& operator=(const Owner&) = delete;

    // Holds p until retire(p) (or clear()).
    template <class T> T* adopt(std::unique_ptr<T> p) {
        T* raw = p.get();
        if (raw) held_.emplace(raw, hold(std::move(p)));
        return raw;
    }
    // Frees p, which this owner holds, on the next loop turn. A second call, or a pointer this owner does
    // not hold, does nothing.
    void retire(const void* p) {
        auto it = held_.find(p);
        if (it == held_.end()) return;
        retired_.push_back(std::move(it->second));
        held_.erase(it);
        flush_.arm(0);
    }
    // Frees an object nobody holds (a connection being replaced inside its own callback) on the next turn.
    template <class T> void retire(std::unique_ptr<T> p) {
        if (!p) return;
        retired_.push_back(hold(std::move(p)));
        flush_.arm(0);
    }
    size_t size() const { return held_.size(); }
    // Frees everything now (the worker is stopping). Destructors may retire or free further objects.
    void clear() {
        for (int round = 0; round < 8 && (!held_.empty() || !retired_.empty()); ++round) {
            auto held = std::move(held_);
            held_.clear();
            held.clear();
            flush();
        }
    }

  private:
    using Holder = std::unique_ptr<void, void (*)(void*)>;
    template <class T> static Holder hold(std::unique_ptr<T> p) {
        return Holder(p.release(), [](void* q) { delete static_cast<T*>(q); });
    }
    void flush() {
        // A destructor may retire more; bounded because every round frees at least what it took.
        while (!retired_.empty()) {
            auto batch = std::move(retired_);
            retired_.clear();
            batch.clear();
        }
    }

    Timer flush_;
    std::unordered_map<const void*, Holder> held_;
    std::vector<Holder> retired_;
};

} // namespace edgepair::core
