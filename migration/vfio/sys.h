// Thin syscall helpers shared by the VFIO wrappers: errors come back as Error with the
// ioctl's name and the object's name as context.
#pragma once

#include <cstdint>
#include <string>

#include "base/result.h"

namespace mdevmig::vfio {

/// ioctl(fd, request, arg) retried on EINTR; -1 with errno set on failure. For callbacks
/// that must report errno themselves (query_with_argsz).
int raw_ioctl(int fd, unsigned long request, void* arg);

/// "0x1f000": addresses and offsets read best in hex in error contexts.
[[nodiscard]] std::string hex(uint64_t value);

/// ioctl(fd, request, arg), retried on EINTR; returns the (non-negative) result.
[[nodiscard]] Result<int> checked_ioctl(int fd, unsigned long request, void* arg, const char* op,
                                        const std::string& context);
/// ioctl with an integer argument (VFIO_CHECK_EXTENSION, VFIO_SET_IOMMU, ...).
[[nodiscard]] Result<int> checked_ioctl_value(int fd, unsigned long request, unsigned long arg,
                                              const char* op, const std::string& context);

}  // namespace mdevmig::vfio
