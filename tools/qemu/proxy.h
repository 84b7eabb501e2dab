// A relay between a migrating QEMU and its destination (unix sockets, or TCP when the
// two are on different hosts): it counts the
// bytes of the migration stream over time (QEMU 7.2 reports RAM bytes, not device
// bytes) and injects faults in flight: a corrupted byte inside the VFIO device data,
// or a truncated stream. The return path (destination to source) is relayed too.
// Multifd opens more connections after the main one: each is relayed to its own
// upstream connection and counted with the rest; faults touch the main one only.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/fd.h"
#include "base/result.h"
#include "tools/qtest/endpoint.h"

namespace mdevmig::qemu {

/// The start of a VFIO device-data chunk in QEMU's stream (VFIO_MIG_FLAG_DEV_DATA_STATE,
/// big-endian), followed by a big-endian 64-bit size and the device's bytes. The same
/// in QEMU 7.2 (v1) and 8.x+ (v2).
inline constexpr uint64_t kVfioDevDataMarker = 0xffffffffef100004ull;

/// Finds VFIO device data in a migration stream fed to it in pieces of any size.
class DeviceDataScanner {
 public:
  /// Feeds the next `len` stream bytes; returns the index in `data` of the first byte
  /// at least `skip` bytes into a device-data chunk of more than `skip` bytes, or -1.
  [[nodiscard]] long feed(const uint8_t* data, std::size_t len, uint64_t skip);
  /// Feeds the next `len` stream bytes only to count device data.
  void count(const uint8_t* data, std::size_t len);
  /// Payload bytes of the device-data chunks seen so far.
  [[nodiscard]] uint64_t data_bytes() const { return data_bytes_; }

 private:
  void push(uint8_t byte);

  uint8_t window_[16] = {};
  std::size_t have_ = 0;     // valid bytes in window_ (up to 16)
  uint64_t chunk_left_ = 0;  // bytes of the current chunk not yet seen
  uint64_t chunk_seen_ = 0;  // bytes of the current chunk seen
  uint64_t data_bytes_ = 0;  // chunk payload bytes seen in all
};

/// A byte in time: cumulative stream bytes at a wall-clock moment.
struct WirePoint {
  double wall = 0;  ///< seconds since the epoch (comparable with QMP event timestamps)
  uint64_t bytes = 0;
};

class MigrationProxy {
 public:
  enum class Fault { kNone, kCorruptDeviceData, kTruncate };

  /// Listens on `listen`; for every connection accepted connects to `upstream`
  /// (retrying while it appears or refuses) and relays both ways until either side
  /// closes. The first connection is the main channel (QEMU opens it before any multifd
  /// channel). The fault fires once the main forward stream has passed `fault_at`
  /// bytes: kTruncate closes every connection there; kCorruptDeviceData flips one byte
  /// of the main channel's next VFIO device-data chunk.
  [[nodiscard]] static Result<std::unique_ptr<MigrationProxy>> start(const Endpoint& listen,
                                                                     const Endpoint& upstream,
                                                                     Fault fault = Fault::kNone,
                                                                     uint64_t fault_at = 0);
  ~MigrationProxy();
  MigrationProxy(const MigrationProxy&) = delete;
  MigrationProxy& operator=(const MigrationProxy&) = delete;

  /// Ends the relay (closes everything) and joins its thread.
  void stop();

  /// Source-to-destination bytes of all connections.
  [[nodiscard]] uint64_t bytes_forward() const { return forward_.load(); }
  /// ... of the main channel alone.
  [[nodiscard]] uint64_t bytes_forward_main() const { return forward_main_.load(); }
  /// VFIO device-data payload bytes seen on the main channel (chunk headers not
  /// counted): all the device's data, unless multifd carried part of it.
  [[nodiscard]] uint64_t device_data_main() const { return device_main_.load(); }
  /// device_data_main() over time (thinned like timeline()).
  [[nodiscard]] std::vector<WirePoint> device_timeline() const;
  /// Connections accepted so far (1 + multifd channels).
  [[nodiscard]] uint32_t connections() const { return connections_.load(); }
  [[nodiscard]] uint64_t bytes_back() const { return back_.load(); }
  [[nodiscard]] bool fault_fired() const { return fault_fired_.load(); }
  /// Where and what the fault did, once it fired.
  [[nodiscard]] std::string fault_note() const;
  /// Forward bytes over time (one point per relayed chunk, thinned to ~1 per ms).
  [[nodiscard]] std::vector<WirePoint> timeline() const;
  /// The relay's own failure, if any ("" when it ended because a side closed).
  [[nodiscard]] std::string error() const;

 private:
  MigrationProxy(UniqueFd listener, Endpoint listen, Endpoint upstream, Fault fault,
                 uint64_t fault_at);
  struct Relay;
  void run();
  // Relays one connection until it ends or the proxy stops.
  void relay(Relay& r);
  // Relays what `r` has to offer in the directions `forward`/`back`; false ends the
  // relay, true keeps it (it is done once neither direction is open).
  bool pump(Relay& r, bool forward, bool back, std::vector<uint8_t>& buf, bool& cut_all);
  [[nodiscard]] Result<UniqueFd> connect_upstream();
  void record();
  void set_error(std::string e);

  UniqueFd listener_;
  UniqueFd stop_pipe_[2];
  Endpoint listen_, upstream_;
  Fault fault_;
  uint64_t fault_at_;
  std::atomic<uint64_t> forward_{0}, back_{0}, forward_main_{0}, device_main_{0};
  std::atomic<uint32_t> connections_{0};
  DeviceDataScanner fault_scanner_, count_scanner_;  // the main channel's relay thread's
  std::mutex relays_mu_;  // protects relays_ (added by the accepting thread only)
  std::vector<std::unique_ptr<Relay>> relays_;
  std::atomic<bool> fault_fired_{false};
  mutable std::mutex mu_;  // protects timeline_, device_timeline_, note_, error_
  std::vector<WirePoint> timeline_, device_timeline_;
  std::string note_, error_;
  std::thread thread_;
};

/// Flips one byte inside the first VFIO device-data chunk of a saved migration stream
/// that starts at or after `from`; returns the file offset it changed.
[[nodiscard]] Result<uint64_t> corrupt_device_data_in_file(const std::string& path, uint64_t from);

}  // namespace mdevmig::qemu
