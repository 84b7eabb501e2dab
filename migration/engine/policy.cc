#include "migration/engine/policy.h"

#include <algorithm>

namespace mdevmig::engine {

Decision decide(const PolicyInput& in, const PolicyConfig& cfg) {
  Decision d;
  if (in.bandwidth_bps > 0) {
    d.estimated_downtime_s =
        static_cast<double>(in.remaining_bytes) / in.bandwidth_bps + in.switchover_fixed_s;
    d.converging = in.dirty_rate_bps < in.bandwidth_bps;
  }
  if (in.iteration < cfg.min_iterations) {
    d.reason = "initial pass";
    return d;
  }
  // A target of 0 (or less) allows no downtime estimate at all: iterate to a cap.
  const bool converge = cfg.downtime_target_s > 0;
  if (converge && d.estimated_downtime_s >= 0 && d.estimated_downtime_s <= cfg.downtime_target_s) {
    d.verdict = Verdict::kSwitchover;
    d.reason = "converged: estimated downtime within target";
    return d;
  }
  if (converge && in.remaining_bytes == 0 && in.device_idle) {
    d.verdict = Verdict::kSwitchover;
    d.reason = "converged: nothing left to send";
    d.estimated_downtime_s = in.switchover_fixed_s;
    return d;
  }
  // The fixed cost alone over the target: no number of iterations can meet it, at any
  // dirty rate. That is the reason, before whether pre-copy converges (which depends on
  // rates measured over short passes, and changes with the machine's load).
  const bool unreachable = converge && in.switchover_fixed_s >= cfg.downtime_target_s;
  // Forced by a cap: at about which dirty rate the estimate would have fitted. What is
  // left was dirtied during the last pass, so it and the bytes dirtied until the stop
  // scale with the rate; the fixed cost does not.
  auto fitting_rate = [&]() -> double {
    if (unreachable) return 0;
    if (!converge || d.estimated_downtime_s <= cfg.downtime_target_s || in.dirty_rate_bps <= 0)
      return -1;
    const double variable = d.estimated_downtime_s - in.switchover_fixed_s;
    const double scale = (cfg.downtime_target_s - in.switchover_fixed_s) / variable;
    return std::min(in.dirty_rate_bps * scale, in.bandwidth_bps);
  };
  if (cfg.max_iterations != 0 && in.iteration >= cfg.max_iterations) {
    d.verdict = Verdict::kSwitchover;
    d.fitting_rate_bps = fitting_rate();
    d.reason = unreachable ? "iteration cap (the fixed switchover cost alone exceeds the target)"
               : !d.converging ? "iteration cap (not converging: dirty rate >= bandwidth)"
                               : "iteration cap";
    return d;
  }
  if (cfg.max_precopy_s > 0 && in.elapsed_s >= cfg.max_precopy_s) {
    d.verdict = Verdict::kSwitchover;
    d.reason = "pre-copy time cap";
    d.fitting_rate_bps = fitting_rate();
    return d;
  }
  d.reason = unreachable     ? "iterating (the fixed switchover cost alone exceeds the target)"
             : !d.converging ? "iterating (not converging yet)"
                             : "iterating";
  return d;
}

}  // namespace mdevmig::engine
