// Driving the v2 migration state machine of any VFIO device, with recovery as QEMU
// does it (hw/vfio/migration.c: vfio_migration_set_state): when a transition fails,
// go to a recover state (RUNNING for a source); when that fails too, or there is no
// recover state (a destination), reset the device (VFIO_DEVICE_RESET leaves RUNNING).
// Errors say where the device ended up.
#pragma once

#include <optional>
#include <string>

#include "base/fd.h"
#include "base/result.h"
#include "migration/vfio/device.h"
#include "migration/vfio/mig_state.h"

namespace mdevmig::engine {

/// Where a recovery left a device.
struct Recovery {
  bool recovered = false;             ///< reached the recover state (or RUNNING by reset)
  bool reset = false;                 ///< VFIO_DEVICE_RESET was needed
  std::optional<vfio::MigState> now;  ///< the state read back, if it could be
  /// "device recovered to RUNNING", "device reset, now RUNNING", "recovery failed, ...".
  [[nodiscard]] std::string text() const;
};

/// Requests v2 states of one device.
class StateDriver {
 public:
  explicit StateDriver(const vfio::Device& dev) : dev_(&dev) {}

  /// MIG_DEVICE_STATE SET `target`; returns the data_fd the arc opened (or an invalid
  /// fd). On failure recovers to `recover` (else resets) and appends the outcome to
  /// the error's context.
  [[nodiscard]] Result<UniqueFd> set(vfio::MigState target,
                                     std::optional<vfio::MigState> recover) const;
  /// Back to `recover` (if given and reachable), else reset.
  [[nodiscard]] Recovery recover_to(std::optional<vfio::MigState> recover) const;
  /// The state now, as a name ("STOP_COPY", or "unknown").
  [[nodiscard]] std::string state_name() const;

 private:
  const vfio::Device* dev_;
};

/// Appends a recovery outcome to an error: "...; device recovered to RUNNING".
[[nodiscard]] Error with_recovery(Error e, const Recovery& r);

}  // namespace mdevmig::engine
