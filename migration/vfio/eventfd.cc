#include "migration/vfio/eventfd.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace mdevmig::vfio {

Result<EventFd> EventFd::create() {
  const int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) return Error::from_errno("eventfd");
  return EventFd(UniqueFd(fd));
}

Result<void> EventFd::signal(uint64_t n) const {
  if (::write(fd_.get(), &n, sizeof(n)) != static_cast<ssize_t>(sizeof(n))) {
    return Error::from_errno("eventfd write", "fd " + std::to_string(fd_.get()));
  }
  return ok();
}

Result<uint64_t> EventFd::drain() const {
  uint64_t count = 0;
  if (::read(fd_.get(), &count, sizeof(count)) == static_cast<ssize_t>(sizeof(count))) {
    return count;
  }
  if (errno == EAGAIN) return uint64_t{0};
  return Error::from_errno("eventfd read", "fd " + std::to_string(fd_.get()));
}

Result<uint64_t> EventFd::wait(std::chrono::milliseconds timeout) const {
  using Clock = std::chrono::steady_clock;
  // Capped so that milliseconds::max() ("forever") cannot overflow the deadline.
  const auto deadline =
      Clock::now() + std::min(timeout, std::chrono::milliseconds(std::chrono::hours(24 * 365)));
  for (;;) {
    const uint64_t count = MDEVMIG_TRY(drain());
    if (count != 0) return count;
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      return Error::make(
          ETIMEDOUT, "eventfd wait",
          "fd " + std::to_string(fd_.get()) + " after " + std::to_string(timeout.count()) + " ms");
    }
    pollfd pfd{fd_.get(), POLLIN, 0};
    // EINTR and spurious wake-ups both just go round the loop with the time left.
    if (::poll(&pfd, 1, static_cast<int>(std::min<long long>(left, 1 << 30))) < 0 &&
        errno != EINTR) {
      return Error::from_errno("poll", "eventfd " + std::to_string(fd_.get()));
    }
  }
}

}  // namespace mdevmig::vfio
