// Container: a VFIO IOMMU context (/dev/vfio/vfio, legacy container/group API), which
// is what Debian 6.1 kernels and emulated-IOMMU mdev devices use.
#pragma once

#include <cstdint>
#include <string>

#include "base/fd.h"
#include "base/result.h"
#include "dirty/bitmap.h"
#include "migration/vfio/info.h"
#include "migration/vfio/uapi.h"

namespace mdevmig::vfio {

/// What a device may do to a DMA mapping.
enum class DmaAccess : uint32_t {
  kRead = 1,   ///< the device reads (VFIO_DMA_MAP_FLAG_READ)
  kWrite = 2,  ///< the device writes
  kReadWrite = 3,
};

/// A VFIO container. Order of use: open(), attach one or more groups
/// (Group::set_container), set_iommu(), then map DMA and track dirty pages.
class Container {
 public:
  /// Opens `path`, checks VFIO_GET_API_VERSION and that the Type1v2 IOMMU is available.
  [[nodiscard]] static Result<Container> open(const std::string& path = "/dev/vfio/vfio");

  [[nodiscard]] int fd() const noexcept { return fd_.get(); }
  [[nodiscard]] const std::string& path() const noexcept { return path_; }

  /// VFIO_CHECK_EXTENSION: whether the container supports `extension` (VFIO_TYPE1v2_IOMMU...).
  [[nodiscard]] Result<bool> check_extension(uint32_t extension) const;
  /// VFIO_SET_IOMMU; valid only once a group is attached.
  [[nodiscard]] Result<void> set_iommu(uint32_t type = VFIO_TYPE1v2_IOMMU) const;
  /// VFIO_IOMMU_GET_INFO with its capability chain decoded.
  [[nodiscard]] Result<IommuInfo> iommu_info() const;

  /// VFIO_IOMMU_MAP_DMA of process memory [vaddr, vaddr + size) at `iova`.
  [[nodiscard]] Result<void> map_dma(uint64_t iova, const void* vaddr, uint64_t size,
                                     DmaAccess access) const;
  /// VFIO_IOMMU_UNMAP_DMA; returns the number of bytes the kernel unmapped.
  [[nodiscard]] Result<uint64_t> unmap_dma(uint64_t iova, uint64_t size) const;

  /// VFIO_IOMMU_DIRTY_PAGES START: from now on the container records pages written by
  /// devices (and pinned pages) in every mapping.
  [[nodiscard]] Result<void> start_dirty_tracking() const;
  /// VFIO_IOMMU_DIRTY_PAGES STOP.
  [[nodiscard]] Result<void> stop_dirty_tracking() const;
  /// VFIO_IOMMU_DIRTY_PAGES GET_BITMAP for [iova, iova + size) at `page_size`; reading
  /// clears the kernel's record. Type1 requires page_size to be the smallest size in the
  /// migration capability's pgsize_bitmap, the range to cover whole mappings (none cut in
  /// two), and the bitmap to fit max_dirty_bitmap_size; callers split larger guests at
  /// mapping boundaries.
  [[nodiscard]] Result<dirty::Bitmap> dirty_bitmap(uint64_t iova, uint64_t size,
                                                   uint64_t page_size) const;

 private:
  // VFIO_IOMMU_DIRTY_PAGES with a START or STOP flag.
  Result<void> dirty_pages_control(uint32_t flag, const char* op) const;

  Container(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}

  UniqueFd fd_;
  std::string path_;
};

}  // namespace mdevmig::vfio
