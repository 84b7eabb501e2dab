// EventFd: the kernel→user interrupt channel of VFIO SET_IRQS.
#pragma once

#include <chrono>
#include <cstdint>

#include "base/fd.h"
#include "base/result.h"

namespace mdevmig::vfio {

/// Move-only non-blocking eventfd (close-on-exec).
class EventFd {
 public:
  /// A new eventfd with counter 0.
  [[nodiscard]] static Result<EventFd> create();

  [[nodiscard]] int fd() const noexcept { return fd_.get(); }

  /// Adds `n` to the counter (what the kernel does when an interrupt fires).
  [[nodiscard]] Result<void> signal(uint64_t n = 1) const;
  /// Waits up to `timeout` for the counter to become non-zero, then reads and resets
  /// it. Returns the count, or an Error with ETIMEDOUT.
  [[nodiscard]] Result<uint64_t> wait(std::chrono::milliseconds timeout) const;
  /// Reads and resets the counter without waiting; 0 if nothing was signalled.
  [[nodiscard]] Result<uint64_t> drain() const;

 private:
  explicit EventFd(UniqueFd fd) : fd_(std::move(fd)) {}

  UniqueFd fd_;
};

}  // namespace mdevmig::vfio
