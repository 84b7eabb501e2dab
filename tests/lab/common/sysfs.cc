#include "common/sysfs.h"

#include <sys/utsname.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

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
  auto text = mdev::read_text_file(path);
  if (!text) return std::nullopt;
  return std::move(*text);
}

int write_file(const std::string& path, const std::string& value) {
  auto r = mdev::write_text_file(path, value);
  return r ? 0 : -r.error().errnum;
}

}  // namespace mdevmig::lab
