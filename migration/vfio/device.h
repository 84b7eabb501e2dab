// Device: a VFIO device fd, with its regions, interrupts and the v2 migration and DMA
// logging features. Every call is a thin ioctl wrapper; decoding lives in info.h.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "base/fd.h"
#include "base/result.h"
#include "dirty/bitmap.h"
#include "migration/vfio/info.h"
#include "migration/vfio/mapping.h"
#include "migration/vfio/mig_state.h"

namespace mdevmig::vfio {

/// Decoded VFIO_DEVICE_GET_IRQ_INFO.
struct IrqInfo {
  uint32_t index = 0;
  uint32_t flags = 0;  ///< VFIO_IRQ_INFO_*
  uint32_t count = 0;  ///< vectors in this index
};

/// VFIO_MIG_GET_PRECOPY_INFO: bytes the data_fd can produce now.
struct PrecopyInfo {
  uint64_t initial_bytes = 0;  ///< of the initial (compatibility) data, not yet read
  uint64_t dirty_bytes = 0;    ///< of state changed since, estimated
};

/// A DMA-logging range: [iova, iova + length).
struct DmaLogRange {
  uint64_t iova = 0;
  uint64_t length = 0;
};

/// An open VFIO device. Region and device info are read once at open(), so the object
/// is immutable afterwards and may be used from several threads.
class Device {
 public:
  /// Takes ownership of a device fd from Group::device_fd(); reads GET_INFO and every
  /// region's GET_REGION_INFO. `name` (the mdev UUID) labels errors.
  [[nodiscard]] static Result<Device> open(UniqueFd fd, std::string name);

  [[nodiscard]] int fd() const noexcept { return fd_.get(); }
  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  [[nodiscard]] const DeviceInfo& info() const noexcept { return info_; }

  /// VFIO_DEVICE_GET_REGION_INFO now (with the argsz re-call for capabilities).
  [[nodiscard]] Result<RegionInfo> query_region_info(uint32_t index) const;
  /// The region info read at open(); the error it failed with there, if it did.
  [[nodiscard]] Result<const RegionInfo*> region(uint32_t index) const;
  /// Index of the first region with capability type `type`/`subtype`, e.g. the v1
  /// migration region (VFIO_REGION_TYPE_MIGRATION_DEPRECATED, subtype 1).
  [[nodiscard]] std::optional<uint32_t> find_region(uint32_t type, uint32_t subtype) const;

  /// pread of `out.size()` bytes at `offset` within region `index`; fails with EINVAL
  /// (without a syscall) if the range leaves the region.
  [[nodiscard]] Result<void> read(uint32_t index, uint64_t offset, std::span<std::byte> out) const;
  /// pwrite, with the same bounds rule as read().
  [[nodiscard]] Result<void> write(uint32_t index, uint64_t offset,
                                   std::span<const std::byte> in) const;
  /// A fixed-size register read (one pread, so 4- and 8-byte accesses stay single).
  template <typename T>
  requires std::is_trivially_copyable_v<T>
  [[nodiscard]] Result<T> read_as(uint32_t index, uint64_t offset) const {
    T v{};
    MDEVMIG_TRY(read(index, offset, std::as_writable_bytes(std::span<T, 1>(&v, 1))));
    return v;
  }
  /// A fixed-size register write.
  template <typename T>
  requires std::is_trivially_copyable_v<T>
  [[nodiscard]] Result<void> write_as(uint32_t index, uint64_t offset, const T& v) const {
    return write(index, offset, std::as_bytes(std::span<const T, 1>(&v, 1)));
  }
  /// mmaps window `area` of region `index` (see RegionInfo::mmap_areas()), with the
  /// protection the region's READ/WRITE flags allow.
  [[nodiscard]] Result<Mapping> mmap_region(uint32_t index, uint32_t area = 0) const;

