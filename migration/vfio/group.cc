#include "migration/vfio/group.h"

#include <fcntl.h>

#include "migration/vfio/container.h"
#include "migration/vfio/sys.h"
#include "migration/vfio/uapi.h"

namespace mdevmig::vfio {

Result<Group> Group::open(int number, const std::string& dev_dir) {
  if (number < 0) return Error::make(EINVAL, "open VFIO group", "group " + std::to_string(number));
  std::string path = dev_dir + "/" + std::to_string(number);
  const int raw = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (raw < 0) return Error::from_errno("open", path);
  return Group(UniqueFd(raw), number, std::move(path));
}

Result<uint32_t> Group::status() const {
  vfio_group_status st{};
  st.argsz = sizeof(st);
  MDEVMIG_TRY(checked_ioctl(fd(), VFIO_GROUP_GET_STATUS, &st, "VFIO_GROUP_GET_STATUS", path_));
  return uint32_t{st.flags};
}

Result<void> Group::check_viable() const {
  const uint32_t flags = MDEVMIG_TRY(status());
  if ((flags & VFIO_GROUP_FLAGS_VIABLE) == 0) {
    return Error::make(EPERM, "VFIO_GROUP_GET_STATUS",
                       path_ + ": group not viable (a device in it is not bound to a VFIO driver)");
  }
  return ok();
}

Result<void> Group::set_container(const Container& container) const {
  int cfd = container.fd();
  MDEVMIG_TRY(checked_ioctl(fd(), VFIO_GROUP_SET_CONTAINER, &cfd, "VFIO_GROUP_SET_CONTAINER",
                            path_ + " -> " + container.path()));
  return ok();
}

Result<void> Group::unset_container() const {
  MDEVMIG_TRY(checked_ioctl(fd(), VFIO_GROUP_UNSET_CONTAINER, nullptr, "VFIO_GROUP_UNSET_CONTAINER",
                            path_));
  return ok();
}

Result<UniqueFd> Group::device_fd(std::string_view name) const {
  const std::string n(name);
  if (n.empty() || n.find('\0') != std::string::npos) {
    return Error::make(EINVAL, "VFIO_GROUP_GET_DEVICE_FD", path_ + ": bad device name");
  }
  const int dfd =
      MDEVMIG_TRY(checked_ioctl(fd(), VFIO_GROUP_GET_DEVICE_FD, const_cast<char*>(n.c_str()),
                                "VFIO_GROUP_GET_DEVICE_FD", n + " in " + path_));
  return UniqueFd(dfd);
}

}  // namespace mdevmig::vfio
