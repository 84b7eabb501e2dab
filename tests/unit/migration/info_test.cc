// Decoding of VFIO INFO replies, including hostile capability chains, and the argsz
// protocol against fake drivers.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "migration/vfio/info.h"
#include "migration/vfio/uapi.h"

namespace mdevmig::vfio {
namespace {

// A reply buffer we lay structs into at chosen offsets, as a driver would.
class Reply {
 public:
  explicit Reply(std::size_t size) : bytes_(size) {}
  template <typename T>
  Reply& put(std::size_t offset, const T& v) {
    EXPECT_LE(offset + sizeof(T), bytes_.size());
    std::memcpy(bytes_.data() + offset, &v, sizeof(T));
    return *this;
  }
  Reply& cap(std::size_t offset, uint16_t id, uint16_t version, uint32_t next) {
    return put(offset, vfio_info_cap_header{id, version, next});
  }
  [[nodiscard]] std::span<const std::byte> span() const { return bytes_; }
  [[nodiscard]] std::size_t size() const { return bytes_.size(); }

 private:
  std::vector<std::byte> bytes_;
};

constexpr std::size_t kFixed = 32;

bool within(std::span<const std::byte> inner, std::span<const std::byte> outer) {
  return inner.data() >= outer.data() && inner.data() + inner.size() <= outer.data() + outer.size();
}

// --- walk_caps -----------------------------------------------------------------------

TEST(WalkCaps, NoChain) {
  Reply r(64);
  auto caps = walk_caps(r.span(), 0, kFixed);
  ASSERT_TRUE(caps.ok());
  EXPECT_TRUE(caps->empty());
}

TEST(WalkCaps, TwoCapsInOrderWithExtents) {
  Reply r(96);
  r.cap(32, 7, 1, 56).cap(56, 9, 2, 0);
  auto caps = walk_caps(r.span(), 32, kFixed);
  ASSERT_TRUE(caps.ok()) << caps.error().message();
  ASSERT_EQ(caps->size(), 2u);
  EXPECT_EQ((*caps)[0].id, 7);
  EXPECT_EQ((*caps)[0].version, 1);
  EXPECT_EQ((*caps)[0].offset, 32u);
  EXPECT_EQ((*caps)[0].bytes.size(), 24u);  // up to the next capability
  EXPECT_EQ((*caps)[1].id, 9);
  EXPECT_EQ((*caps)[1].bytes.size(), 40u);  // up to the end of the reply
}

void expect_rejected(const Reply& r, uint32_t first, const char* why) {
  auto caps = walk_caps(r.span(), first, kFixed);
  ASSERT_FALSE(caps.ok()) << why;
  EXPECT_EQ(caps.error().errnum, EPROTO) << why;
}

TEST(WalkCaps, RejectsSelfLoop) {
  Reply r(64);
  r.cap(32, 1, 1, 32);
  expect_rejected(r, 32, "next points at itself");
}

TEST(WalkCaps, RejectsBackwardLoop) {
  Reply r(96);
  r.cap(32, 1, 1, 48).cap(48, 2, 1, 32);
  expect_rejected(r, 32, "second cap points back to the first");
}

TEST(WalkCaps, RejectsNextInsideOwnHeader) {
  Reply r(64);
  r.cap(32, 1, 1, 36);
  expect_rejected(r, 32, "next overlaps this header");
}

TEST(WalkCaps, RejectsFirstInsideFixedStruct) {
  Reply r(64);
  r.cap(8, 1, 1, 0);
  expect_rejected(r, 8, "first cap inside the fixed struct");
}

TEST(WalkCaps, RejectsOutOfRangeOffsets) {
  Reply r(64);
  expect_rejected(r, 64, "first at the end");
  expect_rejected(r, 0xFFFFFFFFu, "first far out");
  r.cap(32, 1, 1, 0xFFFFFFF0u);
  expect_rejected(r, 32, "next far out");
  Reply r2(64);
  r2.cap(32, 1, 1, 200);
  expect_rejected(r2, 32, "next past the end");
}

TEST(WalkCaps, RejectsTruncatedHeader) {
  Reply r(36);  // only 4 bytes at offset 32
  expect_rejected(r, 32, "header cut short");
}

TEST(WalkCaps, RejectsTooManyCaps) {
  Reply r(kFixed + (kMaxCaps + 1) * 8);
  for (std::size_t i = 0; i <= kMaxCaps; ++i) {
    const std::size_t off = kFixed + i * 8;
    r.cap(off, 1, 1, i == kMaxCaps ? 0 : static_cast<uint32_t>(off + 8));
  }
  expect_rejected(r, kFixed, "one cap too many");
}

TEST(WalkCaps, RandomBuffersNeverEscapeOrLoop) {
  std::mt19937_64 rng(12345);
  for (int iter = 0; iter < 20000; ++iter) {
    const std::size_t size = rng() % 160;
    Reply r(size);
    std::vector<std::byte> raw(size);
    for (auto& b : raw) b = static_cast<std::byte>(rng());
    for (std::size_t i = 0; i < size; ++i) r.put(i, raw[i]);
    // Bias offsets towards small values so that many chains are partly valid.
    const uint32_t first =
        (rng() % 4 == 0) ? static_cast<uint32_t>(rng()) : static_cast<uint32_t>(rng() % 200);
    auto caps = walk_caps(r.span(), first, 16);
    if (!caps.ok()) {
      EXPECT_EQ(caps.error().errnum, EPROTO);
      continue;
    }
    uint32_t prev = 0;
    for (const CapView& c : *caps) {
      EXPECT_TRUE(within(c.bytes, r.span()));
      EXPECT_GE(c.bytes.size(), sizeof(vfio_info_cap_header));
      EXPECT_GE(c.offset, 16u);
      EXPECT_GT(c.offset + 1, prev);
      prev = c.offset + 1;
    }
  }
}

// --- region info ---------------------------------------------------------------------

constexpr uint32_t kRegionCapsFlags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE |
                                      VFIO_REGION_INFO_FLAG_MMAP | VFIO_REGION_INFO_FLAG_CAPS;

vfio_region_info region_hdr(uint32_t argsz, uint32_t flags, uint32_t cap_offset, uint64_t size) {
  vfio_region_info h{};
  h.argsz = argsz;
  h.flags = flags;
  h.index = 2;
  h.cap_offset = cap_offset;
  h.size = size;
  h.offset = 0x20000000000ull;
  return h;
}

// A BAR-like region: sparse mmap cap with two areas, then a type cap.
Reply bar_reply() {
  constexpr uint32_t kSparse = sizeof(vfio_region_info);                               // 32
  constexpr uint32_t kType = kSparse + 16 + 2 * sizeof(vfio_region_sparse_mmap_area);  // 80
  constexpr uint32_t kEnd = kType + sizeof(vfio_region_info_cap_type);                 // 96
  Reply r(kEnd);
  r.put(0, region_hdr(kEnd, kRegionCapsFlags, kSparse, 0x100000));
  r.cap(kSparse, VFIO_REGION_INFO_CAP_SPARSE_MMAP, 1, kType);
  r.put(kSparse + 8, uint32_t{2});
  r.put(kSparse + 16, vfio_region_sparse_mmap_area{0, 0x1000});
  r.put(kSparse + 32, vfio_region_sparse_mmap_area{0x2000, 0xFE000});
  vfio_region_info_cap_type t{};
  t.header = {VFIO_REGION_INFO_CAP_TYPE, 1, 0};
  t.type = VFIO_REGION_TYPE_MIGRATION_DEPRECATED;
  t.subtype = VFIO_REGION_SUBTYPE_MIGRATION_DEPRECATED;
  r.put(kType, t);
  return r;
}

TEST(RegionInfo, PlainRegionWithoutCaps) {
  Reply r(sizeof(vfio_region_info));
  r.put(0, region_hdr(sizeof(vfio_region_info), VFIO_REGION_INFO_FLAG_READ, 0, 4096));
  auto info = parse_region_info(r.span());
  ASSERT_TRUE(info.ok()) << info.error().message();
  EXPECT_EQ(info->index, 2u);
  EXPECT_EQ(info->size, 4096u);
  EXPECT_EQ(info->offset, 0x20000000000ull);
  EXPECT_TRUE(info->readable());
  EXPECT_FALSE(info->writable());
  EXPECT_FALSE(info->sparse.has_value());
  EXPECT_FALSE(info->type.has_value());
  EXPECT_TRUE(info->mmap_areas().empty());
}

TEST(RegionInfo, SparseAndTypeCaps) {
  auto info = parse_region_info(bar_reply().span());
  ASSERT_TRUE(info.ok()) << info.error().message();
  ASSERT_TRUE(info->sparse.has_value());
  EXPECT_EQ(*info->sparse, (std::vector<MmapArea>{{0, 0x1000}, {0x2000, 0xFE000}}));
  EXPECT_EQ(info->mmap_areas(), *info->sparse);
  ASSERT_TRUE(info->type.has_value());
  EXPECT_EQ(*info->type, (RegionType{3, 1}));
  EXPECT_FALSE(info->msix_mappable);
}

TEST(RegionInfo, MmappableWithoutSparseIsOneWholeArea) {
  Reply r(sizeof(vfio_region_info));
  r.put(0, region_hdr(32, VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_MMAP, 0, 8192));
  auto info = parse_region_info(r.span());
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->mmap_areas(), (std::vector<MmapArea>{{0, 8192}}));
}

TEST(RegionInfo, MsixMappableAndUnknownCapsSkipped) {
  Reply r(56);
  r.put(0, region_hdr(56, kRegionCapsFlags, 32, 4096));
  r.cap(32, 0x7777, 1, 40).cap(40, VFIO_REGION_INFO_CAP_MSIX_MAPPABLE, 1, 48).cap(48, 0x7778, 3, 0);
  auto info = parse_region_info(r.span());
  ASSERT_TRUE(info.ok()) << info.error().message();
  EXPECT_TRUE(info->msix_mappable);
}

TEST(RegionInfo, CapsFlagWithZeroOffsetMeansNoCapsYet) {
  // What the kernel answers when argsz was too small: CAPS set, cap_offset 0.
  Reply r(32);
  r.put(0, region_hdr(96, kRegionCapsFlags, 0, 4096));
  auto info = parse_region_info(r.span());
  ASSERT_TRUE(info.ok());
  EXPECT_FALSE(info->sparse.has_value());
}

void expect_region_rejected(const Reply& r, const char* why) {
  auto info = parse_region_info(r.span());
  ASSERT_FALSE(info.ok()) << why;
  EXPECT_EQ(info.error().errnum, EPROTO) << why;
  EXPECT_EQ(info.error().op, "VFIO_DEVICE_GET_REGION_INFO") << why;
}

TEST(RegionInfo, RejectsShortReply) {
  Reply r(31);
  expect_region_rejected(r, "shorter than the fixed struct");
}

TEST(RegionInfo, RejectsOffsetOverflow) {
  Reply r(32);
  auto h = region_hdr(32, 0, 0, 0x1000);
  h.offset = ~uint64_t{0} - 0x10;
  r.put(0, h);
  expect_region_rejected(r, "offset + size wraps");
}

TEST(RegionInfo, RejectsSparseAreaCountBeyondCap) {
  Reply r = bar_reply();
  r.put(32 + 8, uint32_t{3});  // three areas claimed, room for two before the type cap
  expect_region_rejected(r, "nr_areas too large");
  r.put(32 + 8, uint32_t{0xFFFFFFFF});
  expect_region_rejected(r, "nr_areas huge");
}

TEST(RegionInfo, RejectsSparseAreaOutsideRegion) {
  Reply r = bar_reply();
  r.put(32 + 32, vfio_region_sparse_mmap_area{0x2000, 0xFF000});  // ends 0x1000 past size
  expect_region_rejected(r, "area past the end");
  r.put(32 + 32, vfio_region_sparse_mmap_area{~uint64_t{0}, 2});
  expect_region_rejected(r, "area offset + size wraps");
}

TEST(RegionInfo, RejectsDuplicateKnownCap) {
  Reply r(64);
  r.put(0, region_hdr(64, kRegionCapsFlags, 32, 4096));
  vfio_region_info_cap_type t{};
  t.header = {VFIO_REGION_INFO_CAP_TYPE, 1, 48};
  r.put(32, t);
  t.header.next = 0;
  t.type = 9;
  r.put(48, t);
  expect_region_rejected(r, "two type caps");
}

TEST(RegionInfo, RejectsTruncatedTypeCap) {
  Reply r(44);
  r.put(0, region_hdr(44, kRegionCapsFlags, 32, 4096));
  r.cap(32, VFIO_REGION_INFO_CAP_TYPE, 1, 0);
  expect_region_rejected(r, "type cap of 12 bytes");
}

TEST(RegionInfo, CapsBeyondReportedArgszAreNotRead) {
  // The buffer is large, but the driver said only 40 bytes are meaningful.
  Reply r = bar_reply();
  auto h = region_hdr(40, kRegionCapsFlags, 32, 0x100000);
  r.put(0, h);
  expect_region_rejected(r, "sparse cap extends past argsz");
}

TEST(RegionInfo, EveryTruncationIsHandled) {
  const Reply full = bar_reply();
  for (std::size_t len = 0; len <= full.size(); ++len) {
    auto info = parse_region_info(full.span().first(len));
    if (len == full.size()) {
      EXPECT_TRUE(info.ok());
    } else if (!info.ok()) {
      EXPECT_EQ(info.error().errnum, EPROTO) << len;
    }
  }
}

TEST(RegionInfo, EveryBitFlipIsHandled) {
  const Reply full = bar_reply();
  std::vector<std::byte> bytes(full.span().begin(), full.span().end());
  for (std::size_t bit = 0; bit < bytes.size() * 8; ++bit) {
    bytes[bit / 8] ^= std::byte{static_cast<unsigned char>(1u << (bit % 8))};
    auto info = parse_region_info(bytes);
    if (info.ok() && info->sparse) {
      for (const MmapArea& a : *info->sparse) {
        EXPECT_LE(a.offset, info->size);
        EXPECT_LE(a.size, info->size - a.offset);
      }
    } else if (!info.ok()) {
      EXPECT_EQ(info.error().errnum, EPROTO);
    }
    bytes[bit / 8] ^= std::byte{static_cast<unsigned char>(1u << (bit % 8))};
  }
}

// --- device info ---------------------------------------------------------------------

TEST(DeviceInfo, Decodes) {
  vfio_device_info raw{};
  raw.argsz = sizeof(raw);
  raw.flags = VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET;
  raw.num_regions = 10;
  raw.num_irqs = 5;
  auto info = parse_device_info(bytes_of(raw));
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->num_regions, 10u);
  EXPECT_EQ(info->num_irqs, 5u);
  EXPECT_EQ(info->flags, raw.flags);
  // A pre-caps kernel's 16-byte reply is fine; less is not.
  EXPECT_TRUE(parse_device_info(bytes_of(raw).first(16)).ok());
  EXPECT_FALSE(parse_device_info(bytes_of(raw).first(15)).ok());
}

