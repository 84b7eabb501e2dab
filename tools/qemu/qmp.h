// A QMP client: JSON over a unix socket (QEMU's monitor protocol). The greeting and
// capabilities negotiation, commands matched to their replies by id, asynchronous
// events queued, a deadline on every wait.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "tools/qtest/line_channel.h"

namespace mdevmig::qemu {

/// An asynchronous QMP event ("STOP", "RESUME", "MIGRATION", ...).
struct QmpEvent {
  std::string name;
  nlohmann::json data;   ///< the event's "data" member, or null
  double timestamp = 0;  ///< QEMU's wall-clock timestamp, seconds since the epoch
};

/// A QMP session in command mode. Errors: a QMP error reply is EREMOTEIO with the
/// error class and description in the context; a malformed message is EPROTO; a
/// deadline is ETIMEDOUT; a closed socket ECONNRESET.
class QmpClient {
 public:
  static constexpr std::chrono::milliseconds kDefaultTimeout{10'000};
  /// Events kept before the oldest are dropped (and counted in dropped_events()).
  static constexpr std::size_t kMaxQueuedEvents = 4096;

  /// Connects (retrying while QEMU creates the socket), reads the greeting and
  /// negotiates capabilities, all within `timeout`.
  [[nodiscard]] static Result<QmpClient> connect(
      const Endpoint& at, std::chrono::milliseconds timeout = kDefaultTimeout);
  /// The same over an already connected channel (tests use a socketpair).
  [[nodiscard]] static Result<QmpClient> handshake(
      LineChannel channel, std::chrono::milliseconds timeout = kDefaultTimeout);

  /// Runs `command` with `arguments` (an object, or null for none) and returns its
  /// "return" value. Events that arrive meanwhile are queued; replies to earlier
  /// commands that timed out are discarded.
  [[nodiscard]] Result<nlohmann::json> execute(std::string_view command,
                                               const nlohmann::json& arguments = nullptr,
                                               std::chrono::milliseconds timeout = kDefaultTimeout);

  /// The first queued or arriving event called `name` (removed from the queue).
  [[nodiscard]] Result<QmpEvent> wait_event(std::string_view name,
                                            std::chrono::milliseconds timeout);
  /// Reads whatever has arrived, without waiting, into the event queue.
  [[nodiscard]] Result<void> poll();
  /// Removes and returns every queued event.
  [[nodiscard]] std::vector<QmpEvent> take_events();
  /// The first queued event called `name`, if any (left in the queue).
  [[nodiscard]] std::optional<QmpEvent> peek_event(std::string_view name) const;

  /// The greeting's "QMP" object (version, capabilities).
  [[nodiscard]] const nlohmann::json& greeting() const { return greeting_; }
  /// "major.minor.micro" from the greeting.
  [[nodiscard]] std::string version() const;
  [[nodiscard]] int version_major() const;
  [[nodiscard]] uint64_t dropped_events() const { return dropped_events_; }

 private:
  explicit QmpClient(LineChannel channel) : channel_(std::move(channel)) {}

  // Parses one line: an event is queued; a reply with id `want_id` is stored in
  // `reply`; any other reply is dropped.
  [[nodiscard]] Result<void> handle_line(const std::string& line, uint64_t want_id,
                                         std::optional<nlohmann::json>* reply);
  void queue_event(QmpEvent event);

  LineChannel channel_;
  nlohmann::json greeting_;
  uint64_t next_id_ = 1;
  std::deque<QmpEvent> events_;
  uint64_t dropped_events_ = 0;
};

}  // namespace mdevmig::qemu
