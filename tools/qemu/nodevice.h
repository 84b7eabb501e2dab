// The harness's VM without a device: the same QEMU command line (VmSpec, QemuConfig with
// no mdev instance, so no vfio-pci), the same RAM fill and the same migration runner as a
// Harness round, for what a migration costs with nothing but RAM to move (`mdevmig
// qemu-migrate --no-device`, BENCHMARKS.md "What a 64 MiB device adds").
#pragma once

#include <cstdint>

#include "base/result.h"
#include "tools/qemu/harness.h"
#include "tools/qemu/migration.h"
#include "tools/qemu/vm.h"

namespace mdevmig::qemu {

struct NoDeviceOptions {
  VmSpec vm;  ///< vm.dir empty: a fresh directory under /tmp, removed at the end
  /// MiB of guest RAM filled with a non-zero byte at boot, from 8 MiB up (the range
  /// HarnessOptions::guest_fill_mb fills).
  uint32_t guest_fill_mb = 0;
  uint32_t sample_pages = 16;  ///< filled pages compared on the destination
  bool keep_dir = false;
  LogFn log;
};

/// Boots the VM, fills its RAM, migrates it live by `plan` (a unix socket through the
/// counting relay, no fault) into a second QEMU started with "-incoming defer", and
/// checks what applies without a device: the destination runs, the source is left in
/// postmigrate, and the filled RAM arrived (sample_pages pages spread over the fill,
/// the first and the last among them, hold the fill byte on the destination). Both
/// QEMUs are quit at the end. `options.vm.dir` is set to the directory used.
[[nodiscard]] Result<RoundReport> migrate_without_device(NoDeviceOptions& options,
                                                         const MigrationPlan& plan);

}  // namespace mdevmig::qemu
