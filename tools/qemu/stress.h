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

namespace mdevmig::qemu {

struct StressOptions {
  uint32_t rounds = 20;
  double fault_rate = 0.5;  ///< fraction of rounds that get a fault
  /// Faults to draw from, round robin in a shuffled order (so each one is exercised).
  std::vector<FaultKind> faults = {FaultKind::kCancel, FaultKind::kKillDst, FaultKind::kKillSrc,
                                   FaultKind::kCorrupt, FaultKind::kTruncate};
  double file_rate = 0.25;  ///< fraction of rounds saved to a file and restored
  uint64_t seed = 1;
  uint32_t checkpoint_every = 5;  ///< refresh the recovery checkpoint every N rounds
  uint64_t max_bandwidth = 32ull << 20;
  uint32_t downtime_limit_ms = 300;
  uint32_t max_min_passes = 3;                          ///< switchover after 0..N passes
  std::chrono::milliseconds max_switchover_delay{400};  ///< and 0..this much later
};

/// min / median / p90 / max / mean of a sample.
struct Distribution {
  std::size_t count = 0;
  double min = 0, p50 = 0, p90 = 0, max = 0, mean = 0;
  [[nodiscard]] static Distribution of(std::vector<double> v);
  [[nodiscard]] nlohmann::json to_json() const;
};

struct StressReport {
  std::vector<RoundReport> rounds;
  uint64_t faults_injected = 0;       ///< rounds whose fault actually fired
  uint64_t recoveries_verified = 0;   ///< faulted rounds after which a verified VM ran again
  uint64_t unverified = 0;            ///< rounds without a verified survivor, or with problems
  std::string aborted;                ///< why the run stopped early, if it did
  double seconds = 0;

  [[nodiscard]] Distribution downtime_ms() const;
  [[nodiscard]] Distribution total_ms() const;
  [[nodiscard]] nlohmann::json to_json(const StressOptions& options) const;
  /// A few lines and a table for humans.
  [[nodiscard]] std::string summary() const;
};

/// Runs the rounds on a harness whose VM is booted and verified.
[[nodiscard]] StressReport run_stress(Harness& harness, const StressOptions& options, const LogFn& log = {});

}  // namespace mdevmig::qemu