// --- IOMMU info ----------------------------------------------------------------------

Reply iommu_reply() {
  // fixed (24) | iova ranges cap with 2 ranges (16 + 32) | migration cap (32) | dma avail (12+4)
  constexpr uint32_t kRanges = sizeof(vfio_iommu_type1_info);
  constexpr uint32_t kMig = kRanges + 16 + 2 * sizeof(vfio_iova_range);
  constexpr uint32_t kAvail = kMig + sizeof(vfio_iommu_type1_info_cap_migration);
  constexpr uint32_t kEnd = kAvail + 16;
  Reply r(kEnd);
  vfio_iommu_type1_info hdr{};
  hdr.argsz = kEnd;
  hdr.flags = VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS;
  hdr.iova_pgsizes = 0x40201000;
  hdr.cap_offset = kRanges;
  r.put(0, hdr);
  r.cap(kRanges, VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, 1, kMig);
  r.put(kRanges + 8, uint32_t{2});
  r.put(kRanges + 16, vfio_iova_range{0, 0xfedfffff});
  r.put(kRanges + 32, vfio_iova_range{0xfef00000, ~uint64_t{0}});
  vfio_iommu_type1_info_cap_migration mig{};
  mig.header = {VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION, 1, kAvail};
  mig.pgsize_bitmap = 0x1000;
  mig.max_dirty_bitmap_size = 256ull << 20;
  r.put(kMig, mig);
  vfio_iommu_type1_info_dma_avail avail{};
  avail.header = {VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, 1, 0};
  avail.avail = 65535;
  r.put(kAvail, avail);
  return r;
}

