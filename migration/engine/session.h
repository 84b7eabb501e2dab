// Live migration between a source and a destination process (or two threads joined by
// a socketpair), over the wire protocol of schema/mdevmig.capnp:
//
//   source                                   destination
//   hello ------------------------------->   check compatibility
//         <-------------------------------   hello (or error: nothing started)
//   pre-copy: chunk / guestPages ... ---->   RESUMING, feed each verified chunk
//   (policy decides) switchover --------->
//   stop-copy: chunk / guestPages, done ->   check totals and stream XXH3, commit,
//         <-------------------------------   RUNNING, done (or error)
//   STOP (migration complete)
//
// Any failure on the source before the destination's done — its own, an error message,
// a dropped connection, a timeout, a Cancel (Ctrl-C) — sends the device back to RUNNING: a save
// never changes the source's device memory or registers, so nothing is lost. A failure on the
// destination resets its device.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "dirty/bitmap.h"
#include "migration/engine/channel.h"
#include "migration/engine/policy.h"
#include "migration/schema/codec.h"
#include "migration/vfio/container.h"
#include "migration/vfio/mapping.h"

namespace mdevmig::engine {

/// The tool's own "guest memory": anonymous memory DMA-mapped into a container, whose
/// device-written pages come from the container's dirty bitmap (VFIO_IOMMU_DIRTY_PAGES)
/// and whose CPU-written pages (the tool writing descriptors, like a vCPU) are marked
/// by the writer.
class GuestMemory {
 public:
  /// Maps `bytes` at `iova` in `container` (not owned; it must outlive this) and starts
  /// dirty tracking if `track`.
  [[nodiscard]] static Result<GuestMemory> create(const vfio::Container& container, uint64_t iova,
                                                  uint64_t bytes, bool track);
  ~GuestMemory();
  GuestMemory(GuestMemory&&) noexcept;
  GuestMemory& operator=(GuestMemory&&) = delete;

  [[nodiscard]] std::byte* data() const { return static_cast<std::byte*>(mem_.data()); }
  [[nodiscard]] uint64_t size() const { return mem_.size(); }
  [[nodiscard]] uint64_t iova() const { return iova_; }
  [[nodiscard]] uint64_t page_size() const { return page_size_; }
  [[nodiscard]] uint64_t pages() const { return size() / page_size_; }

  /// Pages written since the last call (the first call: since tracking started).
  [[nodiscard]] Result<dirty::Bitmap> collect_dirty();
  /// Marks [offset, offset + len) written by the CPU (thread-safe).
  void mark_cpu_dirty(uint64_t offset, uint64_t len);

 private:
  GuestMemory() = default;

