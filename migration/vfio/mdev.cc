#include "migration/vfio/mdev.h"

#include <unistd.h>

#include <cctype>
#include <charconv>
#include <climits>

namespace mdevmig::vfio {

Result<void> validate_mdev_uuid(std::string_view uuid) {
  static constexpr std::string_view kShape = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
  bool good = uuid.size() == kShape.size();
  for (std::size_t i = 0; good && i < uuid.size(); ++i) {
    const auto c = static_cast<unsigned char>(uuid[i]);
    good = kShape[i] == '-' ? c == '-' : std::isxdigit(c) != 0;
  }
  if (!good) return Error::make(EINVAL, "parse mdev UUID", "\"" + std::string(uuid) + "\"");
  return ok();
}

Result<int> parse_iommu_group_link(std::string_view link_target) {
  const std::size_t slash = link_target.rfind('/');
  const std::string_view tail =
      slash == std::string_view::npos ? link_target : link_target.substr(slash + 1);
  int number = -1;
  const auto [end, ec] = std::from_chars(tail.data(), tail.data() + tail.size(), number);
  if (tail.empty() || ec != std::errc() || end != tail.data() + tail.size() || number < 0 ||
      !std::isdigit(static_cast<unsigned char>(tail.front()))) {
    return Error::make(EINVAL, "parse iommu_group link", "\"" + std::string(link_target) + "\"");
  }
  return number;
}

Result<int> mdev_iommu_group(std::string_view uuid, const VfioPaths& paths) {
  MDEVMIG_TRY(validate_mdev_uuid(uuid));
  const std::string link = paths.sysfs + "/bus/mdev/devices/" + std::string(uuid) + "/iommu_group";
  char target[PATH_MAX];
  const ssize_t n = ::readlink(link.c_str(), target, sizeof(target) - 1);
  if (n < 0) return Error::from_errno("readlink", link);
  return parse_iommu_group_link(std::string_view(target, static_cast<std::size_t>(n)));
}

Result<OpenMdev> open_mdev(std::string_view uuid, const VfioPaths& paths) {
  const int number = MDEVMIG_TRY(mdev_iommu_group(uuid, paths));
  Container container = MDEVMIG_TRY(Container::open(paths.dev_vfio + "/vfio"));
  Group group = MDEVMIG_TRY(Group::open(number, paths.dev_vfio));
  MDEVMIG_TRY(group.check_viable());
  MDEVMIG_TRY(group.set_container(container));
  MDEVMIG_TRY(container.set_iommu(VFIO_TYPE1v2_IOMMU));
  UniqueFd dfd = MDEVMIG_TRY(group.device_fd(uuid));
  Device device = MDEVMIG_TRY(Device::open(std::move(dfd), std::string(uuid)));
  return OpenMdev{std::move(container), std::move(group), std::move(device)};
}

}  // namespace mdevmig::vfio
