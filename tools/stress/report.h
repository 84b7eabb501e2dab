// The report of a stress run, in one schema for both drivers (QEMU and the local
// engine): each round's migration outcome, survivor and verification, and the run's
// totals and distributions, as JSON and as a table for humans.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tools/stress/faults.h"

namespace mdevmig::stress {

using LogFn = std::function<void(const std::string&)>;

/// How the stream travels. kUnix and kTcp are live migrations through the harness's
/// relay (MigrationProxy); kTcp is QEMU's "tcp:" on both sides, for QEMUs on two hosts.
enum class Transport { kUnix, kTcp, kFile };
[[nodiscard]] const char* transport_name(Transport t);
[[nodiscard]] bool is_live(Transport t);

/// One pre-copy pass as seen from outside: a dirty sync of QEMU's RAM (which happens
/// once per iteration while device data is pending) and what went over the wire.
struct PassRow {
  uint32_t pass = 0;
  uint64_t syncs = 0;         ///< dirty-sync-count at the end of the row
  double t_ms = 0;            ///< since migrate
  uint64_t ram_pages = 0;     ///< RAM pages sent in this pass (normal + zero)
  uint64_t ram_bytes = 0;     ///< RAM bytes sent in this pass (with multifd, a row spanning the
                              ///< stop may count the device's multifd packets as RAM)
  uint64_t wire_bytes = 0;    ///< all bytes sent in this pass
  uint64_t device_bytes = 0;  ///< wire - RAM: the device's data (and a few bytes of headers)
  uint64_t device_pages = 0;  ///< device_bytes in 4 KiB pages (records cost ~0.02% more)
  uint64_t device_dirty_pages = 0;  ///< pages the device's dirty tracker held at the sample
  /// QEMU's expected-downtime at the sample (what is dirty / its bandwidth; -1: QEMU
  /// gave none, as it does outside the active state).
  double expected_downtime_ms = -1;
};

struct MigrationOutcome {
  std::string status;  ///< completed, failed, cancelled, source-killed
  std::string error;   ///< QEMU's error-desc
  FaultKind fault = FaultKind::kNone;
  bool fault_fired = false;
  std::string fault_note;
  bool switched_over = false;  ///< the harness raised downtime-limit
  /// From seeing QEMU's "pre-switchover" pause (VM stopped) to sending
  /// migrate-continue: the harness stopping its qtest "vCPU". Part of QEMU's downtime.
  double harness_pause_ms = 0;
  double total_ms = 0, downtime_ms = 0, setup_ms = 0;
  uint32_t downtime_limit_ms = 0;  ///< the plan's downtime-limit from the switchover on
  double wall_ms = 0;              ///< measured by the harness, migrate to end
  /// ram_transferred: RAM bytes only (ram_sent: QEMU >= 8 counts the whole stream as
  /// "transferred").
  uint64_t ram_total = 0, ram_transferred = 0, ram_precopy_bytes = 0, ram_downtime_bytes = 0;
  uint64_t ram_dirty_syncs = 0, ram_normal_pages = 0, ram_zero_pages = 0;
  uint64_t wire_bytes = 0, wire_precopy_bytes = 0, wire_downtime_bytes = 0;
  uint32_t multifd_channels = 0;  ///< the plan's
  uint32_t wire_connections = 0;  ///< kUnix: connections the source opened (1 + multifd)
  uint64_t wire_main_bytes = 0;   ///< kUnix: bytes on the main channel
  uint64_t device_bytes = 0;      ///< from the source instance (mdevmig/migration bytes_sent)
  /// kUnix: device_bytes split at the source's STOP: the device data the main channel
  /// carried before it (pre-copy), and the rest (stop-copy, on whichever channel). The
  /// proxy sees the bytes a moment after QEMU writes them, and QEMU's main-channel
  /// buffer (32 KiB) may hold some pre-copy bytes until the stop: a few KiB may land on
  /// the wrong side. (The device's own counter only moves when its data_fd closes.)
  uint64_t device_precopy_bytes = 0, device_downtime_bytes = 0;
  /// kUnix: device-data payload seen on the main channel; device_bytes minus this went
  /// over multifd channels.
  uint64_t device_main_bytes = 0;
  uint64_t device_iterations = 0;       ///< its precopy_iterations
  uint64_t device_dirty_last_pass = 0;  ///< its dirty_pages_last_pass
  std::vector<PassRow> passes;
  nlohmann::json final_query;
  [[nodiscard]] nlohmann::json to_json() const;
};

/// Counts of what a workload did.
struct WorkloadStats {
  uint64_t bar2_writes = 0, descs = 0, scratch = 0, irqs = 0, isr_runs = 0;
  double seconds = 0;
};

/// A verification's findings. `ok()` when nothing differed.
struct Verification {
  std::vector<std::string> mismatches;
  uint64_t mem_hash = 0;       ///< XXH64 of device memory, as the device computed it
  uint64_t pages_sampled = 0;  ///< BAR2 pages compared byte for byte through qtest
  uint64_t descs = 0;          ///< SEQ
  bool irq_delivered = false;  ///< the probe descriptor's interrupt arrived
  [[nodiscard]] bool ok() const { return mismatches.empty(); }
  [[nodiscard]] std::string summary() const;
};

/// One migration round and what the driver found after it.
struct RoundReport {
  uint32_t round = 0;
  Transport transport = Transport::kUnix;
  FaultKind fault = FaultKind::kNone;
  MigrationOutcome migration;
  Survivor survivor = Survivor::kNone;
  std::string src_end, dst_end;  ///< how the VMs ended ("running" if still alive)
  uint64_t ops_pending = 0;      ///< ops issued on the source since the last verification
  uint64_t ops_landed = 0;       ///< of which the survivor holds (the cut)
  WorkloadStats workload;
  std::optional<Verification> verification;
  bool recovered = false;  ///< the VM was restored from the checkpoint afterwards
  std::optional<Verification> recovery_verification;
  std::vector<std::string> problems;  ///< anything unexpected: wrong survivor, lost ops, leaks
  double round_ms = 0;