  const vfio::Container* container_ = nullptr;
  vfio::Mapping mem_;
  uint64_t iova_ = 0;
  uint64_t page_size_ = 4096;
  bool tracking_ = false;
  bool mapped_ = false;
  std::unique_ptr<std::mutex> cpu_lock_ = std::make_unique<std::mutex>();
  std::optional<dirty::Bitmap> cpu_dirty_;
};

/// One pre-copy iteration, as the progress display and the report show it.
struct IterationStats {
  uint32_t iteration = 0;
  uint64_t device_bytes = 0;         ///< device stream bytes sent in this iteration
  uint64_t guest_pages = 0;          ///< guest pages sent in this iteration
  uint64_t guest_bytes = 0;          ///< the same in bytes
  uint64_t guest_pages_skipped = 0;  ///< dirty but unchanged since last sent: not sent
  uint64_t pending_bytes = 0;        ///< device's estimate of what is left
  double seconds = 0;
  double bandwidth_bps = 0;  ///< rate the source handed bytes to the connection
  /// Rate the destination's device took data at, as its answers reached the source
  /// (engine::delivery_rate; 0: not known, an older destination)
  double arrival_bps = 0;
  /// Sent in earlier passes and, by the answers so far, not yet at the destination's device
  uint64_t in_flight_bytes = 0;
  double dirty_rate_bps = 0;
  double est_downtime_s = -1;
  std::string verdict;
};

struct MigrationReport {
  schema::Channel channel = schema::Channel::kInvalid;
  uint32_t iterations = 0;
  std::string switchover_reason;
  double total_s = 0;
  double precopy_s = 0;
  double downtime_s = 0;  ///< source stopped until the destination runs
  /// The downtime target the policy compared its estimates with (source side; 0: none,
  /// pre-copy iterated to a cap).
  double downtime_target_s = 0;
  /// The fixed part of the downtime the policy assumed: the hello round trip, the
  /// source's stop and the destination's commit and start (with a destination that
  /// answers syncs: as it timed them, the stop timed like a read of what is pending;
  /// else three state changes timed like the source's first).
  double switchover_fixed_s = 0;
  /// The policy's downtime estimate when it decided (-1: none), and where the downtime
  /// went: from the decision (the last read of what is pending) until the device
  /// stopped, then until the last byte was
  /// handed to the connection (the rest of downtime_s is the destination's load, commit
  /// and start, and the reply).
  double estimated_downtime_s = -1;
  double decision_to_stop_s = 0;
  double stopcopy_send_s = 0;
  /// Whether the peer answers pre-copy syncs (an older peer does not), the destination's
  /// own estimate of its finish (commit and start) it last sent, the rate its device took
  /// data at as its answers reached the source (the stop-copy rate the estimate used; 0:
  /// not known), and what the estimate took to be still in flight.
  bool precopy_sync = false;
  double dest_finish_s = 0;
  double stopcopy_rate_bps = 0;
  uint64_t in_flight_bytes = 0;
  uint64_t precopy_device_bytes = 0, precopy_guest_bytes = 0;
  uint64_t stopcopy_device_bytes = 0, stopcopy_guest_bytes = 0;
  /// Whether unchanged guest pages were left out, and how many (source side).
  bool skip_unchanged_guest = false;
  uint64_t precopy_guest_skipped_pages = 0, stopcopy_guest_skipped_pages = 0;
  uint64_t wire_bytes = 0;
  uint64_t stream_bytes = 0, stream_xxh3 = 0, chunks = 0;
  std::vector<IterationStats> log;
};

struct SourceOptions {
  PolicyConfig policy;
  std::size_t chunk_size = 1u << 20;
  /// Pre-copy bytes between syncs (besides the one at the end of each pass; 0: only
  /// those): the answers measure the stop-copy rate while a pass goes on.
  uint64_t sync_step_bytes = 1u << 20;
  bool precopy = true;  ///< iterate while the device runs, if the channel can
  /// Leave out dirty guest pages whose content is what was last sent (XXH3 per page of
  /// the bytes sent; see GuestPageSender).
  bool skip_unchanged_guest = true;
  std::chrono::milliseconds peer_timeout{std::chrono::minutes(5)};
  /// Called after each iteration (progress display).
  std::function<void(const IterationStats&)> on_iteration;
  /// Called right before the device stops (pause the workload: the "VM" stops).
  std::function<void()> before_stop;
  /// Called after a failed migration recovered the device (resume the workload).
  std::function<void()> after_recover;
  /// Not owned; stops the migration (EINTR) like any failure: the device back to RUNNING.
  const io::Cancel* cancel = nullptr;
};

struct DestinationOptions {
  std::chrono::milliseconds peer_timeout{std::chrono::minutes(5)};
  bool run = true;  ///< RUNNING after the load (else STOP)
  /// Not owned; stops the migration (EINTR) like any failure: the device is reset.
  const io::Cancel* cancel = nullptr;
};

/// Runs the source side on connected socket `sock`. Errors carry the recovery outcome.
/// A peer's incompatibility fails with schema::kIncompatibleErrno before the device is
/// touched.
[[nodiscard]] Result<MigrationReport> run_source(Channel& ch, const schema::DeviceIdentity& id,
                                                 GuestMemory* guest, int sock,
                                                 const SourceOptions& opt);

/// Runs the destination side on connected socket `sock`.
[[nodiscard]] Result<MigrationReport> run_destination(Channel& ch, const schema::DeviceIdentity& id,
                                                      GuestMemory* guest, int sock,
                                                      const DestinationOptions& opt);

}  // namespace mdevmig::engine
