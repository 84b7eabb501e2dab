// The VFIO client's ioctl wrappers end to end against the in-process fake (fake_vfio.h):
// open order, argsz re-calls, region offsets, mmap, IRQ arguments, migration features,
// dirty bitmaps. What the real kernel does with them is for the lab tests.
#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "fake_vfio.h"
#include "migration/vfio/eventfd.h"
#include "migration/vfio/mdev.h"
#include "migration/vfio/uapi.h"

namespace mdevmig::vfio {
namespace {

namespace fs = std::filesystem;

constexpr const char* kUuid = "0c9f4a1e-7d3b-4b8a-9e2f-5a6b7c8d9e0f";
constexpr int kGroup = 5;

std::vector<std::byte> sparse_cap(std::vector<vfio_region_sparse_mmap_area> areas) {
  std::vector<std::byte> c(16 + areas.size() * sizeof(vfio_region_sparse_mmap_area));
  const vfio_info_cap_header h{VFIO_REGION_INFO_CAP_SPARSE_MMAP, 1, 0};
  std::memcpy(c.data(), &h, sizeof(h));
  const auto n = static_cast<uint32_t>(areas.size());
  std::memcpy(c.data() + 8, &n, sizeof(n));
  std::memcpy(c.data() + 16, areas.data(), areas.size() * sizeof(areas[0]));
  return c;
}

using fakevfio::type_cap;

// A fake sysfs + /dev/vfio in a temporary directory and a fake mdev behind them.
class VfioClientTest : public testing::Test {
 protected:
  void SetUp() override {
    root_ = fakevfio::make_mdev_tree("mdevmig-fake", kUuid, kGroup, state_);
    paths_ = VfioPaths{(root_ / "sys").string(), (root_ / "dev").string()};
    constexpr uint32_t kRW = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
    state_.regions[2] = {
        kRW | VFIO_REGION_INFO_FLAG_MMAP, 0x10000,
        fakevfio::chain(sizeof(vfio_region_info), {sparse_cap({{0, 0x4000}, {0x8000, 0x8000}})})};
    state_.regions[9] = {kRW, 0x1000,
                         fakevfio::chain(sizeof(vfio_region_info),
                                         {type_cap(VFIO_REGION_TYPE_MIGRATION_DEPRECATED,
                                                   VFIO_REGION_SUBTYPE_MIGRATION_DEPRECATED)})};
  }

  void TearDown() override { fs::remove_all(root_); }

  OpenMdev open() {
    auto m = open_mdev(kUuid, paths_);
    EXPECT_TRUE(m.ok()) << m.error().message();
    return std::move(m).value();
  }

