#pragma once
// Reconnect delays for the link. Decorrelated jitter (each delay drawn between the floor and three times the
// previous one, capped) rather than plain doubling: after an edge-e restart, every edge-c worker of every
// peer redials at once, and correlated delays would make them arrive in synchronised waves.
#include <cstdint>
#include <random>

namespace edgepair::link {

class Backoff {
  public:
    // Delays stay within [min_ms, max_ms]. seed 0 draws a seed from std::random_device (tests pass one).
    Backoff(uint64_t min_ms, uint64_t max_ms, uint64_t seed = 0);
    uint64_t next();
    // After a link reached "up": the next failure starts again from the floor.
    void reset();
    unsigned attempts() const { return attempts_; }
    uint64_t min_ms() const { return min_; }
    uint64_t max_ms() const { return max_; }

  private:
    uint64_t min_, max_, prev_;
    unsigned attempts_ = 0;
    std::mt19937_64 rng_;
};

} // namespace edgepair::link
