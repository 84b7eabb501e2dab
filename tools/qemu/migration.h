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
#include "tools/mdev/mdev.h"
#include "tools/qemu/vm.h"
#include "tools/qtest/endpoint.h"
#include "tools/stress/report.h"

namespace mdevmig::qemu {

// The harness reports in tools/stress's terms: the fault table, transports, outcomes.
using stress::fault_name;
using stress::FaultKind;
using stress::is_live;
using stress::LogFn;
using stress::MigrationOutcome;
using stress::parse_fault;
using stress::PassRow;
using stress::Transport;
using stress::transport_name;

struct MigrationPlan {
  Transport transport = Transport::kUnix;
  std::string file;  ///< kFile: where the stream goes
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

[[nodiscard]] Result<MigrationOutcome> run_migration(Vm& src, Vm* dst,
                                                     const mdev::MdevInstance* src_instance,
                                                     uint64_t device_mem, const MigrationPlan& plan,
                                                     const std::string& dir,
                                                     const SwitchoverHooks& hooks,
                                                     const LogFn& log = {});

/// Loads a saved stream into `dst` (started with "-incoming defer") and waits for the
/// end: "completed" or "failed".
[[nodiscard]] Result<std::string> run_incoming_file(
    Vm& dst, const std::string& file,
    std::chrono::milliseconds timeout = std::chrono::seconds(120));

}  // namespace mdevmig::qemu