TEST(IommuInfo, DecodesAllCaps) {
  auto info = parse_iommu_info(iommu_reply().span());
  ASSERT_TRUE(info.ok()) << info.error().message();
  EXPECT_EQ(info->iova_pgsizes, 0x40201000u);
  ASSERT_TRUE(info->dirty_tracking.has_value());
  EXPECT_EQ(info->dirty_tracking->pgsize_bitmap, 0x1000u);
  EXPECT_EQ(info->dirty_tracking->max_dirty_bitmap_size, 256ull << 20);
  EXPECT_EQ(info->iova_ranges,
            (std::vector<IovaRange>{{0, 0xfedfffff}, {0xfef00000, ~uint64_t{0}}}));
  EXPECT_EQ(info->dma_avail, 65535u);
}

TEST(IommuInfo, OldKernelReplyWithoutCaps) {
  Reply r(16);
  vfio_iommu_type1_info hdr{};
  hdr.argsz = 16;
  hdr.flags = VFIO_IOMMU_INFO_PGSIZES;
  hdr.iova_pgsizes = 0x1000;
  r.put(0, hdr.argsz).put(4, hdr.flags).put(8, hdr.iova_pgsizes);
  auto info = parse_iommu_info(r.span());
  ASSERT_TRUE(info.ok());
  EXPECT_FALSE(info->dirty_tracking.has_value());
  EXPECT_TRUE(info->iova_ranges.empty());
}

