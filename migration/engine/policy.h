// The pre-copy switchover policy, as a pure function of what the loop measured: switch
// over as soon as the estimated downtime fits the target (between passes, and within a
// pass between its chunks, so that the downtime lands on the target rather than below it
// with a pass wasted), or when the iteration cap or time cap is reached. The estimate is
//   (what is left + still in flight + dirty rate x decision-to-stop time) / stop-copy rate
//   + fixed cost.
// What is left is what the device reports pending when the policy looks (the unsent part
// of the pass and what was dirtied since); the workload goes on dirtying until the device
// stops, for the measured decision-to-stop time. What the source sent but the
// destination's device has not yet taken is ahead of the stop-copy's bytes. The stop-copy
// rate is the rate the destination's device took bytes at, as the destination's answers
// reach the source while it sends without a pause (delivery_rate()): the whole path, the
// source's reads of the device included, which is what the stop-copy goes through (not
// the rate the source hands bytes to the connection, which buffers run ahead of, nor the
// destination's load alone, which waits for the source). The fixed cost is what no amount
// of pre-copy makes smaller (the source's stop, the destination's commit and start as the
// destination measured them, the reply); without it a busy device overshoots the target
// by it (measured in the lab: 80-130 ms of a 300 ms target).
#pragma once

#include <cstdint>
#include <span>

namespace mdevmig::engine {

struct PolicyConfig {
  double downtime_target_s = 0.3;  ///< allowed stop-copy time; <= 0: iterate to a cap
  uint32_t max_iterations = 30;    ///< switch over after this many iterations regardless
  double max_precopy_s = 0;        ///< switch over after this long (0: no limit)
  /// Complete at least this many passes (0: may switch over within the first pass, when
  /// what is left of it fits the target)
  uint32_t min_iterations = 0;
};

/// One iteration's measurements.
struct PolicyInput {
  uint32_t iteration = 0;        ///< iterations completed (1 after the first)
  bool within_pass = false;      ///< looked between the chunks of pass iteration + 1
  /// Within a pass: how much the estimate fell since the last look (0: not known). The
  /// next look comes a chunk later, so the switchover comes at the look nearest the
  /// target: now, if the next would be further below it than this one is above it
  /// (estimate <= target + step / 2, the half step at most 5% of the target).
  double estimate_step_s = 0;
  uint64_t remaining_bytes = 0;  ///< device pending estimate + dirty guest bytes
  /// Sent in earlier passes, not yet taken by the destination's device (in_flight_bytes())
  uint64_t in_flight_bytes = 0;
  double bandwidth_bps = 0;  ///< measured pre-copy transfer rate (0: not known yet)
  /// Measured rate at which the destination's device took data, the stop-copy rate
  /// (delivery_rate(); 0: not known, bandwidth_bps stands in).
  double stopcopy_bps = 0;
  /// Measured time from a decision until the device stops, while the workload still
  /// dirties (0: not known).
  double decision_to_stop_s = 0;
  double dirty_rate_bps = 0;      ///< bytes dirtied per second, measured (0: not known)
  double elapsed_s = 0;           ///< since pre-copy started
  bool device_idle = false;       ///< nothing was sent in this iteration
  double switchover_fixed_s = 0;  ///< measured fixed cost of switching over (see above)
};

enum class Verdict { kContinue, kSwitchover };

struct Decision {
  Verdict verdict = Verdict::kContinue;
  const char* reason = "";  ///< why (for the report)
  /// (remaining + in flight + dirty rate x decision_to_stop_s) / stop-copy rate
  /// + switchover_fixed_s;
  /// -1 if no rate is known
  double estimated_downtime_s = -1;
  bool converging = true;  ///< dirty rate below bandwidth
  /// On a switchover forced by a cap with the estimate over the target: about the dirty
  /// rate at which the estimate would have fitted (0: none would, the fixed cost alone
  /// exceeds the target; -1: not applicable).
  double fitting_rate_bps = -1;
};

/// An answer of the destination as the source received it: when (seconds on the source's
/// clock) and how many pre-copy bytes the destination's device had taken by then.
struct Delivery {
  double at_s = 0;
  uint64_t loaded = 0;
};

/// The rate the stop-copy goes at: the bytes the destination's device took per second
/// between the first and the last of `marks`, answers received while the source sent
/// without a pause (the first may be where that began, with what had been taken then).
/// Every cost of the path is in it (the source's reads of the device, the connection, the
/// destination's load), as it is in the stop-copy. 0: not measurable (fewer than two
/// marks, no time or no bytes between them).
[[nodiscard]] double delivery_rate(std::span<const Delivery> marks);

/// What the source sent that the destination's device has not taken, at the moment
/// `since_s` seconds after the later of the last answer and the first send it did not
/// answer yet: `sent - confirmed` less what `rate_bps` moved in that time (the
/// destination works on it meanwhile), not below 0.
[[nodiscard]] uint64_t in_flight_bytes(uint64_t sent, uint64_t confirmed, double since_s,
                                       double rate_bps);

/// The downtime estimate alone (see the top of this file); -1 if no rate is known.
[[nodiscard]] double estimate_downtime(const PolicyInput& in);

[[nodiscard]] Decision decide(const PolicyInput& in, const PolicyConfig& cfg);

}  // namespace mdevmig::engine
