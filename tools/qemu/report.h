// Human-readable reports of QEMU migrations: the pre-copy pass table and a round's
// outcome, for `mdevmig qemu-migrate`, `mdevmig stress` and the demo.
#pragma once

#include <string>

#include "tools/qemu/harness.h"
#include "tools/qemu/migration.h"

namespace mdevmig::qemu {

/// One row per pre-copy pass (QEMU dirty sync): RAM and device pages and bytes.
[[nodiscard]] std::string pass_table(const MigrationOutcome& m);
/// Status, times, bytes per phase and per kind, the device's own counters.
[[nodiscard]] std::string migration_summary(const MigrationOutcome& m);
/// "12.3 MiB".
[[nodiscard]] std::string format_bytes(double bytes);

}  // namespace mdevmig::qemu
