#include "migration/vfio/info.h"

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "migration/vfio/uapi.h"

namespace mdevmig::vfio {
namespace {

// Copies a T out of `bytes` at `offset` if it fits entirely; never reads past the end.
template <typename T>
std::optional<T> read_at(std::span<const std::byte> bytes, std::size_t offset) {
  if (offset > bytes.size() || bytes.size() - offset < sizeof(T)) return std::nullopt;
  T v;
  std::memcpy(&v, bytes.data() + offset, sizeof(T));
  return v;
}

// The fixed parts of capabilities that end in a flexible array (which cannot be copied
// into an optional as a whole).
struct SparseMmapFixed {
  vfio_info_cap_header header;
  uint32_t nr_areas;
  uint32_t reserved;
};
static_assert(sizeof(SparseMmapFixed) == offsetof(vfio_region_info_cap_sparse_mmap, areas));
struct IovaRangeFixed {
  vfio_info_cap_header header;
  uint32_t nr_iovas;
  uint32_t reserved;
};
static_assert(sizeof(IovaRangeFixed) ==
              offsetof(vfio_iommu_type1_info_cap_iova_range, iova_ranges));

Error malformed(const char* op, const std::string& what) { return Error::make(EPROTO, op, what); }

// The part of an INFO reply the kernel filled: the kernel reports the full size it needs
// in argsz, which may be more (caps did not fit) or less (older struct) than we have.
std::span<const std::byte> filled_part(std::span<const std::byte> reply, uint32_t argsz,
                                       std::size_t fixed_size) {
  const std::size_t n =
      std::max<std::size_t>(fixed_size, std::min<std::size_t>(argsz, reply.size()));
  return reply.first(std::min(n, reply.size()));
}

// A chain error, re-labelled as the INFO ioctl whose reply it was found in.
Error chain_error(Error e, const char* op, const std::string& where) {
  e.op = op;
  e.add_context(where);
  return e;
}

// The capability chain of a reply whose fixed struct says argsz and cap_offset.
Result<std::vector<CapView>> caps_of(std::span<const std::byte> reply, uint32_t argsz,
                                     uint32_t cap_offset, std::size_t fixed_size, const char* op,
                                     const std::string& where) {
  auto caps = walk_caps(filled_part(reply, argsz, fixed_size), cap_offset, fixed_size);
  if (!caps.ok()) return chain_error(std::move(caps).error(), op, where);
  return caps;
}

// The `count` elements that follow a capability's `fixed_size` bytes, if they fit.
template <typename Elem>
Result<std::vector<Elem>> read_counted(const CapView& cap, std::size_t fixed_size, uint32_t count,
                                       const char* op, const std::string& what) {
  const uint64_t need = fixed_size + uint64_t{count} * sizeof(Elem);
  if (need > cap.bytes.size()) {
    return malformed(op, what + " claims " + std::to_string(count) + " entries in " +
                             std::to_string(cap.bytes.size()) + " bytes");
  }
  std::vector<Elem> out(count);
  if (count != 0) std::memcpy(out.data(), cap.bytes.data() + fixed_size, count * sizeof(Elem));
  return out;
}

// Rejects a second capability with an id we already decoded: which one would count?
Result<void> first_of_id(bool& seen, const CapView& cap, const char* op) {
  if (seen) return malformed(op, "duplicate capability id " + std::to_string(cap.id));
  seen = true;
  return ok();
}

}  // namespace

Result<std::vector<CapView>> walk_caps(std::span<const std::byte> reply, uint32_t first,
                                       std::size_t fixed_size) {
  constexpr const char* kOp = "walk capability chain";
  std::vector<CapView> caps;
  uint64_t offset = first;
  uint64_t min_offset = fixed_size;  // the next header must start at or after this
  while (offset != 0) {
    if (caps.size() == kMaxCaps)
      return malformed(kOp, "more than " + std::to_string(kMaxCaps) + " capabilities");
    if (offset < min_offset) {
      return malformed(kOp, "capability at offset " + std::to_string(offset) +
                                (caps.empty() ? " inside the fixed header"
                                              : " does not follow the previous one"));
    }
    const auto hdr = read_at<vfio_info_cap_header>(reply, offset);
    if (!hdr) {
      return malformed(kOp, "capability header at offset " + std::to_string(offset) +
                                " past the end of a " + std::to_string(reply.size()) +
                                "-byte reply");
    }
    // A next offset inside this header would make the view negative; one that only lies
    // past the end is caught when we get there.
    const uint64_t end =
        hdr->next != 0 ? std::min<uint64_t>(hdr->next, reply.size()) : reply.size();
    if (hdr->next != 0 && hdr->next < offset + sizeof(vfio_info_cap_header)) {
      return malformed(kOp, "capability at offset " + std::to_string(offset) + " points back to " +
                                std::to_string(hdr->next));
    }
    caps.push_back(CapView{hdr->id, hdr->version, static_cast<uint32_t>(offset),
                           reply.subspan(offset, end - offset)});
    min_offset = offset + sizeof(vfio_info_cap_header);
    offset = hdr->next;
  }
  return caps;
}

bool RegionInfo::readable() const { return (flags & VFIO_REGION_INFO_FLAG_READ) != 0; }
bool RegionInfo::writable() const { return (flags & VFIO_REGION_INFO_FLAG_WRITE) != 0; }
bool RegionInfo::mmappable() const { return (flags & VFIO_REGION_INFO_FLAG_MMAP) != 0; }

std::vector<MmapArea> RegionInfo::mmap_areas() const {
  if (!mmappable() || size == 0) return {};
  if (sparse) return *sparse;
  return {MmapArea{0, size}};
}

Result<RegionInfo> parse_region_info(std::span<const std::byte> reply) {
  constexpr const char* kOp = "VFIO_DEVICE_GET_REGION_INFO";
  const auto raw = read_at<vfio_region_info>(reply, 0);
  if (!raw) return malformed(kOp, "reply of " + std::to_string(reply.size()) + " bytes");
  RegionInfo info;
  info.index = raw->index;
  info.flags = raw->flags;
  info.size = raw->size;
  info.offset = raw->offset;
  const std::string where = "region " + std::to_string(info.index);
  if (info.offset + info.size < info.offset) {
    return malformed(kOp, where + ": offset + size overflows");
  }
  if ((raw->flags & VFIO_REGION_INFO_FLAG_CAPS) == 0 || raw->cap_offset == 0) return info;

  const auto caps = MDEVMIG_TRY(
      caps_of(reply, raw->argsz, raw->cap_offset, sizeof(vfio_region_info), kOp, where));

  bool seen_sparse = false, seen_type = false, seen_msix = false;
  for (const CapView& cap : caps) {
    switch (cap.id) {
      case VFIO_REGION_INFO_CAP_SPARSE_MMAP: {
        MDEVMIG_TRY(first_of_id(seen_sparse, cap, kOp));
        const auto hdr = read_at<SparseMmapFixed>(cap.bytes, 0);
        if (!hdr) return malformed(kOp, where + ": truncated sparse-mmap capability");
        const auto raw_areas = MDEVMIG_TRY(read_counted<vfio_region_sparse_mmap_area>(
            cap, sizeof(SparseMmapFixed), hdr->nr_areas, kOp, where + ": sparse-mmap capability"));
        std::vector<MmapArea> areas;
        areas.reserve(raw_areas.size());
        for (std::size_t i = 0; i < raw_areas.size(); ++i) {
          const auto& a = raw_areas[i];
          if (a.offset > info.size || a.size > info.size - a.offset) {
            return malformed(
                kOp, where + ": sparse area " + std::to_string(i) + " lies outside the region");
          }
          areas.push_back({a.offset, a.size});
        }
        info.sparse = std::move(areas);
        break;
      }
      case VFIO_REGION_INFO_CAP_TYPE: {
        MDEVMIG_TRY(first_of_id(seen_type, cap, kOp));
        const auto t = read_at<vfio_region_info_cap_type>(cap.bytes, 0);
        if (!t) return malformed(kOp, where + ": truncated region-type capability");
        info.type = RegionType{t->type, t->subtype};
        break;
      }
      case VFIO_REGION_INFO_CAP_MSIX_MAPPABLE:
        MDEVMIG_TRY(first_of_id(seen_msix, cap, kOp));
        info.msix_mappable = true;
        break;
      default:
        break;  // capabilities we do not use are skipped, as the uAPI intends
    }
  }
  return info;
}

Result<DeviceInfo> parse_device_info(std::span<const std::byte> reply) {
  // Kernels before caps existed return the struct without cap_offset.
  constexpr std::size_t kMinSize = offsetof(vfio_device_info, cap_offset);
  if (reply.size() < kMinSize) {
    return malformed("VFIO_DEVICE_GET_INFO", "reply of " + std::to_string(reply.size()) + " bytes");
  }
  vfio_device_info raw{};
  std::memcpy(&raw, reply.data(), std::min(reply.size(), sizeof(raw)));
  return DeviceInfo{raw.flags, raw.num_regions, raw.num_irqs};
}

Result<IommuInfo> parse_iommu_info(std::span<const std::byte> reply) {
  constexpr const char* kOp = "VFIO_IOMMU_GET_INFO";
  constexpr std::size_t kMinSize = offsetof(vfio_iommu_type1_info, cap_offset);
  if (reply.size() < kMinSize) {
    return malformed(kOp, "reply of " + std::to_string(reply.size()) + " bytes");
  }
  vfio_iommu_type1_info raw{};
  std::memcpy(&raw, reply.data(), std::min(reply.size(), sizeof(raw)));
  IommuInfo info;
  info.flags = raw.flags;
  info.iova_pgsizes = raw.iova_pgsizes;
  if ((raw.flags & VFIO_IOMMU_INFO_CAPS) == 0 || raw.cap_offset == 0 ||
      reply.size() < sizeof(vfio_iommu_type1_info)) {
    return info;
  }

  const auto caps = MDEVMIG_TRY(
      caps_of(reply, raw.argsz, raw.cap_offset, sizeof(vfio_iommu_type1_info), kOp, "type1 info"));

  bool seen_ranges = false, seen_migration = false, seen_avail = false;
  for (const CapView& cap : caps) {
    switch (cap.id) {
      case VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE: {
        MDEVMIG_TRY(first_of_id(seen_ranges, cap, kOp));
        const auto hdr = read_at<IovaRangeFixed>(cap.bytes, 0);
        if (!hdr) return malformed(kOp, "truncated IOVA-range capability");
        const auto ranges = MDEVMIG_TRY(read_counted<vfio_iova_range>(
            cap, sizeof(IovaRangeFixed), hdr->nr_iovas, kOp, "IOVA-range capability"));
        for (std::size_t i = 0; i < ranges.size(); ++i) {
          if (ranges[i].start > ranges[i].end) {
            return malformed(kOp, "IOVA range " + std::to_string(i) + " ends before it starts");
          }
          info.iova_ranges.push_back({ranges[i].start, ranges[i].end});
        }
        break;
      }
      case VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION: {
        MDEVMIG_TRY(first_of_id(seen_migration, cap, kOp));
        const auto m = read_at<vfio_iommu_type1_info_cap_migration>(cap.bytes, 0);
        if (!m) return malformed(kOp, "truncated migration capability");
        info.dirty_tracking =
            DirtyTrackingCap{m->flags, m->pgsize_bitmap, m->max_dirty_bitmap_size};
        break;
      }
      case VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL: {
        MDEVMIG_TRY(first_of_id(seen_avail, cap, kOp));
        const auto a = read_at<vfio_iommu_type1_info_dma_avail>(cap.bytes, 0);
        if (!a) return malformed(kOp, "truncated DMA-available capability");
        info.dma_avail = a->avail;
        break;
      }
      default:
        break;
    }
  }
  return info;
}

Result<std::vector<std::byte>> query_with_argsz(std::span<const std::byte> request,
                                                const InfoIoctl& ioctl_fn, const char* op,
                                                const std::string& context) {
  MDEVMIG_CHECK(request.size() >= sizeof(uint32_t) && request.size() <= kMaxInfoBytes,
                "request of %zu bytes", request.size());
  std::size_t size = request.size();
  for (int attempt = 0; attempt < kMaxArgszAttempts; ++attempt) {
    std::vector<std::byte> buf(size);
    std::memcpy(buf.data(), request.data(), request.size());
    const auto argsz = static_cast<uint32_t>(size);
    std::memcpy(buf.data(), &argsz, sizeof(argsz));
    if (ioctl_fn(buf.data()) != 0) return Error::from_errno(op, context);

    uint32_t reported;
    std::memcpy(&reported, buf.data(), sizeof(reported));
    if (reported <= size) {
      buf.resize(std::max<std::size_t>(request.size(), reported));
      return buf;
    }
    if (reported > kMaxInfoBytes) {
      return Error::make(E2BIG, op,
                         context + ": driver asks for argsz " + std::to_string(reported) +
                             " (limit " + std::to_string(kMaxInfoBytes) + ")");
    }
    size = reported;
  }
  return Error::make(
      EPROTO, op,
      context + ": argsz still growing after " + std::to_string(kMaxArgszAttempts) + " calls");
}

std::vector<std::byte> build_irq_set(uint32_t flags, uint32_t index, uint32_t start, uint32_t count,
                                     std::span<const std::byte> data) {
  vfio_irq_set hdr{};
  hdr.argsz = static_cast<uint32_t>(sizeof(hdr) + data.size());
  hdr.flags = flags;
  hdr.index = index;
  hdr.start = start;
  hdr.count = count;
  std::vector<std::byte> out(sizeof(hdr) + data.size());
  std::memcpy(out.data(), &hdr, sizeof(hdr));
  if (!data.empty()) std::memcpy(out.data() + sizeof(hdr), data.data(), data.size());
  return out;
}

std::vector<std::byte> build_feature(uint32_t flags, std::span<const std::byte> payload) {
  vfio_device_feature hdr{};
  hdr.argsz = static_cast<uint32_t>(sizeof(hdr) + payload.size());
  hdr.flags = flags;
  std::vector<std::byte> out(sizeof(hdr) + payload.size());
  std::memcpy(out.data(), &hdr, sizeof(hdr));
  if (!payload.empty()) std::memcpy(out.data() + sizeof(hdr), payload.data(), payload.size());
  return out;
}

std::span<std::byte> feature_payload(std::span<std::byte> feature) {
  MDEVMIG_CHECK(feature.size() >= sizeof(vfio_device_feature), "feature of %zu bytes",
                feature.size());
  return feature.subspan(sizeof(vfio_device_feature));
}

}  // namespace mdevmig::vfio
