#include "migration/vfio/device.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

#include "migration/vfio/sys.h"
#include "migration/vfio/uapi.h"

namespace mdevmig::vfio {
namespace {

// More regions than any bus driver defines (vfio-pci: 9 + a few device-specific); a
// larger count is a broken driver and must not make open() issue billions of ioctls.
constexpr uint32_t kMaxRegions = 256;

template <typename T>
T payload_as(std::span<std::byte> feature_buf) {
  T v;
  std::memcpy(&v, feature_payload(feature_buf).data(), sizeof(T));
  return v;
}

}  // namespace

Result<Device> Device::open(UniqueFd fd, std::string name) {
  if (!fd.valid()) return Error::make(EBADF, "open VFIO device", name);
  Device dev(std::move(fd), std::move(name));

  vfio_device_info req{};
  auto reply = MDEVMIG_TRY(query_with_argsz(
      bytes_of(req), [&](void* arg) { return raw_ioctl(dev.fd(), VFIO_DEVICE_GET_INFO, arg); },
      "VFIO_DEVICE_GET_INFO", dev.name_));
  auto info = parse_device_info(reply);
  if (!info.ok()) return std::move(info.error()).add_context(dev.name_);
  dev.info_ = *info;
  if (dev.info_.num_regions > kMaxRegions) {
    return Error::make(EPROTO, "VFIO_DEVICE_GET_INFO",
                       dev.name_ + ": " + std::to_string(dev.info_.num_regions) + " regions");
  }
  dev.regions_.reserve(dev.info_.num_regions);
  for (uint32_t i = 0; i < dev.info_.num_regions; ++i) {
    // Some indexes legitimately fail (vfio-pci answers EINVAL for VGA on non-VGA
    // devices); keep the error for whoever asks for that region.
    dev.regions_.push_back(dev.query_region_info(i));
  }
  return dev;
}

Result<RegionInfo> Device::query_region_info(uint32_t index) const {
  vfio_region_info req{};
  req.index = index;
  const std::string ctx = name_ + " region " + std::to_string(index);
  auto reply = MDEVMIG_TRY(query_with_argsz(
      bytes_of(req), [&](void* arg) { return raw_ioctl(fd(), VFIO_DEVICE_GET_REGION_INFO, arg); },
      "VFIO_DEVICE_GET_REGION_INFO", ctx));
  auto info = parse_region_info(reply);
  if (!info.ok()) return std::move(info.error()).add_context(name_);
  if (info->index != index) {
    return Error::make(EPROTO, "VFIO_DEVICE_GET_REGION_INFO",
                       ctx + ": reply is for region " + std::to_string(info->index));
  }
  return info;
}

Result<const RegionInfo*> Device::region(uint32_t index) const {
  if (index >= regions_.size()) {
    return Error::make(
        EINVAL, "region",
        name_ + " region " + std::to_string(index) + " of " + std::to_string(regions_.size()));
  }
  const Result<RegionInfo>& r = regions_[index];
  if (!r.ok()) return r.error();
  return &r.value();
}

std::optional<uint32_t> Device::find_region(uint32_t type, uint32_t subtype) const {
  for (uint32_t i = 0; i < regions_.size(); ++i) {
    const auto& r = regions_[i];
    if (r.ok() && r->type && *r->type == RegionType{type, subtype}) return i;
  }
  return std::nullopt;
}

Result<void> Device::region_transfer(
    uint32_t index, uint64_t offset, std::size_t len, const char* op,
    const std::function<ssize_t(uint64_t pos, std::size_t done)>& step) const {
  const RegionInfo* r = MDEVMIG_TRY(checked_range(index, offset, len, op));
  // Region accesses are normally one call; loop only for short transfers and EINTR.
  std::size_t done = 0;
  while (done < len) {
    const ssize_t n = step(r->offset + offset + done, done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int saved = errno;
      const std::string ctx =
          name_ + " region " + std::to_string(index) + " offset " + hex(offset + done);
      if (n < 0) return Error::make(saved, op, ctx);
      return Error::make(EIO, op, ctx + ": no progress");
    }
    done += static_cast<std::size_t>(n);
  }
  return ok();
}

Result<const RegionInfo*> Device::checked_range(uint32_t index, uint64_t offset, uint64_t len,
                                                const char* op) const {
  const RegionInfo* r = MDEVMIG_TRY(region(index));
  if (offset > r->size || len > r->size - offset) {
    return Error::make(EINVAL, op,
                       name_ + " region " + std::to_string(index) + " offset " + hex(offset) +
                           " length " + hex(len) + " outside region of size " + hex(r->size));
  }
  return r;
}

Result<void> Device::read(uint32_t index, uint64_t offset, std::span<std::byte> out) const {
  return region_transfer(index, offset, out.size(), "pread", [&](uint64_t pos, std::size_t done) {
    return ::pread(fd(), out.data() + done, out.size() - done, static_cast<off_t>(pos));
  });
}

Result<void> Device::write(uint32_t index, uint64_t offset, std::span<const std::byte> in) const {
  return region_transfer(index, offset, in.size(), "pwrite", [&](uint64_t pos, std::size_t done) {
    return ::pwrite(fd(), in.data() + done, in.size() - done, static_cast<off_t>(pos));
  });
}

Result<Mapping> Device::mmap_region(uint32_t index, uint32_t area) const {
  const RegionInfo* r = MDEVMIG_TRY(region(index));
  const std::string ctx =
      name_ + " region " + std::to_string(index) + " area " + std::to_string(area);
  const std::vector<MmapArea> areas = r->mmap_areas();
  if (area >= areas.size()) {
    return Error::make(EINVAL, "mmap",
                       ctx + ": region has " + std::to_string(areas.size()) + " mmap-able areas");
  }
  const int prot = (r->readable() ? PROT_READ : 0) | (r->writable() ? PROT_WRITE : 0);
  return Mapping::map_shared(fd(), r->offset + areas[area].offset, areas[area].size, prot, ctx);
}

Result<IrqInfo> Device::irq_info(uint32_t index) const {
  vfio_irq_info req{};
  req.argsz = sizeof(req);
  req.index = index;
  MDEVMIG_TRY(checked_ioctl(fd(), VFIO_DEVICE_GET_IRQ_INFO, &req, "VFIO_DEVICE_GET_IRQ_INFO",
                            name_ + " irq index " + std::to_string(index)));
  return IrqInfo{req.index, req.flags, req.count};
}

Result<void> Device::set_irq_eventfds(uint32_t index, uint32_t start,
                                      std::span<const int> fds) const {
  std::vector<int32_t> data(fds.begin(), fds.end());
  auto buf = build_irq_set(VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, index, start,
                           static_cast<uint32_t>(data.size()), std::as_bytes(std::span(data)));
  MDEVMIG_TRY(checked_ioctl(fd(), VFIO_DEVICE_SET_IRQS, buf.data(), "VFIO_DEVICE_SET_IRQS",
                            name_ + " irq index " + std::to_string(index) + " eventfds [" +
                                std::to_string(start) + ", +" + std::to_string(data.size()) + ")"));
  return ok();
}

Result<void> Device::irq_action(uint32_t flags, uint32_t index, uint32_t start, uint32_t count,
                                const char* what) const {
  auto buf = build_irq_set(flags, index, start, count, {});
  MDEVMIG_TRY(checked_ioctl(fd(), VFIO_DEVICE_SET_IRQS, buf.data(), "VFIO_DEVICE_SET_IRQS",
                            name_ + " irq index " + std::to_string(index) + " " + what + " [" +
                                std::to_string(start) + ", +" + std::to_string(count) + ")"));
  return ok();
}

Result<void> Device::disable_irq(uint32_t index) const {
  return irq_action(VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, index, 0, 0, "disable");
}

Result<void> Device::mask_irq(uint32_t index, uint32_t start, uint32_t count) const {
  return irq_action(VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_MASK, index, start, count, "mask");
}

Result<void> Device::unmask_irq(uint32_t index, uint32_t start, uint32_t count) const {
  return irq_action(VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK, index, start, count,
                    "unmask");
}

Result<void> Device::trigger_irq(uint32_t index, uint32_t start, uint32_t count) const {
  return irq_action(VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, index, start, count,
                    "trigger");
}

Result<void> Device::reset() const {
  MDEVMIG_TRY(checked_ioctl(fd(), VFIO_DEVICE_RESET, nullptr, "VFIO_DEVICE_RESET", name_));
  return ok();
}

Result<void> Device::feature(std::vector<std::byte>& buf, const char* op,
                             const std::string& ctx) const {
  MDEVMIG_TRY(checked_ioctl(fd(), VFIO_DEVICE_FEATURE, buf.data(), op, ctx));
  return ok();
}

Result<bool> Device::probe_feature(uint32_t feature_index, uint32_t access) const {
  auto buf = build_feature(VFIO_DEVICE_FEATURE_PROBE | access | feature_index, {});
  auto r = feature(buf, "VFIO_DEVICE_FEATURE PROBE",
                   name_ + " feature " + std::to_string(feature_index));
  if (r.ok()) return true;
  if (r.error().errnum == ENOTTY || r.error().errnum == EOPNOTSUPP) return false;
  return std::move(r).error();
}

Result<uint64_t> Device::migration_flags() const {
  auto buf = build_feature(VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIGRATION,
                           bytes_of(vfio_device_feature_migration{}));
  MDEVMIG_TRY(feature(buf, "VFIO_DEVICE_FEATURE_MIGRATION GET", name_));
  return uint64_t{payload_as<vfio_device_feature_migration>(buf).flags};
}

Result<UniqueFd> Device::set_mig_state(MigState target) const {
  vfio_device_feature_mig_state st{};
  st.device_state = static_cast<uint32_t>(target);
  st.data_fd = -1;
  auto buf =
      build_feature(VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, bytes_of(st));
  auto r = feature(buf, "VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE SET",
                   name_ + " target " + mig_state_name(target));
  if (!r.ok()) {
    // Callers recover from where the device actually is, so say where that is.
    const int saved = r.error().errnum;
    auto now = mig_state();
    r.error().context += now.ok() ? ", now " + mig_state_name(*now)
                                  : ", now unknown (" + errno_text(now.error().errnum) + ")";
    r.error().errnum = saved;
    return std::move(r).error();
  }
  const int data_fd = payload_as<vfio_device_feature_mig_state>(buf).data_fd;
  return UniqueFd(data_fd >= 0 ? data_fd : -1);
}

Result<MigState> Device::mig_state() const {
  auto buf = build_feature(VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
                           bytes_of(vfio_device_feature_mig_state{}));
  MDEVMIG_TRY(feature(buf, "VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE GET", name_));
  const uint32_t raw = payload_as<vfio_device_feature_mig_state>(buf).device_state;
  if (!mig_state_valid(raw)) {
    return Error::make(EPROTO, "VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE GET",
                       name_ + ": unknown state " + std::to_string(raw));
  }
  return static_cast<MigState>(raw);
}

Result<PrecopyInfo> Device::precopy_info(int data_fd) const {
  vfio_precopy_info info{};
  info.argsz = sizeof(info);
  MDEVMIG_TRY(checked_ioctl(data_fd, VFIO_MIG_GET_PRECOPY_INFO, &info, "VFIO_MIG_GET_PRECOPY_INFO",
                            name_ + " data_fd " + std::to_string(data_fd)));
  return PrecopyInfo{info.initial_bytes, info.dirty_bytes};
}

Result<uint64_t> Device::mig_data_size() const {
  auto buf = build_feature(VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_DATA_SIZE,
                           bytes_of(vfio_device_feature_mig_data_size{}));
  MDEVMIG_TRY(feature(buf, "VFIO_DEVICE_FEATURE_MIG_DATA_SIZE GET", name_));
  return uint64_t{payload_as<vfio_device_feature_mig_data_size>(buf).stop_copy_length};
}

Result<void> Device::dma_logging_start(uint64_t page_size,
                                       std::span<const DmaLogRange> ranges) const {
  std::vector<vfio_device_feature_dma_logging_range> raw(ranges.size());
  for (std::size_t i = 0; i < ranges.size(); ++i) raw[i] = {ranges[i].iova, ranges[i].length};
  vfio_device_feature_dma_logging_control ctl{};
  ctl.page_size = page_size;
  ctl.num_ranges = static_cast<uint32_t>(raw.size());
  ctl.ranges = reinterpret_cast<uintptr_t>(raw.data());
  auto buf =
      build_feature(VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_DMA_LOGGING_START, bytes_of(ctl));
  MDEVMIG_TRY(feature(buf, "VFIO_DEVICE_FEATURE_DMA_LOGGING_START",
                      name_ + " page size " + std::to_string(page_size) + ", " +
                          std::to_string(raw.size()) + " ranges"));
  return ok();
}

Result<void> Device::dma_logging_stop() const {
  auto buf = build_feature(VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP, {});
  MDEVMIG_TRY(feature(buf, "VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP", name_));
  return ok();
}

Result<dirty::Bitmap> Device::dma_logging_report(uint64_t iova, uint64_t length,
                                                 uint64_t page_size) const {
  constexpr const char* kOp = "VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT";
  const uint64_t pages = MDEVMIG_TRY(dirty::pages_in(length, page_size, kOp));
  dirty::Bitmap bitmap(pages);
  vfio_device_feature_dma_logging_report rep{};
  rep.iova = iova;
  rep.length = length;
  rep.page_size = page_size;
  // Native-endian u64 words from the kernel = our word layout (see Container::dirty_bitmap).
  static_assert(std::endian::native == std::endian::little);
  rep.bitmap = reinterpret_cast<uintptr_t>(bitmap.mutable_words().data());
  auto buf = build_feature(VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT,
                           bytes_of(rep));
  MDEVMIG_TRY(feature(buf, kOp, name_ + " iova " + hex(iova) + " length " + hex(length)));
  bitmap.trim_tail();
  return bitmap;
}

}  // namespace mdevmig::vfio
