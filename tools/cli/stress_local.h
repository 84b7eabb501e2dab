// `mdevmig stress --mode local`: a "VM" (a forked process that owns an mdev instance,
// its container, DMA-mapped guest memory and a live workload) migrated back and forth
// between two instances by the project's own engine (engine::run_source /
// run_destination, what `mdevmig migrate` runs), through a relay in the stress process
// that can corrupt or cut the stream, with random switchover moments and faults:
// cancel, killed destination, killed source, corrupt, truncate. Source and destination
// are separate processes, so a killed one loses its device state as a VMM would.
//
// The expected state is a model the workload keeps while it writes (every BAR2 write,
// scratch register and DMA descriptor applied to a shadow in memory shared with the
// stress process); after every round the survivor is drained and compared with it
// exactly (all of device memory, the registers, the DMA results in guest memory). A
// killed source leaves nothing: the VM is restored from the last checkpoint (a save
// file and the model's copy at that moment) and verified against that. The report has
// the schema of QEMU mode (tools/qemu/stress.h), with "mode": "local".
#pragma once

#include <chrono>
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "migration/engine/channel.h"
#include "tools/mdev/mdev.h"
#include "tools/qemu/migration.h"
#include "tools/qemu/stress.h"

namespace mdevmig::cli {

struct LocalStressOptions {
  uint32_t rounds = 20;
  double fault_rate = 0.5;
  std::vector<qemu::FaultKind> faults = {qemu::FaultKind::kCancel, qemu::FaultKind::kKillDst,
                                         qemu::FaultKind::kKillSrc, qemu::FaultKind::kCorrupt,
                                         qemu::FaultKind::kTruncate};
  uint64_t seed = 1;
  uint32_t checkpoint_every = 5;
  uint32_t max_iterations = 4;  ///< each round switches over after at most 1..N iterations
  uint32_t downtime_ms = 300;   ///< each round's downtime target: 0..this (0: to the cap)
  double bar2_writes_per_s = 400;
  double descs_per_s = 25;
  engine::ChannelPreference channel = engine::ChannelPreference::kAuto;
  std::chrono::seconds timeout{300};  ///< any single wait of a round
  qemu::LogFn log;
};

/// One round as drawn from the seed.
struct LocalRoundPlan {
  qemu::FaultKind fault = qemu::FaultKind::kNone;
  double fault_point = 0.5;     ///< fraction of the first pass's bytes at which it fires
  uint32_t max_iterations = 1;  ///< switchover cap
  uint32_t downtime_ms = 0;     ///< switchover target (0: iterate to the cap)
};

/// Draws round plans like QEMU mode: faults round robin over a shuffled order, each
/// round faulted with probability fault_rate.
class RoundPlanner {
 public:
  explicit RoundPlanner(const LocalStressOptions& o);
  [[nodiscard]] LocalRoundPlan next();

 private:
  double uniform(double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng_); }
  LocalStressOptions o_;
  std::mt19937_64 rng_;
  std::vector<qemu::FaultKind> order_;
  std::size_t next_fault_ = 0;
};

/// What the relay does to the source→destination bytes: flip the byte at `offset`
/// (kCorrupt), cut the stream there (kTruncate), or report the moment the stream
/// passes it (the other faults, which the caller fires).
class StreamFault {
 public:
  StreamFault(qemu::FaultKind kind, uint64_t offset) : kind_(kind), offset_(offset) {}
  struct Step {
    std::size_t forward = 0;  ///< leading bytes of the data to pass on
    bool cut = false;         ///< then end the stream
    bool fire = false;        ///< the caller's fault is due now
  };
  /// The next bytes of the stream (modified in place for kCorrupt).
  [[nodiscard]] Step apply(std::span<std::byte> data);
  [[nodiscard]] bool fired() const { return fired_; }
  [[nodiscard]] uint64_t position() const { return pos_; }

 private:
  qemu::FaultKind kind_;
  uint64_t offset_;
  uint64_t pos_ = 0;
  bool fired_ = false;
};

/// Runs the rounds between two instances of one type (instances[0] holds the VM first).
[[nodiscard]] qemu::StressReport run_local_stress(std::vector<mdev::MdevInstance> instances,
                                                  const LocalStressOptions& options);

/// The report in QEMU mode's schema, with "mode": "local" and local mode's options.
[[nodiscard]] nlohmann::json local_report_json(const qemu::StressReport& report, const LocalStressOptions& options);

}  // namespace mdevmig::cli