TEST(IommuInfo, RejectsHostileRanges) {
  Reply r = iommu_reply();
  r.put(24 + 8, uint32_t{0x10000000});
  auto info = parse_iommu_info(r.span());
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.error().errnum, EPROTO);

  Reply r2 = iommu_reply();
  r2.put(24 + 16, vfio_iova_range{0x2000, 0x1000});
  EXPECT_FALSE(parse_iommu_info(r2.span()).ok());
}

TEST(IommuInfo, EveryTruncationIsHandled) {
  const Reply full = iommu_reply();
  for (std::size_t len = 0; len <= full.size(); ++len) {
    auto info = parse_iommu_info(full.span().first(len));
    if (!info.ok()) {
      EXPECT_EQ(info.error().errnum, EPROTO) << len;
    }
  }
}

// --- argsz protocol ------------------------------------------------------------------

// A driver whose reply needs `need` bytes; records each call's argsz and index.
struct FakeDriver {
  uint32_t need = sizeof(vfio_region_info);
  std::vector<uint32_t> argsz_seen;
  std::vector<uint32_t> index_seen;
  int fail_errno = 0;
  bool keep_growing = false;

  int operator()(void* arg) {
    vfio_region_info info;
    std::memcpy(&info, arg, sizeof(info));
    argsz_seen.push_back(info.argsz);
    index_seen.push_back(info.index);
    if (fail_errno != 0) {
      errno = fail_errno;
      return -1;
    }
    if (keep_growing) need = info.argsz + 8;
    info.flags = VFIO_REGION_INFO_FLAG_CAPS;
    info.index = 0xdead;  // scribbled, as a buggy first reply might be
    if (info.argsz < need) {
      info.argsz = need;
      info.cap_offset = 0;
    } else {
      info.index = index_seen.back();
      info.cap_offset = sizeof(vfio_region_info);
      std::memset(static_cast<std::byte*>(arg) + sizeof(info), 0x5a, need - sizeof(info));
    }
    std::memcpy(arg, &info, sizeof(info));
    return 0;
  }
};

