// Pure decoding of what VFIO INFO ioctls return: capability chains, region, IOMMU and
// device info, and the argsz protocol for variable-size replies. No syscalls here, so
// every rule is unit-tested against hostile buffers on any host.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"

namespace mdevmig::vfio {

/// Largest INFO reply we accept. Real replies are a few hundred bytes; a driver asking
/// for more is broken or hostile and must not make us allocate without bound.
inline constexpr std::size_t kMaxInfoBytes = std::size_t{64} * 1024;
/// Re-calls with a larger argsz before giving up on a driver whose size keeps growing.
inline constexpr int kMaxArgszAttempts = 4;
/// Capabilities accepted in one chain.
inline constexpr std::size_t kMaxCaps = 64;

/// One capability of an INFO reply.
struct CapView {
  uint16_t id = 0;
  uint16_t version = 0;
  uint32_t offset = 0;  ///< from the start of the INFO buffer
  /// From the capability header to the next capability (or the end of the reply): the
  /// most this capability may occupy. Typed decoders check their size against it.
  std::span<const std::byte> bytes;
};

/// Walks the capability chain of an INFO reply starting at `first` (0: no chain).
/// `fixed_size` is the size of the fixed struct that precedes the capabilities.
/// Fails with EPROTO when a header would lie inside the fixed struct or past the end of
/// `reply`, or when an offset does not increase (the kernel appends capabilities in
/// increasing order, so this both rejects loops and bounds the walk).
[[nodiscard]] Result<std::vector<CapView>> walk_caps(std::span<const std::byte> reply,
                                                     uint32_t first, std::size_t fixed_size);

/// An mmap-able window of a region (offset relative to the region).
struct MmapArea {
  uint64_t offset = 0;
  uint64_t size = 0;
  friend bool operator==(const MmapArea&, const MmapArea&) = default;
};

/// VFIO_REGION_INFO_CAP_TYPE.
struct RegionType {
  uint32_t type = 0;
  uint32_t subtype = 0;
  friend bool operator==(const RegionType&, const RegionType&) = default;
};

/// Decoded VFIO_DEVICE_GET_REGION_INFO.
struct RegionInfo {
  uint32_t index = 0;
  uint32_t flags = 0;   ///< VFIO_REGION_INFO_FLAG_*
  uint64_t size = 0;    ///< bytes; 0 for an unimplemented region
  uint64_t offset = 0;  ///< of the region within the device fd
  /// The sparse-mmap capability, if present: only these windows may be mmapped.
  std::optional<std::vector<MmapArea>> sparse;
  std::optional<RegionType> type;
  bool msix_mappable = false;

  [[nodiscard]] bool readable() const;
  [[nodiscard]] bool writable() const;
  [[nodiscard]] bool mmappable() const;
  /// The windows mmap_region() accepts: the sparse areas, else the whole region if it is
  /// mmappable, else none.
  [[nodiscard]] std::vector<MmapArea> mmap_areas() const;
};

/// Decodes a GET_REGION_INFO reply. Fails with EPROTO on a short reply, a malformed
/// chain, a duplicated or truncated known capability, a region whose offset + size
/// overflows, or a sparse area outside the region.
[[nodiscard]] Result<RegionInfo> parse_region_info(std::span<const std::byte> reply);

/// Decoded VFIO_DEVICE_GET_INFO (device capabilities are not decoded; none matter here).
struct DeviceInfo {
  uint32_t flags = 0;  ///< VFIO_DEVICE_FLAGS_*
  uint32_t num_regions = 0;
  uint32_t num_irqs = 0;
};
[[nodiscard]] Result<DeviceInfo> parse_device_info(std::span<const std::byte> reply);

/// An IOVA range, inclusive at both ends as in the uAPI.
struct IovaRange {
  uint64_t start = 0;
  uint64_t end = 0;
  friend bool operator==(const IovaRange&, const IovaRange&) = default;
};

/// VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION: what dirty-page tracking supports.
struct DirtyTrackingCap {
  uint32_t flags = 0;
  uint64_t pgsize_bitmap = 0;          ///< page sizes the dirty bitmap may use
  uint64_t max_dirty_bitmap_size = 0;  ///< bytes of bitmap per GET_BITMAP call
};

/// Decoded VFIO_IOMMU_GET_INFO for type1.
struct IommuInfo {
  uint32_t flags = 0;
  uint64_t iova_pgsizes = 0;
  std::optional<DirtyTrackingCap> dirty_tracking;
  std::vector<IovaRange> iova_ranges;  ///< empty when the capability is absent
  std::optional<uint32_t> dma_avail;   ///< DMA mappings still allowed
};

/// Decodes a type1 GET_INFO reply (also the 16-byte reply of kernels without caps).
[[nodiscard]] Result<IommuInfo> parse_iommu_info(std::span<const std::byte> reply);

/// Performs one INFO ioctl on a buffer that starts with a u32 argsz; returns the ioctl's
/// result (-1 with errno set on failure).
using InfoIoctl = std::function<int(void* arg)>;

/// The argsz protocol: sends `request` (the fixed struct, argsz filled in here); when the
/// driver answers with a larger argsz, calls again with a buffer of that size (with the
/// original request copied in again, since the first reply may have changed fields).
/// Returns the reply, `max(fixed, min(argsz, buffer))` bytes long. Fails with the
/// ioctl's errno, with E2BIG if the driver asks for more than kMaxInfoBytes, and with
/// EPROTO if it still wants more after kMaxArgszAttempts calls.
[[nodiscard]] Result<std::vector<std::byte>> query_with_argsz(std::span<const std::byte> request,
                                                              const InfoIoctl& ioctl_fn,
                                                              const char* op,
                                                              const std::string& context);

/// Builds a VFIO_DEVICE_SET_IRQS argument: the header with argsz, then `data`.
[[nodiscard]] std::vector<std::byte> build_irq_set(uint32_t flags, uint32_t index, uint32_t start,
                                                   uint32_t count, std::span<const std::byte> data);

/// Builds a VFIO_DEVICE_FEATURE argument: the header with argsz, then `payload`.
[[nodiscard]] std::vector<std::byte> build_feature(uint32_t flags,
                                                   std::span<const std::byte> payload);

/// The payload of a VFIO_DEVICE_FEATURE buffer built by build_feature().
[[nodiscard]] std::span<std::byte> feature_payload(std::span<std::byte> feature);

/// The bytes of a trivially copyable object (for building ioctl buffers).
template <typename T>
[[nodiscard]] std::span<const std::byte> bytes_of(const T& v) {
  return std::as_bytes(std::span<const T, 1>(&v, 1));
}

}  // namespace mdevmig::vfio
