// One QEMU migration, driven and watched through QMP: parameters, the transport (a
// unix socket or TCP through MigrationProxy, or a file through "exec:"), pre-copy followed
// with query-migrate, the switchover moment chosen by the harness, fault injection,
// and the figures of the run.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "tools/qemu/endpoint.h"
#include "tools/mdev/mdev.h"
#include "tools/qemu/vm.h"

namespace mdevmig::qemu {

/// How the stream travels. kUnix and kTcp are live migrations through the harness's
/// relay (MigrationProxy); kTcp is QEMU's "tcp:" on both sides, for QEMUs on two hosts.
enum class Transport { kUnix, kTcp, kFile };
[[nodiscard]] const char* transport_name(Transport t);
[[nodiscard]] bool is_live(Transport t);

/// Faults the harness can inject into a migration.
enum class FaultKind {
  kNone,
  kCancel,    ///< migrate_cancel during pre-copy
  kKillDst,   ///< SIGKILL the destination QEMU during pre-copy
  kKillSrc,   ///< SIGKILL the source QEMU during pre-copy (nothing survives)
  kCorrupt,   ///< flip a byte of VFIO device data in flight (or in the saved file)
  kTruncate,  ///< cut the stream in flight (or truncate the saved file)
};
[[nodiscard]] const char* fault_name(FaultKind f);
[[nodiscard]] Result<FaultKind> parse_fault(std::string_view text);

struct MigrationPlan {
  Transport transport = Transport::kUnix;
  std::string file;                      ///< kFile: where the stream goes
  /// kTcp: where the relay listens on the harness's host (the source QEMU migrates to
  /// "tcp:" this), and where the destination QEMU listens (its migrate-incoming).
  std::optional<Endpoint> tcp_relay, tcp_incoming;
  uint64_t max_bandwidth = 32ull << 20;  ///< bytes/s
  /// downtime-limit while the harness wants pre-copy to go on: so small that QEMU
  /// keeps iterating as long as anything is dirtied.
  uint32_t precopy_downtime_ms = 1;
  /// downtime-limit from the switchover moment on.
  uint32_t downtime_limit_ms = 500;
  /// The switchover moment: after the first full pass of device memory, this many
  /// more QEMU dirty syncs and at least `switchover_delay`.
  uint32_t min_passes = 2;
  std::chrono::milliseconds switchover_delay{0};
  bool return_path = true;  ///< live: the destination confirms it loaded the state
  /// Live, QEMU >= 8.1 (v2): the switchover-ack capability on both sides (needs the return
  /// path): the source switches over only once the destination has loaded the device's
  /// initial data (PRE_COPY's initial_bytes).
  bool switchover_ack = false;
  /// Live, QEMU >= 10.0: the multifd capability and this many multifd-channels on both
  /// sides (0: off). RAM then goes over those channels, and so does the device's
  /// stop-copy data (vfio-pci's x-migration-multifd-transfer, "auto" by default, turns
  /// on with multifd); its pre-copy data stays on the main channel. Refused on older
  /// QEMUs (7.2 speaks VFIO migration v1, which has no multifd device state).
  uint32_t multifd_channels = 0;
  FaultKind fault = FaultKind::kNone;
  /// kCancel/kKill*: fire once this fraction of device memory has been sent;
  /// kCorrupt/kTruncate: the stream offset, as the same fraction.
  double fault_point = 0.5;
  std::chrono::milliseconds poll_interval{40};
  std::chrono::milliseconds timeout{300'000};
};

/// One pre-copy pass as seen from outside: a dirty sync of QEMU's RAM (which happens
/// once per iteration while device data is pending) and what went over the wire.
struct PassRow {
  uint32_t pass = 0;
  uint64_t syncs = 0;            ///< dirty-sync-count at the end of the row
  double t_ms = 0;               ///< since migrate
  uint64_t ram_pages = 0;        ///< RAM pages sent in this pass (normal + zero)
  uint64_t ram_bytes = 0;        ///< RAM bytes sent in this pass (with multifd, a row spanning the
                                 ///< stop may count the device's multifd packets as RAM)
  uint64_t wire_bytes = 0;       ///< all bytes sent in this pass
  uint64_t device_bytes = 0;     ///< wire - RAM: the device's data (and a few bytes of headers)
  uint64_t device_pages = 0;     ///< device_bytes in 4 KiB pages (records cost ~0.02% more)
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
  double wall_ms = 0;  ///< measured by the harness, migrate to end
  uint32_t downtime_limit_ms = 0;  ///< the plan's downtime-limit from the switchover on
  /// ram_transferred: RAM bytes only (ram_sent: QEMU >= 8 counts the whole stream as "transferred").
  uint64_t ram_total = 0, ram_transferred = 0, ram_precopy_bytes = 0, ram_downtime_bytes = 0;
  uint64_t ram_dirty_syncs = 0, ram_normal_pages = 0, ram_zero_pages = 0;
  uint64_t wire_bytes = 0, wire_precopy_bytes = 0, wire_downtime_bytes = 0;
  uint32_t multifd_channels = 0;        ///< the plan's
  uint32_t wire_connections = 0;        ///< kUnix: connections the source opened (1 + multifd)
  uint64_t wire_main_bytes = 0;         ///< kUnix: bytes on the main channel
  uint64_t device_bytes = 0;            ///< from the source instance (mdevmig/migration bytes_sent)
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

using LogFn = std::function<void(const std::string&)>;

/// Migrates `src` to `dst` (live; `dst` started with "-incoming defer") or to
/// plan.file (kFile; `dst` null). `src_instance` is the source's mdev, for the
/// device's own counters (null when the source runs on another host: no counters);
/// `device_mem` its memory size.
///
/// The switchover is the harness's: downtime-limit stays at plan.precopy_downtime_ms
/// (QEMU keeps iterating) until the moment the plan chooses; hooks.before_switchover
/// runs just before the limit is raised. The source also runs with
/// pause-before-switchover: when QEMU has stopped the VM and waits in "pre-switchover",
/// hooks.quiesce runs before migrate-continue. A real vCPU is paused by then; qtest
/// accesses are not, and QEMU 7.2 releases the BQL between its final RAM dirty sync
/// and the VFIO device's final state, so an access made in that window would reach the
/// device state but not the RAM: quiesce must stop the harness's qtest "vCPU".
/// What the harness does at the two moments of a switchover.
struct SwitchoverHooks {
  /// Before downtime-limit is raised (from then on QEMU may stop the VM).
  std::function<void()> before_switchover;
  /// In "pre-switchover": the VM is stopped; stop the qtest vCPU.
  std::function<void()> quiesce;
};

[[nodiscard]] Result<MigrationOutcome> run_migration(Vm& src, Vm* dst, const mdev::MdevInstance* src_instance,
                                                     uint64_t device_mem, const MigrationPlan& plan,
                                                     const std::string& dir, const SwitchoverHooks& hooks,
                                                     const LogFn& log = {});

/// Loads a saved stream into `dst` (started with "-incoming defer") and waits for the
/// end: "completed" or "failed".
[[nodiscard]] Result<std::string> run_incoming_file(Vm& dst, const std::string& file,
                                                    std::chrono::milliseconds timeout = std::chrono::seconds(120));

}  // namespace mdevmig::qemu