vfio_region_info request(uint32_t index) {
  vfio_region_info r{};
  r.index = index;
  return r;
}

TEST(ArgszProtocol, FitsFirstTime) {
  FakeDriver drv;
  const auto req = request(4);
  auto reply = query_with_argsz(bytes_of(req), std::ref(drv), "OP", "ctx");
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->size(), sizeof(vfio_region_info));
  EXPECT_EQ(drv.argsz_seen, std::vector<uint32_t>{sizeof(vfio_region_info)});
}

TEST(ArgszProtocol, RecallsWithReportedSizeAndFreshRequest) {
  FakeDriver drv;
  drv.need = 120;
  const auto req = request(9);
  auto reply = query_with_argsz(bytes_of(req), std::ref(drv), "OP", "ctx");
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->size(), 120u);
  EXPECT_EQ(drv.argsz_seen, (std::vector<uint32_t>{32, 120}));
  // The second call carries the original index, not what the first reply scribbled.
  EXPECT_EQ(drv.index_seen, (std::vector<uint32_t>{9, 9}));
  vfio_region_info out;
  std::memcpy(&out, reply->data(), sizeof(out));
  EXPECT_EQ(out.cap_offset, sizeof(vfio_region_info));
}

TEST(ArgszProtocol, PropagatesIoctlErrno) {
  FakeDriver drv;
  drv.fail_errno = EINVAL;
  const auto req = request(1);
  auto reply =
      query_with_argsz(bytes_of(req), std::ref(drv), "VFIO_DEVICE_GET_REGION_INFO", "dev r1");
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.error().message(),
            "VFIO_DEVICE_GET_REGION_INFO on dev r1: Invalid argument (errno 22)");
}

