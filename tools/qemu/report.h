// Human-readable reports of QEMU migrations: the pre-copy pass table and a round's
// outcome, for `mdevmig qemu-migrate`, `mdevmig stress` and the demo.
#pragma once

#include <string>

#include "tools/qemu/harness.h"
#include "tools/qemu/migration.h"

namespace mdevmig::qemu {

/// One row per QEMU iteration (dirty sync): RAM and device pages and bytes.
[[nodiscard]] std::string pass_table(const MigrationOutcome& m);
/// One row per pre-copy pass of the device: the initial copy of all device memory,
/// each dirty pass (the pages its dirty tracker collected during the pass before;
/// a pass ends where the tracker count drops, i.e. the device harvested it), and the
/// stop-copy phase after the VM stopped. RAM sent in the same periods beside it.
[[nodiscard]] std::string device_pass_table(const MigrationOutcome& m, uint64_t device_mem);
/// Status, times, bytes per phase and per kind, the device's own counters (`device`
/// false: a VM without one, no device line).
[[nodiscard]] std::string migration_summary(const MigrationOutcome& m, bool device = true);
/// "12.3 MiB".
[[nodiscard]] std::string format_bytes(double bytes);

}  // namespace mdevmig::qemu
