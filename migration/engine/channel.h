// Channel: one device's migration data path behind one interface, whichever VFIO
// interface carries it:
//   - the v2 state machine and its data_fd (any v2 device; pre-copy when
//     VFIO_MIGRATION_PRE_COPY is offered, Linux 6.2+), read and written through
//     liburing in stream mode (the data_fd has no offsets; ENOMSG is pre-copy's
//     "nothing now");
//   - the v1 migration region (vfio_device_migration_info and its data section,
//     mmapped when the region allows it), which is how Linux 6.1 offers pre-copy for
//     our device.
// A channel is a session on the device: save (start_save, read..., stop_copy,
// read..., finish_save) or resume (start_resume, write..., finish_resume). Channels do
// not recover by themselves: on any failure the owner calls recover() once, which
// sends a saving device back to RUNNING (nothing was lost) and resets a resuming one.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "base/result.h"
#include "migration/engine/recovery.h"
#include "migration/io/uring.h"
#include "migration/schema/codec.h"
#include "migration/vfio/device.h"

namespace mdevmig::engine {

class Channel {
 public:
  virtual ~Channel() = default;

  [[nodiscard]] virtual schema::Channel kind() const = 0;
  /// Whether start_save(true) keeps the device running (pre-copy).
  [[nodiscard]] bool live() const { return kind() != schema::Channel::kV2StopCopy; }

  /// Starts saving. `precopy`: the device keeps running and read() returns pre-copy
  /// data until stop_copy(); else the device stops now.
  [[nodiscard]] virtual Result<void> start_save(bool precopy) = 0;
  /// Stops the device; read() then returns the rest of the state.
  [[nodiscard]] virtual Result<void> stop_copy() = 0;
  /// Up to `max` next bytes of the stream, valid until the next call. Empty: nothing
  /// right now (pre-copy) or the end of the stream (after stop_copy()).
  [[nodiscard]] virtual Result<std::span<const std::byte>> read(std::size_t max) = 0;
  /// The device's estimate of the bytes read() still has (0 if it gives none).
  [[nodiscard]] virtual Result<uint64_t> pending() = 0;
  /// Ends the save session: the device is left STOPped, or RUNNING if `run`.
  [[nodiscard]] virtual Result<void> finish_save(bool run) = 0;

  /// Starts resuming (the device stops and takes a stream).
  [[nodiscard]] virtual Result<void> start_resume() = 0;
  [[nodiscard]] virtual Result<void> write(std::span<const std::byte> data) = 0;
  /// Waits until every byte written so far reached the device (a channel whose write()
  /// returns before that: buffered or asynchronous writes).
  [[nodiscard]] virtual Result<void> drain() { return ok(); }
  /// Commits the stream (the device validates and loads it); STOP, or RUNNING if `run`.
  [[nodiscard]] virtual Result<void> finish_resume(bool run) = 0;

  /// Abandons the session: saving → RUNNING, resuming → reset; says what happened.
  [[nodiscard]] virtual Recovery recover() = 0;
  /// The device's migration state, for error messages.
  [[nodiscard]] virtual std::string state_name() = 0;
};

/// Which interface to use.
enum class ChannelPreference { kAuto, kV2, kV1 };

/// Opens a channel on `dev` (not owned; must outlive the channel). Auto, when
/// `want_precopy`: v2 with PRE_COPY if offered, else the v1 region if present, else v2
/// STOP_COPY only. Without `want_precopy` (save, restore): v2 whenever present, else v1.
[[nodiscard]] Result<std::unique_ptr<Channel>> open_channel(const vfio::Device& dev,
                                                            ChannelPreference pref,
                                                            bool want_precopy,
                                                            io::IoOptions io = {4, 1u << 20, ""});

/// Parses "auto", "v2", "v1".
[[nodiscard]] Result<ChannelPreference> parse_channel_preference(std::string_view text);

}  // namespace mdevmig::engine
