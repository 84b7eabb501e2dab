#include "tools/cli/stress_local_relay.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

namespace mdevmig::cli {

using stress::FaultKind;

StreamFault::Step StreamFault::apply(std::span<std::byte> data) {
  Step s{data.size(), false, false};
  const uint64_t end = pos_ + data.size();
  if (kind_ != FaultKind::kNone && !fired_ && offset_ < end) {
    const std::size_t at = offset_ > pos_ ? static_cast<std::size_t>(offset_ - pos_) : 0;
    fired_ = true;
    switch (kind_) {
      case FaultKind::kCorrupt:
        data[at] ^= std::byte{0x5a};
        break;
      case FaultKind::kTruncate:
        s.forward = at;
        s.cut = true;
        break;
      default:
        s.fire = true;
        break;
    }
  }
  pos_ += s.forward;
  return s;
}

namespace local {

void relay(UniqueFd src, UniqueFd dst, StreamFault& fault, const std::function<void()>& fire,
           std::chrono::milliseconds idle) {
  std::vector<std::byte> buf(256u << 10);
  auto send_all = [](int fd, const std::byte* p, std::size_t n) {
    while (n > 0) {
      const ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return false;
      p += w;
      n -= static_cast<std::size_t>(w);
    }
    return true;
  };
  for (bool go = true; go;) {
    pollfd p[2] = {{src.get(), POLLIN, 0}, {dst.get(), POLLIN, 0}};
    const int rc = ::poll(p, 2, static_cast<int>(idle.count()));
    if (rc <= 0) break;
    if (p[0].revents) {
      const ssize_t n = ::read(src.get(), buf.data(), buf.size());
      if (n <= 0) break;
      const auto s = fault.apply(std::span(buf.data(), static_cast<std::size_t>(n)));
      if (!send_all(dst.get(), buf.data(), s.forward)) break;
      if (s.fire && fire) fire();
      if (s.cut) go = false;
    }
    if (go && p[1].revents) {
      const ssize_t n = ::read(dst.get(), buf.data(), buf.size());
      if (n <= 0 || !send_all(src.get(), buf.data(), static_cast<std::size_t>(n))) break;
    }
  }
  ::shutdown(src.get(), SHUT_RDWR);
  ::shutdown(dst.get(), SHUT_RDWR);
}

}  // namespace local
}  // namespace mdevmig::cli
