// `mdevmig stress --mode local`: a "VM" (a forked process that owns an mdev instance,
// its container, DMA-mapped guest memory and a live workload) migrated back and forth
// between two instances by the project's own engine (engine::run_source /
// run_destination, what `mdevmig migrate` runs), through a relay in the stress process
// that can corrupt or cut the stream, with random switchover moments and faults from
// tools/stress's table: cancel, killed destination, killed source, corrupt, truncate.
// Source and destination are separate processes, so a killed one loses its device
// state as a VMM would.
//
// The workload drives the device with tools/guest's ring driver and replays every
// access into guest::Replay (vendor/ in the simulator): the expected state. After
// every round the survivor is drained and compared with it exactly (all of device
// memory, the registers, the ring, completions and DMA results in guest memory). A
// killed source leaves nothing: the VM is restored from the last checkpoint (a save
// file and the expected state at that moment) and verified against that. The report
// has tools/stress's schema, with "mode": "local".
//
// Files: stress_local.cc (the run), stress_local_round.cc (one round),
// stress_local_vm*.cc (the VM process), stress_local_workload.cc,
// stress_local_model.cc (the expected state and how it moves between processes),
// stress_local_relay.cc, stress_local_control.cc (the control channel).
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "migration/engine/channel.h"
#include "tools/mdev/mdev.h"
#include "tools/stress/faults.h"
#include "tools/stress/planner.h"
#include "tools/stress/report.h"

namespace mdevmig::cli {

struct LocalStressOptions {
  uint32_t rounds = 20;
  double fault_rate = 0.5;
  std::vector<stress::FaultKind> faults = stress::default_faults();
  uint64_t seed = 1;
  uint32_t checkpoint_every = 5;
  uint32_t max_iterations = 4;  ///< each round switches over after at most 1..N iterations
  uint32_t downtime_ms = 300;   ///< each round's downtime target: 0..this (0: to the cap)
  double bar2_writes_per_s = 400;
  double descs_per_s = 25;
  engine::ChannelPreference channel = engine::ChannelPreference::kAuto;
  std::chrono::seconds timeout{300};  ///< any single wait of a round
  stress::LogFn log;
};

/// One round as drawn from the seed.
struct LocalRoundPlan {
  stress::FaultKind fault = stress::FaultKind::kNone;
  double fault_point = 0.5;     ///< fraction of the first pass's bytes at which it fires
  uint32_t max_iterations = 1;  ///< switchover cap
  uint32_t downtime_ms = 0;     ///< switchover target (0: iterate to the cap)
};

/// The planner of a run with options `o`.
[[nodiscard]] stress::RoundPlanner local_planner(const LocalStressOptions& o);
/// The next round's plan from `planner`: switchover cap and target, fault point, fault.
[[nodiscard]] LocalRoundPlan plan_local_round(stress::RoundPlanner& planner,
                                              const LocalStressOptions& o);

/// Runs the rounds between two instances of one type (instances[0] holds the VM first).
[[nodiscard]] stress::StressReport run_local_stress(std::vector<mdev::MdevInstance> instances,
                                                    const LocalStressOptions& options);

/// The report in tools/stress's schema, with "mode": "local" and local mode's options.
[[nodiscard]] nlohmann::json local_report_json(const stress::StressReport& report,
                                               const LocalStressOptions& options);

}  // namespace mdevmig::cli
