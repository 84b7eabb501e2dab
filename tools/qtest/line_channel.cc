#include "tools/qtest/line_channel.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

namespace mdevmig::qemu {
namespace {

// Milliseconds left until `until`, rounded up, for poll(); 0 if it has passed.
int poll_timeout(Deadline until) {
  auto left = std::chrono::ceil<std::chrono::milliseconds>(until - Clock::now()).count();
  if (left <= 0) return 0;
  return left > 60'000 ? 60'000 : static_cast<int>(left);
}

}  // namespace

LineChannel::LineChannel(UniqueFd fd, std::string name, std::size_t max_line)
    : fd_(std::move(fd)), name_(std::move(name)), max_line_(max_line) {
  if (fd_.valid()) {
    int flags = ::fcntl(fd_.get(), F_GETFL);
    if (flags >= 0) (void)::fcntl(fd_.get(), F_SETFL, flags | O_NONBLOCK);
  }
}

Result<LineChannel> LineChannel::connect(const Endpoint& to, Deadline until, std::size_t max_line) {
  for (;;) {
    auto fd = connect_once(to);
    if (fd) return LineChannel(std::move(*fd), to.uri(), max_line);
    if (!connect_retryable(fd.error()) || Clock::now() >= until) return std::move(fd).error();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

Result<void> LineChannel::write_all(std::string_view data, Deadline until) {
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::send(fd_.get(), data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n > 0) {
      done += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN) return Error::from_errno("send", name_);
    int timeout = poll_timeout(until);
    if (timeout == 0) return Error::make(ETIMEDOUT, "send", name_);
    pollfd p{fd_.get(), POLLOUT, 0};
    if (::poll(&p, 1, timeout) < 0 && errno != EINTR) return Error::from_errno("poll", name_);
  }
  return ok();
}

std::optional<std::string> LineChannel::take_line() {
  std::size_t nl = buf_.find('\n', scanned_);
  if (nl == std::string::npos) {
    scanned_ = buf_.size();
    return std::nullopt;
  }
  std::string line = buf_.substr(0, nl);
  buf_.erase(0, nl + 1);
  scanned_ = 0;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

Result<bool> LineChannel::fill(std::optional<Deadline> until) {
  char chunk[64 * 1024];
  for (;;) {
    ssize_t n = ::recv(fd_.get(), chunk, sizeof(chunk), 0);
    if (n > 0) {
      buf_.append(chunk, static_cast<std::size_t>(n));
      return true;
    }
    if (n == 0) return Error::make(ECONNRESET, "read", name_ + " (peer closed)");
    if (errno == EINTR) continue;
    if (errno != EAGAIN) return Error::from_errno("read", name_);
    if (!until) return false;
    int timeout = poll_timeout(*until);
    if (timeout == 0) return false;
    pollfd p{fd_.get(), POLLIN, 0};
    if (::poll(&p, 1, timeout) < 0 && errno != EINTR) return Error::from_errno("poll", name_);
  }
}

Result<std::string> LineChannel::read_line(Deadline until) {
  for (;;) {
    if (auto line = take_line()) return std::move(*line);
    if (buf_.size() > max_line_)
      return Error::make(EMSGSIZE, "read line",
                         name_ + ": longer than " + std::to_string(max_line_) + " bytes");
    bool got = MDEVMIG_TRY(fill(until));
    if (!got && Clock::now() >= until) return Error::make(ETIMEDOUT, "read line", name_);
  }
}

Result<std::optional<std::string>> LineChannel::try_read_line() {
  for (;;) {
    if (auto line = take_line()) return std::optional<std::string>(std::move(*line));
    if (buf_.size() > max_line_)
      return Error::make(EMSGSIZE, "read line",
                         name_ + ": longer than " + std::to_string(max_line_) + " bytes");
    bool got = MDEVMIG_TRY(fill(std::nullopt));
    if (!got) return std::optional<std::string>();
  }
}

}  // namespace mdevmig::qemu