  fs::path root_;
  VfioPaths paths_;
  fakevfio::State state_;
  fakevfio::Scope scope_{state_};
};

TEST_F(VfioClientTest, OpenMdevWiresContainerGroupDevice) {
  OpenMdev m = open();
  EXPECT_TRUE(state_.container_set);
  EXPECT_EQ(state_.iommu_type, uint32_t{VFIO_TYPE1v2_IOMMU});
  EXPECT_EQ(m.group.number(), kGroup);
  EXPECT_EQ(m.device.name(), kUuid);
  EXPECT_EQ(m.device.info().num_regions, 10u);
  EXPECT_EQ(m.device.info().num_irqs, 5u);
}

TEST_F(VfioClientTest, RegionInfoWithArgszRecallAndCaps) {
  OpenMdev m = open();
  // 10 indexes; the two with capabilities needed a second call each.
  EXPECT_EQ(state_.region_info_calls, 12);
  auto bar = m.device.region(2);
  ASSERT_TRUE(bar.ok()) << bar.error().message();
  EXPECT_EQ((*bar)->offset, uint64_t{2} << 20);
  ASSERT_TRUE((*bar)->sparse.has_value());
  EXPECT_EQ((*bar)->mmap_areas(), (std::vector<MmapArea>{{0, 0x4000}, {0x8000, 0x8000}}));
  EXPECT_EQ(m.device.find_region(VFIO_REGION_TYPE_MIGRATION_DEPRECATED,
                                 VFIO_REGION_SUBTYPE_MIGRATION_DEPRECATED),
            9u);
  EXPECT_FALSE(m.device.find_region(1, 1).has_value());
  // An index the driver refused keeps its error; one past the end is ours.
  auto missing = m.device.region(1);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().errnum, EINVAL);
  EXPECT_EQ(missing.error().op, "VFIO_DEVICE_GET_REGION_INFO");
  EXPECT_NE(missing.error().context.find("region 1"), std::string::npos);
  EXPECT_EQ(m.device.region(10).error().errnum, EINVAL);
}

TEST_F(VfioClientTest, RegionReadWriteAtRegionOffsets) {
  OpenMdev m = open();
  const uint32_t value = 0xfeedf00d;
  ASSERT_TRUE(m.device.write_as<uint32_t>(2, 0x10, value).ok());
  EXPECT_EQ(*m.device.read_as<uint32_t>(2, 0x10), value);
  // It landed at the region's offset in the device fd.
  uint32_t direct = 0;
  ASSERT_EQ(::pread(m.device.fd(), &direct, 4, (2 << 20) + 0x10), 4);
  EXPECT_EQ(direct, value);

  std::vector<std::byte> big(256, std::byte{0xab});
  ASSERT_TRUE(m.device.write(0, 0, big).ok());
  std::vector<std::byte> back(256);
  ASSERT_TRUE(m.device.read(0, 0, back).ok());
  EXPECT_EQ(back, big);
}

TEST_F(VfioClientTest, RegionAccessOutsideRegionIsRefused) {
  OpenMdev m = open();
  std::vector<std::byte> buf(8);
  auto past = m.device.read(0, 252, buf);
  ASSERT_FALSE(past.ok());
  EXPECT_EQ(past.error().errnum, EINVAL);
  EXPECT_EQ(past.error().op, "pread");
  EXPECT_FALSE(m.device.write(0, ~uint64_t{0} - 2, buf).ok());
  EXPECT_FALSE(m.device.read(1, 0, buf).ok());
  EXPECT_FALSE(m.device.read(77, 0, buf).ok());
}

TEST_F(VfioClientTest, MmapSparseArea) {
  OpenMdev m = open();
  auto map = m.device.mmap_region(2, 1);
  ASSERT_TRUE(map.ok()) << map.error().message();
  EXPECT_EQ(map->size(), 0x8000u);
  map->bytes()[4] = std::byte{0x5c};
  EXPECT_EQ(*m.device.read_as<uint8_t>(2, 0x8004), 0x5c);
  EXPECT_EQ(m.device.mmap_region(2, 2).error().errnum, EINVAL);
  EXPECT_EQ(m.device.mmap_region(0, 0).error().errnum, EINVAL);  // not mmappable
}

vfio_irq_set irq_header(const std::vector<std::byte>& raw) {
  vfio_irq_set h;
  std::memcpy(&h, raw.data(), sizeof(h));
  return h;
}

TEST_F(VfioClientTest, IrqInfoAndSetIrqs) {
  OpenMdev m = open();
  auto intx = m.device.irq_info(0);
  ASSERT_TRUE(intx.ok());
  EXPECT_EQ(intx->count, 1u);
  EXPECT_TRUE(intx->flags & VFIO_IRQ_INFO_AUTOMASKED);
  EXPECT_FALSE(m.device.irq_info(7).ok());

  auto ev = std::move(EventFd::create()).value();
  const int fds[] = {ev.fd(), -1};
  ASSERT_TRUE(m.device.set_irq_eventfds(1, 0, fds).ok());
  ASSERT_TRUE(m.device.unmask_irq(0, 0).ok());
  ASSERT_TRUE(m.device.mask_irq(0, 0).ok());
  ASSERT_TRUE(m.device.trigger_irq(1, 0).ok());
  ASSERT_TRUE(m.device.disable_irq(1).ok());
  ASSERT_EQ(state_.irq_sets.size(), 5u);

  const auto set = irq_header(state_.irq_sets[0]);
  EXPECT_EQ(set.flags, uint32_t{VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER});
  EXPECT_EQ(set.index, 1u);
  EXPECT_EQ(set.count, 2u);
  EXPECT_EQ(set.argsz, sizeof(vfio_irq_set) + 8);
  int32_t sent[2];
  std::memcpy(sent, state_.irq_sets[0].data() + sizeof(vfio_irq_set), sizeof(sent));
  EXPECT_EQ(sent[0], ev.fd());
  EXPECT_EQ(sent[1], -1);

  EXPECT_EQ(irq_header(state_.irq_sets[1]).flags,
            uint32_t{VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK});
  EXPECT_EQ(irq_header(state_.irq_sets[2]).flags,
            uint32_t{VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_MASK});
  const auto off = irq_header(state_.irq_sets[4]);
  EXPECT_EQ(off.flags, uint32_t{VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER});
  EXPECT_EQ(off.count, 0u);
}

TEST_F(VfioClientTest, Reset) {
  OpenMdev m = open();
  ASSERT_TRUE(m.device.reset().ok());
  EXPECT_EQ(state_.resets, 1);
}

TEST_F(VfioClientTest, MigrationStateCalls) {
  OpenMdev m = open();
  EXPECT_EQ(*m.device.migration_flags(), uint64_t{VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P});
  EXPECT_EQ(*m.device.mig_state(), MigState::kRunning);

  auto none = m.device.set_mig_state(MigState::kStop);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->valid());
  auto data = m.device.set_mig_state(MigState::kStopCopy);
  ASSERT_TRUE(data.ok());
  EXPECT_TRUE(data->valid());
  EXPECT_EQ(*m.device.mig_state(), MigState::kStopCopy);
}

TEST_F(VfioClientTest, FailedTransitionNamesTargetAndCurrentState) {
  OpenMdev m = open();
  state_.fail_set_state_errno = EIO;
  auto r = m.device.set_mig_state(MigState::kStopCopy);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().errnum, EIO);
  EXPECT_EQ(r.error().message(),
            std::string("VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE SET on ") + kUuid +
                " target STOP_COPY, now RUNNING: Input/output error (errno 5)");
}