  /// The survivor (or the recovered VM) was verified and nothing unexpected happened.
  [[nodiscard]] bool verified() const;
  [[nodiscard]] nlohmann::json to_json() const;
};

/// What is wrong with the survivor of a round whose fault fired, by the fault table
/// (survivor_acceptable; `blind`: the injector flips bytes without aiming); empty if
/// nothing is, or the fault did not fire.
[[nodiscard]] std::string survivor_problem(const RoundReport& r, bool blind);

/// min / median / p90 / max / mean of a sample.
struct Distribution {
  std::size_t count = 0;
  double min = 0, p50 = 0, p90 = 0, max = 0, mean = 0;
  [[nodiscard]] static Distribution of(std::vector<double> v);
  [[nodiscard]] nlohmann::json to_json() const;
};

struct StressReport {
  std::vector<RoundReport> rounds;
  uint64_t faults_injected = 0;      ///< rounds whose fault actually fired
  uint64_t recoveries_verified = 0;  ///< faulted rounds after which a verified VM ran again
  uint64_t unverified = 0;           ///< rounds without a verified survivor, or with problems
  std::string aborted;               ///< why the run stopped early, if it did
  double seconds = 0;

  [[nodiscard]] Distribution downtime_ms() const;
  [[nodiscard]] Distribution total_ms() const;
  /// The report of a run in `mode` ("qemu", "local") with the driver's `options`.
  [[nodiscard]] nlohmann::json to_json(const std::string& mode, nlohmann::json options) const;
  /// Counts a finished round in (faults injected, recoveries verified, unverified)
  /// and keeps it.
  void add(RoundReport round);
  /// A few lines and a table for humans.
  [[nodiscard]] std::string summary() const;
};

}  // namespace mdevmig::stress
