// The pre-copy switchover policy, as a pure function of what the loop measured: stop
// iterating when the estimated downtime fits the target, or when the iteration cap or
// time cap is reached. The estimate is
//   (what is left + still in flight + dirty rate x decision-to-stop time) / stop-copy rate
//   + fixed cost.
// What is left was measured at the end of the last pass; the workload goes on dirtying
// until the device stops, for the measured decision-to-stop time. What the source sent
// but the destination's device has not yet taken is ahead of the stop-copy's bytes. The
// stop-copy rate is the rate data reached the destination's device (not the rate the
// source handed it to the connection, which buffers run ahead of), as the destination
// timed its load of each pass, fitted over the passes so that what a pass costs besides
// its bytes is not taken for a slower rate (stopcopy_rate()). The fixed cost is what no
// amount of pre-copy makes smaller (the source's stop, the destination's commit and start
// as the destination measured them, the reply); without it a busy device overshoots the
// target by it (measured in the lab: 80-130 ms of a 300 ms target).
#pragma once

#include <cstdint>
#include <span>

namespace mdevmig::engine {

struct PolicyConfig {
  double downtime_target_s = 0.3;  ///< allowed stop-copy time; <= 0: iterate to a cap
  uint32_t max_iterations = 30;    ///< switch over after this many iterations regardless
  double max_precopy_s = 0;        ///< switch over after this long (0: no limit)
  uint32_t min_iterations = 1;     ///< iterate at least this often
};

/// One iteration's measurements.
struct PolicyInput {
  uint32_t iteration = 0;        ///< iterations completed (1 after the first)
  uint64_t remaining_bytes = 0;  ///< device pending estimate + dirty guest bytes
  /// Sent in earlier passes, not yet taken by the destination's device (in_flight_bytes())
  uint64_t in_flight_bytes = 0;
  double bandwidth_bps = 0;  ///< measured pre-copy transfer rate (0: not known yet)
  /// Measured rate at which data reached the destination's device, the stop-copy rate
  /// (0: not known; bandwidth_bps stands in).
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

/// One pre-copy pass as the destination timed it: its bytes, and the seconds from the
/// first of them arriving (or, if later, the previous pass having reached the device)
/// until the destination's device took the last of them.
struct PassTiming {
  uint64_t bytes = 0;
  double seconds = 0;
};

/// The rate the stop-copy goes at, from the passes' timings. A pass's time is a cost of
/// its own (its first bytes' way, the drain at its end), which the stop-copy pays once,
/// plus its bytes at the rate: a least-squares fit of
/// seconds = cost + bytes / rate over the passes gives the rate. With passes of one size
/// only, or a fit without sense (slope <= 0, cost < 0), the fastest pass's own rate
/// stands in; never below it, since the cost is >= 0. 0: no pass with bytes and time.
[[nodiscard]] double stopcopy_rate(std::span<const PassTiming> passes);

/// What the source sent that the destination's device has not taken, at the moment
/// `since_s` seconds after the later of the last answer and the start of the first pass
/// it did not answer: `sent - confirmed` less what `rate_bps` moved in that time (the
/// destination works on it meanwhile), not below 0.
[[nodiscard]] uint64_t in_flight_bytes(uint64_t sent, uint64_t confirmed, double since_s,
                                       double rate_bps);

/// The downtime estimate alone (see the top of this file); -1 if no rate is known.
[[nodiscard]] double estimate_downtime(const PolicyInput& in);

[[nodiscard]] Decision decide(const PolicyInput& in, const PolicyConfig& cfg);

}  // namespace mdevmig::engine