TEST_F(VfioClientTest, InvalidStateFromDriverIsAnError) {
  OpenMdev m = open();
  state_.mig_state = 42;
  EXPECT_EQ(m.device.mig_state().error().errnum, EPROTO);
}

TEST_F(VfioClientTest, PreCopyFeaturesOnOldAndNewKernels) {
  OpenMdev m = open();
  // 6.1: no MIG_DATA_SIZE.
  EXPECT_FALSE(*m.device.probe_feature(VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, VFIO_DEVICE_FEATURE_GET));
  EXPECT_EQ(m.device.mig_data_size().error().errnum, ENOTTY);
  // 6.2+.
  state_.has_data_size = true;
  state_.data_size = 1 << 26;
  EXPECT_TRUE(*m.device.probe_feature(VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, VFIO_DEVICE_FEATURE_GET));
  EXPECT_EQ(*m.device.mig_data_size(), uint64_t{1} << 26);

  state_.precopy_initial = 4096;
  state_.precopy_dirty = 123;
  UniqueFd data = std::move(m.device.set_mig_state(MigState::kPreCopy)).value();
  ASSERT_TRUE(data.valid());
  auto info = m.device.precopy_info(data.get());
  ASSERT_TRUE(info.ok()) << info.error().message();
  EXPECT_EQ(info->initial_bytes, 4096u);
  EXPECT_EQ(info->dirty_bytes, 123u);
}

TEST_F(VfioClientTest, ContainerIommuInfoMapAndDirtyBitmap) {
  OpenMdev m = open();
  auto info = m.container.iommu_info();
  ASSERT_TRUE(info.ok()) << info.error().message();
  ASSERT_TRUE(info->dirty_tracking.has_value());
  EXPECT_EQ(info->dirty_tracking->pgsize_bitmap, 0x1000u);

  alignas(4096) static std::byte guest[100 * 4096];
  ASSERT_TRUE(m.container.map_dma(0x100000, guest, sizeof(guest), DmaAccess::kReadWrite).ok());
  EXPECT_EQ(state_.maps, std::vector<uint64_t>{0x100000});
  EXPECT_EQ(*m.container.unmap_dma(0x200000, 0x2000), 0x1000u);

  // GET_BITMAP before START is refused by the (fake) kernel.
  EXPECT_FALSE(m.container.dirty_bitmap(0x100000, sizeof(guest), 4096).ok());
  ASSERT_TRUE(m.container.start_dirty_tracking().ok());
  // Pages 0, 63, 64 and 99 dirty, plus junk past page 99 that must not survive.
  state_.dirty_words = {uint64_t{1} | (uint64_t{1} << 63),
                        uint64_t{1} | (uint64_t{1} << 35) | (uint64_t{1} << 40)};
  auto bm = m.container.dirty_bitmap(0x100000, sizeof(guest), 4096);
  ASSERT_TRUE(bm.ok()) << bm.error().message();
  EXPECT_EQ(bm->size(), 100u);
  EXPECT_EQ(bm->ranges(), (std::vector<dirty::PageRange>{{0, 1}, {63, 2}, {99, 1}}));
  EXPECT_EQ(m.container.dirty_bitmap(0x100000, 4096 * 3 + 1, 4096).error().errnum, EINVAL);
  ASSERT_TRUE(m.container.stop_dirty_tracking().ok());
  EXPECT_FALSE(state_.dirty_tracking);
}

TEST_F(VfioClientTest, DmaLogging) {
  OpenMdev m = open();
  const DmaLogRange ranges[] = {{0x0, 0x10000}, {0x100000, 0x40000}};
  ASSERT_TRUE(m.device.dma_logging_start(4096, ranges).ok());
  EXPECT_TRUE(state_.dma_logging);
  EXPECT_EQ(state_.logging_ranges,
            (std::vector<std::pair<uint64_t, uint64_t>>{{0x0, 0x10000}, {0x100000, 0x40000}}));
  state_.dirty_words = {0b1010};
  auto bm = m.device.dma_logging_report(0x0, 0x10000, 4096);
  ASSERT_TRUE(bm.ok()) << bm.error().message();
  EXPECT_EQ(bm->size(), 16u);
  EXPECT_EQ(bm->ranges(), (std::vector<dirty::PageRange>{{1, 1}, {3, 1}}));
  ASSERT_TRUE(m.device.dma_logging_stop().ok());
  EXPECT_FALSE(state_.dma_logging);
}

TEST_F(VfioClientTest, NonViableGroupIsRefused) {
  state_.group_viable = false;
  auto m = open_mdev(kUuid, paths_);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().errnum, EPERM);
  EXPECT_FALSE(state_.container_set);
}

TEST_F(VfioClientTest, UnknownDeviceNameIsNamedInTheError) {
  state_.device_name = "some-other-device";
  auto m = open_mdev(kUuid, paths_);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().op, "VFIO_GROUP_GET_DEVICE_FD");
  EXPECT_EQ(m.error().errnum, ENODEV);
  EXPECT_NE(m.error().context.find(kUuid), std::string::npos);
}

}  // namespace
}  // namespace mdevmig::vfio
