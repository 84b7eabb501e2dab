// Group: a VFIO IOMMU group (/dev/vfio/N), the unit of ownership that joins a container
// and hands out device fds.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/fd.h"
#include "base/result.h"

namespace mdevmig::vfio {

class Container;

/// A VFIO group. Attach it to a container before asking for devices.
class Group {
 public:
  /// Opens `<dev_dir>/<number>`.
  [[nodiscard]] static Result<Group> open(int number, const std::string& dev_dir = "/dev/vfio");

  [[nodiscard]] int fd() const noexcept { return fd_.get(); }
  [[nodiscard]] int number() const noexcept { return number_; }
  [[nodiscard]] const std::string& path() const noexcept { return path_; }

  /// VFIO_GROUP_GET_STATUS flags (VFIO_GROUP_FLAGS_VIABLE, ..._CONTAINER_SET).
  [[nodiscard]] Result<uint32_t> status() const;
  /// Fails with EPERM unless every device of the group is bound to a VFIO driver (the
  /// kernel's "viable" flag); checked before SET_CONTAINER to give a clear error.
  [[nodiscard]] Result<void> check_viable() const;
  /// VFIO_GROUP_SET_CONTAINER. The container must outlive the group's use of it.
  [[nodiscard]] Result<void> set_container(const Container& container) const;
  /// VFIO_GROUP_UNSET_CONTAINER.
  [[nodiscard]] Result<void> unset_container() const;
  /// VFIO_GROUP_GET_DEVICE_FD: `name` is the mdev UUID (or a PCI address for vfio-pci).
  [[nodiscard]] Result<UniqueFd> device_fd(std::string_view name) const;

 private:
  Group(UniqueFd fd, int number, std::string path)
      : fd_(std::move(fd)), number_(number), path_(std::move(path)) {}

  UniqueFd fd_;
  int number_ = -1;
  std::string path_;
};

}  // namespace mdevmig::vfio
