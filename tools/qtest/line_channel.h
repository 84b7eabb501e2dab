// A connected stream socket read as newline-terminated lines, with a deadline on every
// wait: the transport under the QMP and qtest clients.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "base/fd.h"
#include "base/result.h"
#include "tools/qtest/endpoint.h"

namespace mdevmig::qemu {

using Clock = std::chrono::steady_clock;
using Deadline = Clock::time_point;

/// `timeout` from now.
[[nodiscard]] inline Deadline deadline_in(std::chrono::milliseconds timeout) {
  return Clock::now() + timeout;
}

/// What is left until `until`, and at least `floor` (a passed deadline still gets one
/// more try). Loops that follow QEMU through a migration give each QMP command this
/// much: while QEMU holds its big lock (a stop-and-copy, a load) its monitor does not
/// answer, for as long as that takes on a busy machine.
[[nodiscard]] inline std::chrono::milliseconds time_left(
    Deadline until, std::chrono::milliseconds floor = std::chrono::seconds(1)) {
  return std::max(floor,
                  std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()));
}

/// Owns a connected stream socket. Reads are buffered and split at '\n'; a line longer
/// than `max_line` fails with EMSGSIZE (a peer cannot make us buffer without bound).
/// Errors: ETIMEDOUT when a deadline passes, ECONNRESET when the peer closed.
class LineChannel {
 public:
  /// `name` appears in errors ("qmp /tmp/src.qmp").
  LineChannel(UniqueFd fd, std::string name, std::size_t max_line = kDefaultMaxLine);

  LineChannel(LineChannel&&) noexcept = default;
  LineChannel& operator=(LineChannel&&) noexcept = default;

  /// Connects to `to`, retrying while it does not exist or refuses (a QEMU that is
  /// still starting) until `until`.
  [[nodiscard]] static Result<LineChannel> connect(const Endpoint& to, Deadline until,
                                                   std::size_t max_line = kDefaultMaxLine);

  /// Writes all of `data` (short writes continue) before `until`.
  [[nodiscard]] Result<void> write_all(std::string_view data, Deadline until);
  /// The next complete line without its '\n' (and a trailing '\r'), waiting until `until`.
  [[nodiscard]] Result<std::string> read_line(Deadline until);
  /// A complete line if one is buffered or can be read without waiting; nullopt if not.
  [[nodiscard]] Result<std::optional<std::string>> try_read_line();

  [[nodiscard]] int fd() const { return fd_.get(); }
  [[nodiscard]] const std::string& name() const { return name_; }

  static constexpr std::size_t kDefaultMaxLine = 1u << 20;

 private:
  // One read(): true if bytes arrived, false if the deadline passed first (or, with
  // `until` == nullopt, nothing was readable right now).
  [[nodiscard]] Result<bool> fill(std::optional<Deadline> until);
  [[nodiscard]] std::optional<std::string> take_line();

  UniqueFd fd_;
  std::string name_;
  std::size_t max_line_;
  std::string buf_;
  std::size_t scanned_ = 0;  // bytes of buf_ known to hold no '\n'
};

}  // namespace mdevmig::qemu
