// `mdevmig stress` in QEMU mode: a VM with a live workload migrated back and forth
// between two instances, with random switchover moments and injected faults; after
// every round the surviving side is verified exactly and leaks are looked for.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "tools/qemu/harness.h"
#include "tools/stress/faults.h"
#include "tools/stress/report.h"

namespace mdevmig::qemu {

using stress::Distribution;
using stress::StressReport;

struct StressOptions {
  uint32_t rounds = 20;
  double fault_rate = 0.5;  ///< fraction of rounds that get a fault
  /// Faults to draw from, round robin in a shuffled order (so each one is exercised).
  std::vector<FaultKind> faults = stress::default_faults();
  double file_rate = 0.25;  ///< fraction of rounds saved to a file and restored
  uint64_t seed = 1;
  uint32_t checkpoint_every = 5;  ///< refresh the recovery checkpoint every N rounds
  uint64_t max_bandwidth = 32ull << 20;
  uint32_t downtime_limit_ms = 300;
  uint32_t max_min_passes = 3;                          ///< switchover after 0..N passes
  std::chrono::milliseconds max_switchover_delay{400};  ///< and 0..this much later
};

/// The report in tools/stress's schema, with "mode": "qemu" and these options.
[[nodiscard]] nlohmann::json report_json(const StressReport& report, const StressOptions& options);

/// Runs the rounds on a harness whose VM is booted and verified.
[[nodiscard]] StressReport run_stress(Harness& harness, const StressOptions& options,
                                      const LogFn& log = {});

}  // namespace mdevmig::qemu
