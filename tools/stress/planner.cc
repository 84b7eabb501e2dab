#include "tools/stress/planner.h"

#include <algorithm>

namespace mdevmig::stress {

RoundPlanner::RoundPlanner(uint64_t seed, std::vector<FaultKind> faults, double fault_rate)
    : rng_(seed), order_(std::move(faults)), fault_rate_(fault_rate) {
  std::shuffle(order_.begin(), order_.end(), rng_);
}

FaultKind RoundPlanner::draw_fault(const std::function<bool(FaultKind)>& applies) {
  if (order_.empty() || uniform(0, 1) >= fault_rate_) return FaultKind::kNone;
  for (std::size_t tries = 0; tries < order_.size(); ++tries) {
    const FaultKind f = order_[next_++ % order_.size()];
    if (!applies || applies(f)) return f;
  }
  return FaultKind::kNone;
}

}  // namespace mdevmig::stress
