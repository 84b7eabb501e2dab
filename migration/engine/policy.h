// The pre-copy switchover policy, as a pure function of what the loop measured: stop
// iterating when the estimated downtime fits the target, or when the iteration cap or
// time cap is reached. The estimate is
//   what is left / bandwidth + the fixed cost of switching over.
// The fixed cost is what no amount of pre-copy makes smaller (the source's stop, the
// destination's load, commit and start, the reply); without it a busy device overshoots
// the target by it (measured in the lab: 80-130 ms of a 300 ms target).
#pragma once

#include <cstdint>

namespace mdevmig::engine {

struct PolicyConfig {
  double downtime_target_s = 0.3;  ///< allowed stop-copy time; <= 0: iterate to a cap
  uint32_t max_iterations = 30;    ///< switch over after this many iterations regardless
  double max_precopy_s = 0;        ///< switch over after this long (0: no limit)
  uint32_t min_iterations = 1;     ///< iterate at least this often
};

/// One iteration's measurements.
struct PolicyInput {
  uint32_t iteration = 0;         ///< iterations completed (1 after the first)
  uint64_t remaining_bytes = 0;   ///< device pending estimate + dirty guest bytes
  double bandwidth_bps = 0;       ///< measured transfer rate (0: not known yet)
  double dirty_rate_bps = 0;      ///< bytes dirtied per second, measured (0: not known)
  double elapsed_s = 0;           ///< since pre-copy started
  bool device_idle = false;       ///< nothing was sent in this iteration
  double switchover_fixed_s = 0;  ///< measured fixed cost of switching over (see above)
};

enum class Verdict { kContinue, kSwitchover };

struct Decision {
  Verdict verdict = Verdict::kContinue;
  const char* reason = "";  ///< why (for the report)
  /// remaining / bandwidth + switchover_fixed_s; -1 if the bandwidth is unknown
  double estimated_downtime_s = -1;
  bool converging = true;  ///< dirty rate below bandwidth
  /// On a switchover forced by a cap with the estimate over the target: about the dirty
  /// rate at which the estimate would have fitted (0: none would, the fixed cost alone
  /// exceeds the target; -1: not applicable).
  double fitting_rate_bps = -1;
};

[[nodiscard]] Decision decide(const PolicyInput& in, const PolicyConfig& cfg);

}  // namespace mdevmig::engine
