// The round planner: the seeded draws of a stress run. Faults come round robin over a
// shuffled order of the faults asked for (so each one is exercised), each round
// faulted with probability `fault_rate`; the drivers draw their own knobs (switchover
// moment, transport, fault point) from the same generator, in their own order.
#pragma once

#include <cstdint>
#include <functional>
#include <random>
#include <vector>

#include "tools/stress/faults.h"

namespace mdevmig::stress {

class RoundPlanner {
 public:
  RoundPlanner(uint64_t seed, std::vector<FaultKind> faults, double fault_rate);

  /// Uniform in [lo, hi).
  [[nodiscard]] double uniform(double lo, double hi) {
    return std::uniform_real_distribution<double>(lo, hi)(rng_);
  }
  /// Uniform in [0, n); n > 0.
  [[nodiscard]] uint64_t below(uint64_t n) { return rng_() % n; }
  /// This round's fault: kNone with probability 1 - fault_rate, else the next fault in
  /// the order that `applies` accepts (all of them without it); kNone if none does.
  [[nodiscard]] FaultKind draw_fault(const std::function<bool(FaultKind)>& applies = {});

 private:
  std::mt19937_64 rng_;
  std::vector<FaultKind> order_;
  double fault_rate_;
  std::size_t next_ = 0;
};

}  // namespace mdevmig::stress
