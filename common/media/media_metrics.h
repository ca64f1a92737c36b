#pragma once
// The media counters both edges publish: relayed packets and bytes, open sessions, and drops by reason.
// Created once per process on the main thread; workers only increment (atomics).
#include <cstdint>
#include <initializer_list>
#include <map>
#include <string>
#include <string_view>

#include "common/obs/metrics.h"

namespace edgepair::media {

struct MediaMetrics {
    obs::Counter* packets = nullptr;
    obs::Counter* bytes = nullptr;
    obs::Gauge* sessions = nullptr;
    std::map<std::string, obs::Counter*, std::less<>> drops;

    static MediaMetrics create(obs::Registry& reg, std::initializer_list<const char*> drop_reasons);
    void drop(std::string_view reason, uint64_t n = 1) const;
    // reason="kernel_rcvbuf", bound once: called on every wake-up of a media socket, mostly with 0.
    void kernel_drops(uint32_t n) const {
        if (n && kernel_rcvbuf) kernel_rcvbuf->inc(n);
    }
    obs::Counter* kernel_rcvbuf = nullptr;
    uint64_t dropped() const;
};

} // namespace edgepair::media
