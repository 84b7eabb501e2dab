// A device's identity for save files and the wire hello, and the compatibility rule
// that decides whether a stream from one device may be loaded into another.
#pragma once

#include <string>
#include <string_view>

#include "base/result.h"
#include "migration/schema/codec.h"
#include "migration/vfio/device.h"

namespace mdevmig::engine {

/// Reads identity from the device (info, config space, mdevmig's ID registers; all
/// side-effect free) and from sysfs when `sysfs_path` is known.
[[nodiscard]] Result<schema::DeviceIdentity> read_identity(const vfio::Device& dev,
                                                           std::string_view uuid,
                                                           std::string_view sysfs_path);

/// Whether `id` is an mdevmig instance (it then carries a compat descriptor).
[[nodiscard]] bool is_mdevmig(const schema::DeviceIdentity& id);

/// OK if a stream saved from `src` may be loaded into `dst`; otherwise an Error with
/// kIncompatibleErrno naming the first difference. The UUID and sysfs path may differ
/// (restoring into another instance is the point); the device API, PCI IDs, region
/// layout and mdevmig's compat descriptor must match.
[[nodiscard]] Result<void> check_compatible(const schema::DeviceIdentity& src,
                                            const schema::DeviceIdentity& dst);

}  // namespace mdevmig::engine
