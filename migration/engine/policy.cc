#include "migration/engine/policy.h"

#include <algorithm>

namespace mdevmig::engine {

double delivery_rate(std::span<const Delivery> marks) {
  if (marks.size() < 2) return 0;
  const Delivery& a = marks.front();
  const Delivery& b = marks.back();
  if (!(b.at_s > a.at_s) || b.loaded <= a.loaded) return 0;
  return static_cast<double>(b.loaded - a.loaded) / (b.at_s - a.at_s);
}

uint64_t in_flight_bytes(uint64_t sent, uint64_t confirmed, double since_s, double rate_bps) {
  if (sent <= confirmed) return 0;
  const double left =
      static_cast<double>(sent - confirmed) - std::max(0.0, rate_bps) * std::max(0.0, since_s);
  return left > 0 ? static_cast<uint64_t>(left) : 0;
}

double estimate_downtime(const PolicyInput& in) {
  const double rate = in.stopcopy_bps > 0 ? in.stopcopy_bps : in.bandwidth_bps;
  if (rate <= 0) return -1;
  const double until_stop = std::max(0.0, in.dirty_rate_bps) * std::max(0.0, in.decision_to_stop_s);
  const double bytes = static_cast<double>(in.remaining_bytes) +
                       static_cast<double>(in.in_flight_bytes) + until_stop;
  return bytes / rate + in.switchover_fixed_s;
}

Decision decide(const PolicyInput& in, const PolicyConfig& cfg) {
  Decision d;
  d.estimated_downtime_s = estimate_downtime(in);
  // Pre-copy converges when data reaches the destination faster than it is dirtied.
  const double slowest = in.stopcopy_bps > 0 && in.bandwidth_bps > 0
                             ? std::min(in.stopcopy_bps, in.bandwidth_bps)
                             : std::max(in.stopcopy_bps, in.bandwidth_bps);
  if (slowest > 0) d.converging = in.dirty_rate_bps < slowest;
  if (in.iteration < cfg.min_iterations) {
    d.reason = "initial pass";
    return d;
  }
  // A target of 0 (or less) allows no downtime estimate at all: iterate to a cap.
  const bool converge = cfg.downtime_target_s > 0;
  const double half_step =
      std::min(std::max(0.0, in.estimate_step_s) / 2, 0.05 * cfg.downtime_target_s);
  if (converge && d.estimated_downtime_s >= 0 &&
      d.estimated_downtime_s <= cfg.downtime_target_s + half_step) {
    d.verdict = Verdict::kSwitchover;
    d.reason = in.within_pass ? "converged within a pass: estimated downtime at the target"
                              : "converged: estimated downtime within target";
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
    return std::min(in.dirty_rate_bps * scale, slowest);
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
