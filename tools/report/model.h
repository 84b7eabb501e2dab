// What a migration report draws, independent of who measured it: the engine's
// MigrationReport, QEMU's query-migrate rows, a stress run's rounds (convert.h makes
// these from them). Every figure is optional where a source may not have it; nothing
// here is computed by the renderer beyond scales and sums for display.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace mdevmig::report {

/// One pre-copy pass.
struct Pass {
  uint32_t number = 0;
  double seconds = 0;                    ///< how long the pass took
  uint64_t device_bytes = 0;             ///< device state sent in the pass
  uint64_t other_bytes = 0;              ///< guest memory (engine) or RAM (QEMU) sent in the pass
  std::optional<uint64_t> dirty_pages;   ///< see Migration::dirty_note
  std::optional<double> est_downtime_s;  ///< the downtime estimate after the pass
};

/// One phase of the table: time and bytes (either may be unknown).
struct Phase {
  std::string name;
  std::optional<double> seconds;
  std::optional<uint64_t> bytes;
};

struct Migration {
  std::string title;
  std::string status;  ///< "completed", "cancelled", "failed", ...
  bool completed = false;
  std::string other_label = "guest memory";  ///< what Pass::other_bytes is
  std::string dirty_note;                    ///< what Pass::dirty_pages counts
  std::string estimate_note;                 ///< whose estimate Pass::est_downtime_s is
  std::vector<Pass> passes;
  std::optional<double> target_s;    ///< the downtime target; none: iterate to a cap
  std::optional<double> downtime_s;  ///< measured; none: the migration did not complete
  std::optional<double> total_s;     ///< the whole migration, as its source measured it
  std::vector<Phase> phases;
  /// Other figures worth a line: channel, switchover reason, error, devices.
  std::vector<std::pair<std::string, std::string>> facts;
};

/// One stress round and what was found after it.
struct Round {
  uint32_t number = 0;
  std::string fault = "none";
  bool fault_fired = false;
  std::string survivor;    ///< who holds the VM: destination, source, none
  std::string status;      ///< the migration's: completed, cancelled, failed, ...
  bool passed = false;     ///< verified, nothing unexpected
  bool recovered = false;  ///< the VM was restored from the checkpoint
  double seconds = 0;      ///< the whole round
  std::vector<std::string> problems;
  std::optional<Migration> migration;  ///< when any figure was recorded
};

struct Stress {
  std::string title;
  /// Every fault kind a round can name, "none" first, in the fault table's order
  /// (tools/stress/faults.h): the legend lists them and each gets its colour by place.
  std::vector<std::string> fault_kinds;
  std::vector<Round> rounds;
  std::string aborted;  ///< why the run stopped early, if it did
  std::vector<std::pair<std::string, std::string>> facts;
};

}  // namespace mdevmig::report