TEST(ArgszProtocol, RefusesHugeArgsz) {
  FakeDriver drv;
  drv.need = kMaxInfoBytes + 1;
  const auto req = request(1);
  auto reply = query_with_argsz(bytes_of(req), std::ref(drv), "OP", "ctx");
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.error().errnum, E2BIG);
  EXPECT_EQ(drv.argsz_seen.size(), 1u);
}

TEST(ArgszProtocol, GivesUpOnEverGrowingDriver) {
  FakeDriver drv;
  drv.keep_growing = true;
  const auto req = request(1);
  auto reply = query_with_argsz(bytes_of(req), std::ref(drv), "OP", "ctx");
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.error().errnum, EPROTO);
  EXPECT_EQ(drv.argsz_seen.size(), static_cast<std::size_t>(kMaxArgszAttempts));
}

TEST(ArgszProtocol, SmallerReportedArgszKeepsFixedSize) {
  const auto req = request(1);
  auto reply = query_with_argsz(
      bytes_of(req),
      [](void* arg) {
        const uint32_t tiny = 4;
        std::memcpy(arg, &tiny, sizeof(tiny));
        return 0;
      },
      "OP", "ctx");
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->size(), sizeof(vfio_region_info));
}

// --- argument builders ---------------------------------------------------------------

TEST(Builders, IrqSet) {
  const int32_t fds[] = {5, -1, 7};
  auto buf = build_irq_set(VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, 2, 1, 3,
                           std::as_bytes(std::span(fds)));
  ASSERT_EQ(buf.size(), sizeof(vfio_irq_set) + 12);
  vfio_irq_set hdr;
  std::memcpy(&hdr, buf.data(), sizeof(hdr));
  EXPECT_EQ(hdr.argsz, buf.size());
  EXPECT_EQ(hdr.flags, uint32_t{VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER});
  EXPECT_EQ(hdr.index, 2u);
  EXPECT_EQ(hdr.start, 1u);
  EXPECT_EQ(hdr.count, 3u);
  int32_t back[3];
  std::memcpy(back, buf.data() + sizeof(hdr), sizeof(back));
  EXPECT_EQ(back[1], -1);
  EXPECT_EQ(back[2], 7);

  auto none = build_irq_set(VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, 1, 0, 0, {});
  EXPECT_EQ(none.size(), sizeof(vfio_irq_set));
}

TEST(Builders, Feature) {
  vfio_device_feature_mig_state st{};
  st.device_state = 3;
  st.data_fd = -1;
  auto buf =
      build_feature(VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, bytes_of(st));
  vfio_device_feature hdr;
  std::memcpy(&hdr, buf.data(), sizeof(hdr));
  EXPECT_EQ(hdr.argsz, sizeof(vfio_device_feature) + sizeof(st));
  EXPECT_EQ(hdr.flags & VFIO_DEVICE_FEATURE_MASK, uint32_t{VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE});
  auto payload = feature_payload(buf);
  ASSERT_EQ(payload.size(), sizeof(st));
  vfio_device_feature_mig_state back;
  std::memcpy(&back, payload.data(), sizeof(back));
  EXPECT_EQ(back.device_state, 3u);
  EXPECT_EQ(back.data_fd, -1);
}

TEST(Uapi, FallbackDefinitionsHaveUpstreamValues) {
  EXPECT_EQ(VFIO_MIGRATION_PRE_COPY, 1 << 2);
  EXPECT_EQ(VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, 9);
  EXPECT_EQ(VFIO_MIG_GET_PRECOPY_INFO, _IO(VFIO_TYPE, VFIO_BASE + 21));
}

}  // namespace
}  // namespace mdevmig::vfio
