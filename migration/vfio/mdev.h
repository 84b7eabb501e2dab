// Opening an mdev instance by UUID: sysfs → IOMMU group → container + group + device.
#pragma once

#include <string>
#include <string_view>

#include "base/result.h"
#include "migration/vfio/container.h"
#include "migration/vfio/device.h"
#include "migration/vfio/group.h"

namespace mdevmig::vfio {

/// Where open_mdev() looks; tests point these at temporary directories.
struct VfioPaths {
  std::string sysfs = "/sys";
  std::string dev_vfio = "/dev/vfio";
};

/// An open mdev: the device with the group and container it needs. The members are
/// destroyed in reverse order (device, then group, then container), which is the order
/// VFIO requires for teardown.
struct OpenMdev {
  Container container;
  Group group;
  Device device;
};

/// Fails with EINVAL unless `uuid` is a canonical 8-4-4-4-12 hex UUID (so it can never
/// name another path under sysfs).
[[nodiscard]] Result<void> validate_mdev_uuid(std::string_view uuid);

/// The group number at the end of an iommu_group link target ("../../kernel/iommu_groups/12").
[[nodiscard]] Result<int> parse_iommu_group_link(std::string_view link_target);

/// Reads <sysfs>/bus/mdev/devices/<uuid>/iommu_group and returns its group number.
[[nodiscard]] Result<int> mdev_iommu_group(std::string_view uuid, const VfioPaths& paths = {});

/// Opens the container (checking API version and Type1v2), the mdev's group (checking it
/// is viable), attaches it, selects the Type1v2 IOMMU and opens the device.
[[nodiscard]] Result<OpenMdev> open_mdev(std::string_view uuid, const VfioPaths& paths = {});

}  // namespace mdevmig::vfio
