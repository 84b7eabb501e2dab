#include "tools/cli/held.h"

#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <fstream>

#include "migration/vfio/uapi.h"
#include "tools/cli/device_arg.h"

namespace mdevmig::cli {
namespace {

Error bad_env(std::string what) {
  return Error::make_verdict(EINVAL, "usage", std::string(kHeldEnv) + ": " + std::move(what));
}

std::optional<int> parse_fd(std::string_view text) {
  int fd = -1;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), fd);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || fd < 0)
    return std::nullopt;
  return fd;
}

Error not_adopted(const HeldEntry& e, int fd, const std::string& why) {
  return Error::make_verdict(EBADF, "held device",
                             std::string(kHeldEnv) + " names fd " + std::to_string(fd) + " for " +
                                 e.uuid + ", but " + why + " (not adopted)");
}

}  // namespace

Result<std::vector<HeldEntry>> parse_held(std::string_view text) {
  std::vector<HeldEntry> out;
  size_t pos = 0;
  while (pos < text.size()) {
    if (text[pos] == ' ') {
      ++pos;
      continue;
    }
    const size_t end = std::min(text.find(' ', pos), text.size());
    const std::string_view item = text.substr(pos, end - pos);
    pos = end;
    const size_t c2 = item.rfind(':');
    const size_t c1 =
        c2 == std::string_view::npos || c2 == 0 ? std::string_view::npos : item.rfind(':', c2 - 1);
    if (c1 == std::string_view::npos)
      return bad_env("'" + std::string(item) + "' is not UUID:GROUP_FD:DEVICE_FD");
    const std::string_view uuid = item.substr(0, c1);
    const auto group = parse_fd(item.substr(c1 + 1, c2 - c1 - 1));
    const auto device = parse_fd(item.substr(c2 + 1));
    if (!vfio::validate_mdev_uuid(uuid).ok() || !group || !device)
      return bad_env("'" + std::string(item) + "' is not UUID:GROUP_FD:DEVICE_FD");
    HeldEntry e{canonical_uuid(uuid), *group, *device};
    if (find_held(out, e.uuid)) return bad_env(e.uuid + " is listed twice");
    out.push_back(std::move(e));
  }
  return out;
}

std::string format_held(const std::vector<HeldEntry>& entries) {
  std::string out;
  for (const auto& e : entries) {
    if (!out.empty()) out += ' ';
    out += e.uuid + ":" + std::to_string(e.group_fd) + ":" + std::to_string(e.device_fd);
  }
  return out;
}

std::optional<HeldEntry> find_held(const std::vector<HeldEntry>& entries, std::string_view uuid) {
  const std::string want = canonical_uuid(uuid);
  for (const auto& e : entries)
    if (e.uuid == want) return e;
  return std::nullopt;
}

Result<std::vector<HeldEntry>> held_from_env() {
  const char* v = std::getenv(kHeldEnv);
  if (v == nullptr) return std::vector<HeldEntry>{};
  return parse_held(v);
}

Result<UniqueFd> open_held(const HeldEntry& e, const HeldPaths& paths) {
  // The group fd: the character device /dev/vfio/N of this instance's IOMMU group.
  const int number = MDEVMIG_TRY(vfio::mdev_iommu_group(e.uuid, paths.vfio));
  const std::string group_path = paths.vfio.dev_vfio + "/" + std::to_string(number);
  struct stat want {
  }, got{};
  if (::stat(group_path.c_str(), &want) != 0) return Error::from_errno("stat", group_path);
  if (::fstat(e.group_fd, &got) != 0) return not_adopted(e, e.group_fd, "it is not open here");
  if (!S_ISCHR(got.st_mode) || got.st_rdev != want.st_rdev)
    return not_adopted(e, e.group_fd, "it is not " + group_path + ", the instance's VFIO group");

  // The device fd: a VFIO device fd (an anonymous inode the kernel names so), which keeps
  // the instance open, so that opening it again below does not reset it. Where the
  // kernel says which device an fd is (fdinfo, Linux 6.8+), it must be this instance.
  const std::string link_path = paths.proc_self_fd + "/" + std::to_string(e.device_fd);
  char link[256];
  const ssize_t n = ::readlink(link_path.c_str(), link, sizeof(link) - 1);
  if (n < 0) return not_adopted(e, e.device_fd, "it is not open here");
  if (std::string_view(link, static_cast<size_t>(n)) != "anon_inode:[vfio-device]")
    return not_adopted(
        e, e.device_fd,
        "it is " + std::string(link, static_cast<size_t>(n)) + ", not a VFIO device");
  std::ifstream fdinfo(paths.proc_self_fdinfo + "/" + std::to_string(e.device_fd));
  for (std::string line; std::getline(fdinfo, line);) {
    constexpr std::string_view kSyspath = "vfio-device-syspath:";
    if (!line.starts_with(kSyspath)) continue;
    if (!line.ends_with("/" + e.uuid))
      return not_adopted(e, e.device_fd,
                         "it is the VFIO device " + line.substr(kSyspath.size() + 1));
  }

  // The kernel looks the instance up by name within the group, or refuses.
  const int fd = ::ioctl(e.group_fd, VFIO_GROUP_GET_DEVICE_FD, e.uuid.c_str());
  if (fd < 0)
    return Error::from_errno("VFIO_GROUP_GET_DEVICE_FD", "held " + e.uuid + " (" + kHeldEnv + ")");
  return UniqueFd(fd);
}

}  // namespace mdevmig::cli
