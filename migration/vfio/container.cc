#include "migration/vfio/container.h"

#include <fcntl.h>

#include <cstring>

#include "migration/vfio/sys.h"
#include "migration/vfio/uapi.h"

namespace mdevmig::vfio {

Result<Container> Container::open(const std::string& path) {
  const int raw = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (raw < 0) return Error::from_errno("open", path);
  Container c(UniqueFd(raw), path);
  const int version = MDEVMIG_TRY(
      checked_ioctl_value(c.fd(), VFIO_GET_API_VERSION, 0, "VFIO_GET_API_VERSION", path));
  if (version != VFIO_API_VERSION) {
    return Error::make(EPROTONOSUPPORT, "VFIO_GET_API_VERSION",
                       path + ": version " + std::to_string(version) + ", want " +
                           std::to_string(VFIO_API_VERSION));
  }
  if (!MDEVMIG_TRY(c.check_extension(VFIO_TYPE1v2_IOMMU))) {
    return Error::make(EOPNOTSUPP, "VFIO_CHECK_EXTENSION", path + ": no VFIO_TYPE1v2_IOMMU");
  }
  return c;
}

Result<bool> Container::check_extension(uint32_t extension) const {
  const int rc = MDEVMIG_TRY(
      checked_ioctl_value(fd(), VFIO_CHECK_EXTENSION, extension, "VFIO_CHECK_EXTENSION", path_));
  return rc > 0;
}

Result<void> Container::set_iommu(uint32_t type) const {
  MDEVMIG_TRY(checked_ioctl_value(fd(), VFIO_SET_IOMMU, type, "VFIO_SET_IOMMU",
                                  path_ + " type " + std::to_string(type)));
  return ok();
}

Result<IommuInfo> Container::iommu_info() const {
  vfio_iommu_type1_info req{};
  auto reply = MDEVMIG_TRY(query_with_argsz(
      bytes_of(req), [&](void* arg) { return raw_ioctl(fd(), VFIO_IOMMU_GET_INFO, arg); },
      "VFIO_IOMMU_GET_INFO", path_));
  auto info = parse_iommu_info(reply);
  if (!info.ok()) return std::move(info.error()).add_context(path_);
  return info;
}

Result<void> Container::map_dma(uint64_t iova, const void* vaddr, uint64_t size,
                                DmaAccess access) const {
  vfio_iommu_type1_dma_map map{};
  map.argsz = sizeof(map);
  map.flags = static_cast<uint32_t>(access);
  map.vaddr = reinterpret_cast<uintptr_t>(vaddr);
  map.iova = iova;
  map.size = size;
  MDEVMIG_TRY(checked_ioctl(fd(), VFIO_IOMMU_MAP_DMA, &map, "VFIO_IOMMU_MAP_DMA",
                            path_ + " iova " + hex(iova) + " size " + hex(size)));
  return ok();
}

Result<uint64_t> Container::unmap_dma(uint64_t iova, uint64_t size) const {
  vfio_iommu_type1_dma_unmap unmap{};
  unmap.argsz = sizeof(unmap);
  unmap.iova = iova;
  unmap.size = size;
  MDEVMIG_TRY(checked_ioctl(fd(), VFIO_IOMMU_UNMAP_DMA, &unmap, "VFIO_IOMMU_UNMAP_DMA",
                            path_ + " iova " + hex(iova) + " size " + hex(size)));
  return uint64_t{unmap.size};
}

Result<void> Container::dirty_pages_control(uint32_t flag, const char* op) const {
  vfio_iommu_type1_dirty_bitmap req{};
  req.argsz = sizeof(req);
  req.flags = flag;
  MDEVMIG_TRY(checked_ioctl(fd(), VFIO_IOMMU_DIRTY_PAGES, &req, op, path_));
  return ok();
}

Result<void> Container::start_dirty_tracking() const {
  return dirty_pages_control(VFIO_IOMMU_DIRTY_PAGES_FLAG_START, "VFIO_IOMMU_DIRTY_PAGES START");
}

Result<void> Container::stop_dirty_tracking() const {
  return dirty_pages_control(VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP, "VFIO_IOMMU_DIRTY_PAGES STOP");
}

Result<dirty::Bitmap> Container::dirty_bitmap(uint64_t iova, uint64_t size,
                                              uint64_t page_size) const {
  constexpr const char* kOp = "VFIO_IOMMU_DIRTY_PAGES GET_BITMAP";
  const std::string ctx = path_ + " iova " + hex(iova) + " size " + hex(size);
  const uint64_t pages = MDEVMIG_TRY(dirty::pages_in(size, page_size, kOp));
  dirty::Bitmap bitmap(pages);

  vfio_iommu_type1_dirty_bitmap hdr{};
  hdr.argsz = sizeof(hdr) + sizeof(vfio_iommu_type1_dirty_bitmap_get);
  hdr.flags = VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP;
  vfio_iommu_type1_dirty_bitmap_get get{};
  get.iova = iova;
  get.size = size;
  get.bitmap.pgsize = page_size;
  get.bitmap.size = dirty::Bitmap::raw_bytes_for(pages);
  // The kernel writes native-endian u64 words, which are our word layout on the
  // little-endian hosts VFIO migration runs on.
  static_assert(std::endian::native == std::endian::little);
  get.bitmap.data = reinterpret_cast<__u64*>(bitmap.mutable_words().data());
  // The get struct is the header's flexible data[]: lay them out back to back.
  alignas(8) std::byte req[sizeof(hdr) + sizeof(get)];
  std::memcpy(req, &hdr, sizeof(hdr));
  std::memcpy(req + sizeof(hdr), &get, sizeof(get));
  MDEVMIG_TRY(checked_ioctl(fd(), VFIO_IOMMU_DIRTY_PAGES, req, kOp, ctx));
  bitmap.trim_tail();
  return bitmap;
}

}  // namespace mdevmig::vfio
