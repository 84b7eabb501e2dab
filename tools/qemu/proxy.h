// A relay between a migrating QEMU and its destination on unix sockets: it counts the
// bytes of the migration stream over time (QEMU 7.2 reports RAM bytes, not device
// bytes) and injects faults in flight: a corrupted byte inside the VFIO device data,
// or a truncated stream. The return path (destination to source) is relayed too.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "migration/base/fd.h"
#include "migration/base/result.h"

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

 private:
  uint8_t window_[16] = {};
  std::size_t have_ = 0;         // valid bytes in window_ (up to 16)
  uint64_t chunk_left_ = 0;      // bytes of the current chunk not yet seen
  uint64_t chunk_seen_ = 0;      // bytes of the current chunk seen
};

/// A byte in time: cumulative stream bytes at a wall-clock moment.
struct WirePoint {
  double wall = 0;  ///< seconds since the epoch (comparable with QMP event timestamps)
  uint64_t bytes = 0;
};

class MigrationProxy {
 public:
  enum class Fault { kNone, kCorruptDeviceData, kTruncate };

  /// Listens on `listen_path`; on the first connection connects to `upstream_path`
  /// (retrying while it appears) and relays both ways until either side closes. The
  /// fault fires once the forward stream has passed `fault_at` bytes: kTruncate
  /// closes both sides there; kCorruptDeviceData flips one byte of the next VFIO
  /// device-data chunk.
  [[nodiscard]] static Result<std::unique_ptr<MigrationProxy>> start(const std::string& listen_path,
                                                                      const std::string& upstream_path,
                                                                      Fault fault = Fault::kNone,
                                                                      uint64_t fault_at = 0);
  ~MigrationProxy();
  MigrationProxy(const MigrationProxy&) = delete;
  MigrationProxy& operator=(const MigrationProxy&) = delete;

  /// Ends the relay (closes everything) and joins its thread.
  void stop();

  [[nodiscard]] uint64_t bytes_forward() const { return forward_.load(); }
  [[nodiscard]] uint64_t bytes_back() const { return back_.load(); }
  [[nodiscard]] bool fault_fired() const { return fault_fired_.load(); }
  /// Where and what the fault did, once it fired.
  [[nodiscard]] std::string fault_note() const;
  /// Forward bytes over time (one point per relayed chunk, thinned to ~1 per ms).
  [[nodiscard]] std::vector<WirePoint> timeline() const;
  /// The relay's own failure, if any ("" when it ended because a side closed).
  [[nodiscard]] std::string error() const;

 private:
  MigrationProxy(UniqueFd listener, std::string listen_path, std::string upstream_path, Fault fault, uint64_t fault_at);
  void run();
  void record(uint64_t total);
  void set_error(std::string e);

  UniqueFd listener_;
  UniqueFd stop_pipe_[2];
  std::string listen_path_, upstream_path_;
  Fault fault_;
  uint64_t fault_at_;
  std::atomic<uint64_t> forward_{0}, back_{0};
  std::atomic<bool> fault_fired_{false};
  mutable std::mutex mu_;  // protects timeline_, note_, error_
  std::vector<WirePoint> timeline_;
  std::string note_, error_;
  std::thread thread_;
};

/// Flips one byte inside the first VFIO device-data chunk of a saved migration stream
/// that starts at or after `from`; returns the file offset it changed.
[[nodiscard]] Result<uint64_t> corrupt_device_data_in_file(const std::string& path, uint64_t from);

}  // namespace mdevmig::qemu
