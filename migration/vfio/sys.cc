#include "migration/vfio/sys.h"

#include <sys/ioctl.h>

#include <cerrno>
#include <cstdio>

namespace mdevmig::vfio {
namespace {

template <typename Arg>
Result<int> ioctl_retrying(int fd, unsigned long request, Arg arg, const char* op,
                           const std::string& context) {
  int rc;
  do {
    rc = ::ioctl(fd, request, arg);
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) return Error::from_errno(op, context);
  return rc;
}

}  // namespace

int raw_ioctl(int fd, unsigned long request, void* arg) {
  int rc;
  do {
    rc = ::ioctl(fd, request, arg);
  } while (rc < 0 && errno == EINTR);
  return rc;
}

std::string hex(uint64_t value) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "0x%llx", static_cast<unsigned long long>(value));
  return buf;
}

Result<int> checked_ioctl(int fd, unsigned long request, void* arg, const char* op,
                          const std::string& context) {
  return ioctl_retrying(fd, request, arg, op, context);
}

Result<int> checked_ioctl_value(int fd, unsigned long request, unsigned long arg, const char* op,
                                const std::string& context) {
  return ioctl_retrying(fd, request, arg, op, context);
}

}  // namespace mdevmig::vfio