  /// VFIO_DEVICE_GET_IRQ_INFO.
  [[nodiscard]] Result<IrqInfo> irq_info(uint32_t index) const;
  /// Binds eventfds to vectors [start, start + fds.size()) of IRQ `index` (ACTION_TRIGGER);
  /// an fd of -1 unbinds that vector.
  [[nodiscard]] Result<void> set_irq_eventfds(uint32_t index, uint32_t start,
                                              std::span<const int> fds) const;
  /// Disables IRQ index `index` entirely (DATA_NONE | ACTION_TRIGGER, count 0).
  [[nodiscard]] Result<void> disable_irq(uint32_t index) const;
  /// Masks vectors [start, start + count).
  [[nodiscard]] Result<void> mask_irq(uint32_t index, uint32_t start, uint32_t count = 1) const;
  /// Unmasks vectors [start, start + count) (e.g. INTx after an AUTOMASKED interrupt).
  [[nodiscard]] Result<void> unmask_irq(uint32_t index, uint32_t start, uint32_t count = 1) const;
  /// Fires vectors from userspace (loopback test of a bound eventfd).
  [[nodiscard]] Result<void> trigger_irq(uint32_t index, uint32_t start, uint32_t count = 1) const;

  /// VFIO_DEVICE_RESET.
  [[nodiscard]] Result<void> reset() const;

  /// VFIO_DEVICE_FEATURE PROBE: whether `feature` supports the GET/SET `access` flags.
  /// A device without the feature answers ENOTTY (reported as false).
  [[nodiscard]] Result<bool> probe_feature(uint32_t feature, uint32_t access) const;
  /// VFIO_DEVICE_FEATURE_MIGRATION GET: VFIO_MIGRATION_* flags (see mig_flags_text()).
  [[nodiscard]] Result<uint64_t> migration_flags() const;
  /// MIG_DEVICE_STATE SET. Returns the data_fd the arc opened (STOP_COPY, RESUMING,
  /// PRE_COPY...) or an invalid UniqueFd. On failure the error's context names the
  /// target and the state the device is in afterwards (read back with mig_state()).
  [[nodiscard]] Result<UniqueFd> set_mig_state(MigState target) const;
  /// MIG_DEVICE_STATE GET.
  [[nodiscard]] Result<MigState> mig_state() const;
  /// VFIO_MIG_GET_PRECOPY_INFO on a data_fd returned in PRE_COPY/PRE_COPY_P2P (6.2+).
  [[nodiscard]] Result<PrecopyInfo> precopy_info(int data_fd) const;
  /// VFIO_DEVICE_FEATURE_MIG_DATA_SIZE GET: estimated STOP_COPY bytes (6.2+).
  [[nodiscard]] Result<uint64_t> mig_data_size() const;

  /// DMA_LOGGING_START for `ranges` at `page_size`.
  [[nodiscard]] Result<void> dma_logging_start(uint64_t page_size,
                                               std::span<const DmaLogRange> ranges) const;
  /// DMA_LOGGING_STOP.
  [[nodiscard]] Result<void> dma_logging_stop() const;
  /// DMA_LOGGING_REPORT of [iova, iova + length) at `page_size`; reading clears the
  /// device's record of those pages.
  [[nodiscard]] Result<dirty::Bitmap> dma_logging_report(uint64_t iova, uint64_t length,
                                                         uint64_t page_size) const;

 private:
  Device(UniqueFd fd, std::string name) : fd_(std::move(fd)), name_(std::move(name)) {}

  // Runs VFIO_DEVICE_FEATURE on a buffer from build_feature().
  Result<void> feature(std::vector<std::byte>& buf, const char* op, const std::string& ctx) const;
  // Region `index` after checking that [offset, offset + len) lies within it.
  Result<const RegionInfo*> checked_range(uint32_t index, uint64_t offset, uint64_t len,
                                          const char* op) const;
  // Runs step(absolute fd offset, bytes done) until [offset, offset + len) of region
  // `index` is transferred.
  Result<void> region_transfer(
      uint32_t index, uint64_t offset, std::size_t len, const char* op,
      const std::function<ssize_t(uint64_t pos, std::size_t done)>& step) const;
  Result<void> irq_action(uint32_t flags, uint32_t index, uint32_t start, uint32_t count,
                          const char* what) const;

  UniqueFd fd_;
  std::string name_;
  DeviceInfo info_;
  std::vector<Result<RegionInfo>> regions_;  // by index, as read at open()
};

}  // namespace mdevmig::vfio
