#include "common/sysfs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

namespace mdevmig::lab {

int kernel_release() {
  utsname u{};
  if (::uname(&u) != 0) return 0;
  int major = 0, minor = 0;
  std::sscanf(u.release, "%d.%d", &major, &minor);
  return major * 100 + minor;
}

bool in_lab() {
  const char* v = std::getenv("MDEVMIG_LAB");
  return v != nullptr && std::strcmp(v, "1") == 0;
}

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

int write_file(const std::string& path, const std::string& value) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  ssize_t n = ::write(fd, value.data(), value.size());
  int err = n < 0 ? -errno : 0;
  ::close(fd);
  return err;
}

std::vector<std::string> list_dir(const std::string& path) {
  std::vector<std::string> names;
  DIR* d = ::opendir(path.c_str());
  if (d == nullptr) return names;
  while (dirent* e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) names.emplace_back(e->d_name);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

std::string random_uuid() {
  std::random_device rd;
  std::mt19937_64 gen((static_cast<uint64_t>(rd()) << 32) ^ rd());
  uint64_t hi = gen(), lo = gen();
  hi = (hi & ~0xf000ULL) | 0x4000ULL;                  // version 4
  lo = (lo & ~(3ULL << 62)) | (2ULL << 62);            // variant 10
  char buf[37];
  std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(hi >> 32),
                static_cast<unsigned>((hi >> 16) & 0xffff), static_cast<unsigned>(hi & 0xffff),
                static_cast<unsigned>(lo >> 48), static_cast<unsigned long long>(lo & 0xffffffffffffULL));
  return buf;
}

std::vector<std::string> mdevmig_parents() {
  std::vector<std::string> out;
  for (const auto& name : list_dir("/sys/class/mdev_bus")) {
    if (!list_dir("/sys/class/mdev_bus/" + name + "/mdev_supported_types").empty() &&
        list_dir("/sys/class/mdev_bus/" + name + "/mdev_supported_types").front().rfind("mdevmig-", 0) == 0) {
      out.push_back(name);
    }
  }
  return out;
}

std::string type_dir(const std::string& parent, const std::string& type) {
  return "/sys/class/mdev_bus/" + parent + "/mdev_supported_types/mdevmig-" + type;
}

}  // namespace mdevmig::lab
