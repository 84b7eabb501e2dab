// Lab group "device": an instance's VFIO device end to end through the C++ client:
// config space, regions, bad arguments, the DMA engine with MSI and INTx, BAR2 access
// modes and dirty tracking, isolation, open/close semantics.
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <linux/mdevmig.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>
#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "common/dma.h"
#include "common/instance.h"
#include "common/sysfs.h"
#include "dirty/bitmap.h"
#include "migration/vfio/eventfd.h"
#include "migration/vfio/mapping.h"
#include "migration/vfio/mdev.h"

namespace mdevmig::lab {
namespace {

using namespace std::chrono_literals;
using vfio::Mapping;

constexpr uint64_t kQuarterSize = 16ull << 20;  // a quarter of the default 64 MiB sim parent

#define ASSERT_OK(expr)                                            \
  ({                                                               \
    auto _r = (expr);                                              \
    ASSERT_TRUE(_r.ok()) << #expr << ": " << _r.error().message(); \
    std::move(_r);                                                 \
  })

template <typename T>
T must(Result<T> r, const char* what) {
  if (!r.ok()) {
    ADD_FAILURE() << what << ": " << r.error().message();
    return T{};
  }
  return std::move(r.value());
}

class DeviceTest : public testing::Test {
 protected:
  void SetUp() override {
    MDEVMIG_REQUIRE_LAB();
    inst_ = std::make_unique<Instance>("mdevmig_sim0", "quarter");
    ASSERT_TRUE(inst_->ok());
    auto m = vfio::open_mdev(inst_->uuid());
    ASSERT_TRUE(m.ok()) << m.error().message();
    mdev_.emplace(std::move(m.value()));
  }
  void TearDown() override {
    guest_map_.reset();
    mdev_.reset();
    inst_.reset();
  }

  const vfio::Device& dev() { return mdev_->device; }

  uint32_t cfg32(uint32_t off) { return must(dev().read_as<uint32_t>(kCfg, off), "config read"); }
  uint16_t cfg16(uint32_t off) { return must(dev().read_as<uint16_t>(kCfg, off), "config read"); }
  void set_cfg32(uint32_t off, uint32_t v) { ASSERT_TRUE(dev().write_as(kCfg, off, v).ok()); }
  void set_cfg16(uint32_t off, uint16_t v) { ASSERT_TRUE(dev().write_as(kCfg, off, v).ok()); }
  uint32_t reg(uint32_t off) { return must(dev().read_as<uint32_t>(kBar0, off), "BAR0 read"); }
  void set_reg(uint32_t off, uint32_t v) { ASSERT_TRUE(dev().write_as(kBar0, off, v).ok()); }

  // Maps guest memory for DMA and programs the ring; MSI on vector 0 if `msi`.
  void setup_dma(bool msi) {
    auto g = Mapping::anonymous(kGuestSize);
    ASSERT_TRUE(g.ok()) << g.error().message();
    guest_map_.emplace(std::move(g.value()));
    guest_ = static_cast<uint8_t*>(guest_map_->data());
    auto r = mdev_->container.map_dma(kIova, guest_, kGuestSize, vfio::DmaAccess::kReadWrite);
    ASSERT_TRUE(r.ok()) << r.error().message();

    rig_.emplace(dev(), guest_);
    if (msi) {
      auto e = vfio::EventFd::create();
      ASSERT_TRUE(e.ok());
      irq_.emplace(std::move(e.value()));
      int fd = irq_->fd();
      ASSERT_TRUE(dev().set_irq_eventfds(VFIO_PCI_MSI_IRQ_INDEX, 0, {&fd, 1}).ok());
    }
    rig_->program(msi);
  }

  mdevmig_dma_cmpl* cmpl(uint32_t slot) { return rig_->cmpl(slot); }
  uint32_t submit(const mdevmig_dma_desc& d) { return rig_->submit(d); }
  uint32_t wait(uint32_t slot) { return rig_->wait(slot); }

  Mapping map_bar2() {
    auto m = dev().mmap_region(kBar2, 0);
    if (!m.ok()) {
      ADD_FAILURE() << "mmap BAR2: " << m.error().message();
      return Mapping{};
    }
    return std::move(m.value());
  }

  std::unique_ptr<Instance> inst_;
  std::optional<vfio::OpenMdev> mdev_;
  std::optional<Mapping> guest_map_;
  uint8_t* guest_ = nullptr;
  std::optional<vfio::EventFd> irq_;
  std::optional<DmaRig> rig_;
};

TEST_F(DeviceTest, ConfigSpaceIdentifiesTheDeviceAndSizesItsBars) {
  EXPECT_EQ(cfg32(PCI_VENDOR_ID), (MDEVMIG_PCI_DEVICE_ID << 16) | MDEVMIG_PCI_VENDOR_ID);
  EXPECT_EQ(cfg32(PCI_CLASS_REVISION) >> 8, static_cast<uint32_t>(MDEVMIG_PCI_CLASS));
  EXPECT_EQ(cfg32(PCI_SUBSYSTEM_VENDOR_ID),
            (MDEVMIG_PCI_SUBSYS_ID << 16) | MDEVMIG_PCI_SUBSYS_VENDOR_ID);
  EXPECT_TRUE(cfg16(PCI_STATUS) & PCI_STATUS_CAP_LIST);
  uint8_t cap = cfg32(PCI_CAPABILITY_LIST) & 0xff;
  ASSERT_EQ(cap, MDEVMIG_CFG_MSI_CAP);
  EXPECT_EQ(cfg32(cap) & 0xff, static_cast<uint32_t>(PCI_CAP_ID_MSI));
  EXPECT_EQ((cfg32(PCI_INTERRUPT_LINE) >> 8) & 0xff, 1u) << "interrupt pin A";

  set_cfg32(PCI_BASE_ADDRESS_0, 0xffffffff);
  EXPECT_EQ(cfg32(PCI_BASE_ADDRESS_0), ~(MDEVMIG_REGS_SIZE - 1u));
  set_cfg32(PCI_BASE_ADDRESS_2, 0xffffffff);
  set_cfg32(PCI_BASE_ADDRESS_3, 0xffffffff);
  uint64_t bar2 = (uint64_t{cfg32(PCI_BASE_ADDRESS_3)} << 32) | cfg32(PCI_BASE_ADDRESS_2);
  EXPECT_EQ(bar2 & 0xf, uint64_t{PCI_BASE_ADDRESS_MEM_TYPE_64 | PCI_BASE_ADDRESS_MEM_PREFETCH});
  EXPECT_EQ(~(bar2 & ~0xfull) + 1, kQuarterSize);
  // Unimplemented BARs and the ROM read 0 and ignore writes.
  set_cfg32(PCI_BASE_ADDRESS_1, 0xffffffff);
  EXPECT_EQ(cfg32(PCI_BASE_ADDRESS_1), 0u);
  EXPECT_EQ(cfg32(PCI_ROM_ADDRESS), 0u);
}

TEST_F(DeviceTest, DeviceAndRegionInfoDescribeTheDevice) {
  const auto& info = dev().info();
  EXPECT_TRUE(info.flags & VFIO_DEVICE_FLAGS_PCI);
  EXPECT_TRUE(info.flags & VFIO_DEVICE_FLAGS_RESET);
  EXPECT_GE(info.num_regions, uint32_t{VFIO_PCI_NUM_REGIONS});
  EXPECT_EQ(info.num_irqs, uint32_t{VFIO_PCI_NUM_IRQS});

  auto cfg = ASSERT_OK(dev().region(kCfg));
  EXPECT_EQ(cfg.value()->size, 256u);
  auto bar0 = ASSERT_OK(dev().region(kBar0));
  EXPECT_EQ(bar0.value()->size, uint64_t{MDEVMIG_REGS_SIZE});
  EXPECT_FALSE(bar0.value()->mmappable());
  auto bar2 = ASSERT_OK(dev().region(kBar2));
  EXPECT_EQ(bar2.value()->size, kQuarterSize);
  ASSERT_TRUE(bar2.value()->mmappable());
  auto areas = bar2.value()->mmap_areas();
  ASSERT_EQ(areas.size(), 1u);
  EXPECT_EQ(areas[0].offset, 0u);
  EXPECT_EQ(areas[0].size, kQuarterSize);
  for (uint32_t i : {1u, 3u, 4u, 5u, 6u, 8u}) {
    auto r = ASSERT_OK(dev().region(i));
    EXPECT_EQ(r.value()->size, 0u) << "region " << i;
  }
  auto intx = ASSERT_OK(dev().irq_info(VFIO_PCI_INTX_IRQ_INDEX));
  EXPECT_EQ(intx.value().count, 1u);
  EXPECT_TRUE(intx.value().flags & VFIO_IRQ_INFO_AUTOMASKED);
  auto msi = ASSERT_OK(dev().irq_info(VFIO_PCI_MSI_IRQ_INDEX));
  EXPECT_EQ(msi.value().count, uint32_t{MDEVMIG_MSI_MAX_VECTORS});
  auto msix = ASSERT_OK(dev().irq_info(VFIO_PCI_MSIX_IRQ_INDEX));
  EXPECT_EQ(msix.value().count, 0u);
}

TEST_F(DeviceTest, BadIoctlArgumentsAndOffsetsAreRefused) {
  const int fd = dev().fd();
  vfio_region_info ri{};
  ri.argsz = 8;  // shorter than the fixed part
  ri.index = kBar0;
  EXPECT_EQ(ioctl(fd, VFIO_DEVICE_GET_REGION_INFO, &ri), -1);
  EXPECT_EQ(errno, EINVAL);
  ri.argsz = sizeof ri;
  ri.index = 100;
  EXPECT_EQ(ioctl(fd, VFIO_DEVICE_GET_REGION_INFO, &ri), -1);
  EXPECT_EQ(errno, EINVAL);

  vfio_irq_info ii{};
  ii.argsz = sizeof ii;
  ii.index = VFIO_PCI_NUM_IRQS;
  EXPECT_EQ(ioctl(fd, VFIO_DEVICE_GET_IRQ_INFO, &ii), -1);
  EXPECT_EQ(errno, EINVAL);

  // SET_IRQS: a header followed by two eventfd slots.
  alignas(8) uint8_t buf[sizeof(vfio_irq_set) + 2 * sizeof(int32_t)] = {};
  auto* set = reinterpret_cast<vfio_irq_set*>(buf);
  auto* fds = reinterpret_cast<int32_t*>(buf + sizeof(vfio_irq_set));
  set->argsz = sizeof buf;
  set->flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
  set->index = VFIO_PCI_MSIX_IRQ_INDEX;  // not implemented
  set->count = 1;
  fds[0] = -1;
  EXPECT_EQ(ioctl(fd, VFIO_DEVICE_SET_IRQS, set), -1);
  EXPECT_EQ(errno, EINVAL);
  set->index = VFIO_PCI_MSI_IRQ_INDEX;
  set->start = MDEVMIG_MSI_MAX_VECTORS - 1;
  set->count = 2;  // runs past the last vector
  EXPECT_EQ(ioctl(fd, VFIO_DEVICE_SET_IRQS, set), -1);
  EXPECT_EQ(errno, EINVAL);
  set->start = 0;
  set->count = 1;
  fds[0] = 12345;  // not an eventfd
  EXPECT_EQ(ioctl(fd, VFIO_DEVICE_SET_IRQS, set), -1);
  EXPECT_EQ(ioctl(fd, _IO(VFIO_TYPE, VFIO_BASE + 60), 0), -1);
  EXPECT_EQ(errno, ENOTTY);

  // Offsets: past BAR0, in a region the device lacks, outside this instance's window.
  const uint64_t bar0_off = must(dev().region(kBar0), "region")->offset;
  uint32_t v = 0;
  EXPECT_EQ(pread(fd, &v, 4, bar0_off + MDEVMIG_REGS_SIZE), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(pread(fd, &v, 2, bar0_off + MDEVMIG_REGS_SIZE - 1), -1);
  EXPECT_EQ(pread(fd, &v, 4, must(dev().region(4), "region")->offset), -1);
  EXPECT_EQ(pread(fd, &v, 4, bar0_off ^ (1ull << 44)), -1);
  EXPECT_EQ(errno, EINVAL);

  // mmap: BAR0 is not mappable; BAR2 past its end or private is refused.
  EXPECT_EQ(mmap(nullptr, 4096, PROT_READ, MAP_SHARED, fd, bar0_off), MAP_FAILED);
  const uint64_t bar2_off = must(dev().region(kBar2), "region")->offset;
  EXPECT_EQ(mmap(nullptr, 8192, PROT_READ, MAP_SHARED, fd, bar2_off + kQuarterSize - 4096),
            MAP_FAILED);
  EXPECT_EQ(mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, bar2_off), MAP_FAILED);
}

TEST_F(DeviceTest, RegistersIdentifyTheModelAndResetClearsThem) {
  EXPECT_EQ(reg(MDEVMIG_REG_ID), MDEVMIG_ID_MAGIC);
  EXPECT_EQ(reg(MDEVMIG_REG_VERSION), uint32_t{MDEVMIG_MODEL_VERSION});
  EXPECT_EQ((uint64_t{reg(MDEVMIG_REG_MEM_SIZE_HI)} << 32) | reg(MDEVMIG_REG_MEM_SIZE_LO),
            kQuarterSize);
  set_reg(MDEVMIG_REG_SCRATCH(3), 0xfeedf00d);
  EXPECT_EQ(reg(MDEVMIG_REG_SCRATCH(3)), 0xfeedf00du);
  auto r = dev().read_as<uint64_t>(kBar0, MDEVMIG_REG_SCRATCH(2));  // 8-byte access
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value() >> 32, 0xfeedf00dull);
  ASSERT_TRUE(dev().reset().ok());
  EXPECT_EQ(reg(MDEVMIG_REG_SCRATCH(3)), 0u);
}

TEST_F(DeviceTest, EveryDmaOpcodeWorksEndToEndWithMsi) {
  setup_dma(/*msi=*/true);
  Mapping bar2 = map_bar2();
  ASSERT_TRUE(bar2.valid());
  auto* mem = static_cast<uint8_t*>(bar2.data());
  std::mt19937_64 rng(42);
  const size_t n = 200000;  // not a multiple of the step or the page size
  uint8_t* src = guest_ + kDataOff;
  for (size_t i = 0; i < n; i += 8) {
    uint64_t x = rng();
    std::memcpy(src + i, &x, std::min<size_t>(8, n - i));
  }

  // FILL device memory, then copy it out to the guest.
  uint32_t s = submit(desc(MDEVMIG_DMA_OP_FILL, 0, 4096, 10000, 0x1122334455667788));
  ASSERT_EQ(wait(s), MDEVMIG_DMA_ST_OK);
  EXPECT_EQ(cmpl(s)->bytes_done, 10000u);
  for (size_t i = 0; i < 10000; ++i)
    ASSERT_EQ(mem[4096 + i], static_cast<uint8_t>(0x1122334455667788ull >> (8 * (i % 8)))) << i;

  s = submit(desc(MDEVMIG_DMA_OP_COPY_TO_DEV, kIova + kDataOff, 1u << 20, n, 0, 77));
  ASSERT_EQ(wait(s), MDEVMIG_DMA_ST_OK);
  EXPECT_EQ(cmpl(s)->user_data, 77u);
  EXPECT_EQ(std::memcmp(mem + (1u << 20), src, n), 0);

  s = submit(desc(MDEVMIG_DMA_OP_COPY_FROM_DEV, 1u << 20, kIova + kDataOff + (1u << 20), n));
  ASSERT_EQ(wait(s), MDEVMIG_DMA_ST_OK);
  EXPECT_EQ(std::memcmp(guest_ + kDataOff + (1u << 20), src, n), 0);

  s = submit(
      desc(MDEVMIG_DMA_OP_COPY_GUEST, kIova + kDataOff, kIova + kDataOff + (2u << 20), 4096 * 3));
  ASSERT_EQ(wait(s), MDEVMIG_DMA_ST_OK);
  EXPECT_EQ(std::memcmp(guest_ + kDataOff + (2u << 20), src, 4096 * 3), 0);

  s = submit(desc(MDEVMIG_DMA_OP_HASH, 1u << 20, kIova + kDataOff + (2u << 20) + (1u << 19), n));
  ASSERT_EQ(wait(s), MDEVMIG_DMA_ST_OK);
  uint64_t h;
  std::memcpy(&h, guest_ + kDataOff + (2u << 20) + (1u << 19), 8);
  EXPECT_EQ(h, XXH64(src, n, 0));

  EXPECT_EQ(cmpl(s)->seq, 4u) << "sequence numbers count from 0";
  EXPECT_EQ(reg(MDEVMIG_REG_RING_HEAD), rig_->tail());
  auto fired = irq_->wait(5s);
  ASSERT_TRUE(fired.ok()) << fired.error().message();
  EXPECT_GE(fired.value(), 1u);
  EXPECT_TRUE(reg(MDEVMIG_REG_INT_STATUS) & MDEVMIG_INT_DONE);
}

TEST_F(DeviceTest, BadDescriptorsCompleteWithErrorsAndTheQueueGoesOn) {
  setup_dma(/*msi=*/true);
  uint32_t a = submit(desc(MDEVMIG_DMA_OP_COPY_TO_DEV, 0x7000000000ull, 0, 4096));
  uint32_t b = submit(desc(MDEVMIG_DMA_OP_FILL, 0, kQuarterSize - 8, 16, 1));
  uint32_t c = submit(desc(99, 0, 0, 1));
  uint32_t d = submit(desc(MDEVMIG_DMA_OP_COPY_FROM_DEV, 0, kIova + kGuestSize - 100, 4096));
  uint32_t e = submit(desc(MDEVMIG_DMA_OP_FILL, 0, 0, 64, 7));
  EXPECT_EQ(wait(a), MDEVMIG_DMA_ST_READ_FAULT);
  EXPECT_EQ(wait(b), MDEVMIG_DMA_ST_BAD_RANGE);
  EXPECT_EQ(wait(c), MDEVMIG_DMA_ST_BAD_OPCODE);
  EXPECT_EQ(wait(d), MDEVMIG_DMA_ST_WRITE_FAULT);
  EXPECT_EQ(wait(e), MDEVMIG_DMA_ST_OK);
  EXPECT_EQ(reg(MDEVMIG_REG_ERR_DESC), 4u);
  EXPECT_TRUE(reg(MDEVMIG_REG_INT_STATUS) & MDEVMIG_INT_ERROR);
}

TEST_F(DeviceTest, IntxIsDeliveredAutomaskedAndUnmasked) {
  set_cfg16(PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
  auto e = vfio::EventFd::create();
  ASSERT_TRUE(e.ok());
  int fd = e.value().fd();
  ASSERT_TRUE(dev().set_irq_eventfds(VFIO_PCI_INTX_IRQ_INDEX, 0, {&fd, 1}).ok());
  set_reg(MDEVMIG_REG_INT_SET, MDEVMIG_INT_SW);
  auto got = e.value().wait(5s);
  ASSERT_TRUE(got.ok()) << got.error().message();
  EXPECT_TRUE(cfg16(PCI_STATUS) & PCI_STATUS_INTERRUPT);
  // Automasked: raising again while masked signals nothing.
  set_reg(MDEVMIG_REG_INT_SET, MDEVMIG_INT_SW);
  EXPECT_FALSE(e.value().wait(200ms).ok());
  // Unmasking with the line still up signals again.
  ASSERT_TRUE(dev().unmask_irq(VFIO_PCI_INTX_IRQ_INDEX, 0).ok());
  EXPECT_TRUE(e.value().wait(5s).ok());
  // Clear the cause, unmask: quiet.
  set_reg(MDEVMIG_REG_INT_STATUS, MDEVMIG_INT_SW);
  EXPECT_FALSE(cfg16(PCI_STATUS) & PCI_STATUS_INTERRUPT);
  ASSERT_TRUE(dev().unmask_irq(VFIO_PCI_INTX_IRQ_INDEX, 0).ok());
  EXPECT_FALSE(e.value().wait(200ms).ok());
  ASSERT_TRUE(dev().disable_irq(VFIO_PCI_INTX_IRQ_INDEX).ok());
}

// VFIO_IRQ_SET_ACTION_UNMASK with an eventfd on INTx (what QEMU under KVM installs for
// KVM's irqfd resampler): -1 drops it.
int set_intx_unmask_fd(const vfio::Device& d, int32_t fd) {
  alignas(vfio_irq_set) unsigned char buf[sizeof(vfio_irq_set) + sizeof(int32_t)] = {};
  auto* set = reinterpret_cast<vfio_irq_set*>(buf);
  set->argsz = sizeof(buf);
  set->flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_UNMASK;
  set->index = VFIO_PCI_INTX_IRQ_INDEX;
  set->start = 0;
  set->count = 1;
  std::memcpy(set->data, &fd, sizeof(fd));
  return ioctl(d.fd(), VFIO_DEVICE_SET_IRQS, set) == 0 ? 0 : errno;
}

TEST_F(DeviceTest, IntxUnmaskEventfdUnmasksAsTheIoctlDoes) {
  set_cfg16(PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
  auto trigger = vfio::EventFd::create();
  auto unmask = vfio::EventFd::create();
  ASSERT_TRUE(trigger.ok() && unmask.ok());
  int fd = trigger.value().fd();
  ASSERT_TRUE(dev().set_irq_eventfds(VFIO_PCI_INTX_IRQ_INDEX, 0, {&fd, 1}).ok());
  ASSERT_EQ(set_intx_unmask_fd(dev(), unmask.value().fd()), 0);
  EXPECT_EQ(set_intx_unmask_fd(dev(), -2), EINVAL);
  set_reg(MDEVMIG_REG_INT_SET, MDEVMIG_INT_SW);
  ASSERT_TRUE(trigger.value().wait(5s).ok());
  // Masked on delivery: nothing more until the unmask eventfd fires; with the line
  // still up, that signals again.
  EXPECT_FALSE(trigger.value().wait(200ms).ok());
  ASSERT_TRUE(unmask.value().signal().ok());
  EXPECT_TRUE(trigger.value().wait(5s).ok());
  // Cause cleared: the next unmask is quiet.
  set_reg(MDEVMIG_REG_INT_STATUS, MDEVMIG_INT_SW);
  ASSERT_TRUE(unmask.value().signal().ok());
  EXPECT_FALSE(trigger.value().wait(300ms).ok());
  // Replaced by another eventfd, then dropped: the old one unmasks nothing.
  auto unmask2 = vfio::EventFd::create();
  ASSERT_TRUE(unmask2.ok());
  ASSERT_EQ(set_intx_unmask_fd(dev(), unmask2.value().fd()), 0);
  set_reg(MDEVMIG_REG_INT_SET, MDEVMIG_INT_SW);
  ASSERT_TRUE(trigger.value().wait(5s).ok());
  ASSERT_TRUE(unmask.value().signal().ok());
  EXPECT_FALSE(trigger.value().wait(300ms).ok());
  ASSERT_TRUE(unmask2.value().signal().ok());
  EXPECT_TRUE(trigger.value().wait(5s).ok());
  ASSERT_EQ(set_intx_unmask_fd(dev(), -1), 0);
  ASSERT_TRUE(unmask2.value().signal().ok());
  EXPECT_FALSE(trigger.value().wait(300ms).ok());
  // Installed again and left for close to drop (the module must not leak it).
  ASSERT_EQ(set_intx_unmask_fd(dev(), unmask.value().fd()), 0);
  set_reg(MDEVMIG_REG_INT_STATUS, MDEVMIG_INT_SW);
}

TEST_F(DeviceTest, CloseLeavesNothingForTheNextOpener) {
  {
    Mapping bar2 = map_bar2();
    ASSERT_TRUE(bar2.valid());
    std::memset(bar2.data(), 0xab, 3 * 4096);
  }
  set_reg(MDEVMIG_REG_SCRATCH(0), 1234);
  mdev_.reset();
  for (int round = 0; round < 10; ++round) {
    auto m = vfio::open_mdev(inst_->uuid());
    ASSERT_TRUE(m.ok()) << "round " << round << ": " << m.error().message();
    mdev_.emplace(std::move(m.value()));
    EXPECT_EQ(reg(MDEVMIG_REG_SCRATCH(0)), 0u);
    std::vector<uint8_t> buf(3 * 4096);
    ASSERT_TRUE(dev().read(kBar2, 0, std::as_writable_bytes(std::span(buf))).ok());
    EXPECT_EQ(std::count(buf.begin(), buf.end(), 0), static_cast<long>(buf.size()))
        << "round " << round;
    set_reg(MDEVMIG_REG_SCRATCH(0), 1);
    mdev_.reset();
  }
}

TEST_F(DeviceTest, TrackedModeReportsExactlyThePagesWritten) {
  Mapping bar2 = map_bar2();
  ASSERT_TRUE(bar2.valid());
  auto* mem = static_cast<volatile uint8_t*>(bar2.data());
  uint8_t sink = mem[4096 * 50];  // a read before tracking maps the page
  ASSERT_EQ(inst_->set_attr("mode", "tracked"), 0);
  EXPECT_EQ(inst_->attr("mode"), "tracked");
  EXPECT_EQ(inst_->attr("dirty_pages"), "0");
  for (unsigned p : {3u, 10u, 11u, 100u, 4095u}) mem[4096ull * p + 17] = 1;
  for (unsigned p : {50u, 60u, 3u}) sink += mem[4096ull * p];  // reads dirty nothing
  mem[4096 * 3 + 100] = 2;                                     // a second write to page 3
  EXPECT_EQ(inst_->attr("dirty_ranges"), "3,10-11,100,4095");
  EXPECT_EQ(inst_->attr("dirty_pages"), "5");
  // Clear re-arms: the same pages must fault and be recorded again.
  ASSERT_EQ(inst_->set_attr("dirty_pages", "clear"), 0);
  EXPECT_EQ(inst_->attr("dirty_pages"), "0");
  mem[4096 * 11] = 3;
  uint64_t v = 5;
  ASSERT_TRUE(dev().write_as(kBar2, 4096 * 7 + 8, v).ok());  // region writes count too
  EXPECT_EQ(inst_->attr("dirty_ranges"), "7,11");
  ASSERT_EQ(inst_->set_attr("mode", "passthrough"), 0);
  mem[4096 * 20] = 1;
  EXPECT_EQ(inst_->attr("mode"), "passthrough");
  EXPECT_EQ(mem[4096 * 11], 3);
  EXPECT_EQ(mem[4096 * 7 + 8], 5);
  (void)sink;
}

// ---- map-ahead and write-protecting re-arm (kmod/mem.c) ----------------------------------

constexpr size_t kBlockPages = 16;  // a fault maps the aligned 64 KiB block around it

// Minor faults this thread has taken so far (a BAR2 fault that maps counts as one).
long minor_faults() {
  rusage ru{};
  getrusage(RUSAGE_THREAD, &ru);
  return ru.ru_minflt;
}

// Sorted page numbers as dirty_ranges prints them: "3,10-11,100".
std::string as_ranges(std::vector<size_t> pages) {
  std::sort(pages.begin(), pages.end());
  std::string out;
  for (size_t i = 0; i < pages.size();) {
    size_t j = i;
    while (j + 1 < pages.size() && pages[j + 1] == pages[j] + 1) ++j;
    out += (out.empty() ? "" : ",") + std::to_string(pages[i]);
    if (j > i) out += "-" + std::to_string(pages[j]);
    i = j + 1;
  }
  return out;
}

thread_local sigjmp_buf* t_probe_jump = nullptr;

void on_probe_fault(int sig, siginfo_t*, void*) {
  if (!t_probe_jump) {
    signal(sig, SIG_DFL);
    raise(sig);
    return;
  }
  siglongjmp(*t_probe_jump, 1);
}

// Reads *p; false if that raised SIGBUS (no mapping, and the fault refused one).
bool read_maps(const volatile uint8_t* p) {
  struct sigaction sa {
  }, old{};
  sa.sa_sigaction = on_probe_fault;
  sa.sa_flags = SA_SIGINFO | SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGBUS, &sa, &old);
  sigjmp_buf jb;
  bool ok = false;
  if (sigsetjmp(jb, 1) == 0) {
    t_probe_jump = &jb;
    std::atomic_signal_fence(std::memory_order_seq_cst);
    (void)*p;
    std::atomic_signal_fence(std::memory_order_seq_cst);
    ok = true;
  }
  t_probe_jump = nullptr;
  sigaction(SIGBUS, &old, nullptr);
  return ok;
}

TEST_F(DeviceTest, PassthroughFaultMapsTheWholeBlock) {
  Mapping bar2 = map_bar2();
  ASSERT_TRUE(bar2.valid());
  auto* mem = static_cast<volatile uint8_t*>(bar2.data());
  constexpr size_t kPages = 64 * kBlockPages;  // 4 MiB, 64 blocks
  // Writes first, then reads: one fault per block, not one per page.
  long before = minor_faults();
  for (size_t p = 0; p < kPages; ++p) mem[p * 4096 + 8] = static_cast<uint8_t>(p);
  long faults = minor_faults() - before;
  EXPECT_LE(faults, 64 + 8) << "pages written: " << kPages;
  EXPECT_GE(faults, 64) << "every block must fault once";
  before = minor_faults();
  for (size_t p = 0; p < kPages; ++p) EXPECT_EQ(mem[p * 4096 + 8], static_cast<uint8_t>(p));
  EXPECT_LE(minor_faults() - before, 8) << "the writes mapped every page";
  // The block is aligned in the BAR, and clipped to the vma: a one-page mapping in the
  // middle of a block maps that page only, and sees the same data.
  auto one = dev().mmap_region(kBar2, 0);  // the whole BAR, to compare
  ASSERT_TRUE(one.ok());
  const uint64_t bar2_off = must(dev().region(kBar2), "region")->offset;
  void* small = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, dev().fd(),
                     bar2_off + 4096 * (kPages + 5));
  ASSERT_NE(small, MAP_FAILED);
  static_cast<volatile uint8_t*>(small)[0] = 0x77;
  EXPECT_EQ(static_cast<uint8_t*>(one.value().data())[4096 * (kPages + 5)], 0x77);
  munmap(small, 4096);
}

TEST_F(DeviceTest, ASwitchUnmapsEveryPageMappedAhead) {
  Mapping bar2 = map_bar2();
  ASSERT_TRUE(bar2.valid());
  auto* mem = static_cast<volatile uint8_t*>(bar2.data());
  // One touch per block maps the neighbours writable, in passthrough.
  for (size_t b = 0; b < 8; ++b) mem[b * kBlockPages * 4096] = 1;
  // Tracked: the neighbours were unmapped with the page that faulted, so writes to them
  // fault again and are recorded.
  ASSERT_EQ(inst_->set_attr("mode", "tracked"), 0);
  for (size_t b = 0; b < 8; ++b) mem[(b * kBlockPages + 1 + b) * 4096] = 2;
  EXPECT_EQ(inst_->attr("dirty_ranges"), "1,18,35,52,69,86,103,120");
  // Trapped: no page of a block mapped ahead is still reachable through the mapping.
  ASSERT_EQ(inst_->set_attr("mode", "passthrough"), 0);
  for (size_t b = 0; b < 8; ++b) mem[b * kBlockPages * 4096] = 3;
  ASSERT_EQ(inst_->set_attr("mode", "trapped"), 0);
  for (size_t p = 0; p < 8 * kBlockPages; ++p)
    EXPECT_FALSE(read_maps(mem + p * 4096)) << "page " << p << " still mapped when trapped";
  ASSERT_EQ(inst_->set_attr("mode", "passthrough"), 0);
  EXPECT_EQ(mem[(3 * kBlockPages + 4) * 4096], 2);
}

TEST_F(DeviceTest, TrackedModeMapsAheadReadOnlyAndStaysExact) {
  Mapping bar2 = map_bar2();
  ASSERT_TRUE(bar2.valid());
  auto* mem = static_cast<volatile uint8_t*>(bar2.data());
  ASSERT_EQ(inst_->set_attr("mode", "tracked"), 0);
  constexpr size_t kBlocks = 32;
  uint8_t sink = 0;
  // Reads map whole blocks read-only; one write per block, each at a different offset
  // in its block, must mark exactly that page, not its block.
  for (size_t p = 0; p < kBlocks * kBlockPages; ++p) sink += mem[p * 4096];
  std::vector<size_t> pages;
  for (size_t b = 0; b < kBlocks; ++b) {
    size_t p = b * kBlockPages + b % kBlockPages;
    mem[p * 4096 + 5] = static_cast<uint8_t>(b + 1);
    pages.push_back(p);
  }
  EXPECT_EQ(inst_->attr("dirty_ranges"), as_ranges(pages));
  EXPECT_EQ(inst_->attr("dirty_pages"), std::to_string(kBlocks));
  // The same after writes that fault first (no read before): a write fault maps its
  // neighbours read-only too.
  ASSERT_EQ(inst_->set_attr("mode", "passthrough"), 0);
  ASSERT_EQ(inst_->set_attr("mode", "tracked"), 0);
  for (size_t b = 0; b < kBlocks; ++b) mem[(b * kBlockPages + b % kBlockPages) * 4096 + 6] = 9;
  for (size_t b = 0; b < kBlocks; ++b) mem[(b * kBlockPages + (b + 3) % kBlockPages) * 4096] = 9;
  pages.clear();
  for (size_t b = 0; b < kBlocks; ++b) {
    pages.push_back(b * kBlockPages + b % kBlockPages);
    pages.push_back(b * kBlockPages + (b + 3) % kBlockPages);
  }
  EXPECT_EQ(inst_->attr("dirty_ranges"), as_ranges(pages));
  (void)sink;
}

TEST_F(DeviceTest, ReArmKeepsReadMappingsAndTracksTheNextWrite) {
  Mapping bar2 = map_bar2();
  ASSERT_TRUE(bar2.valid());
  auto* mem = static_cast<volatile uint8_t*>(bar2.data());
  constexpr size_t kPages = 16 * kBlockPages;
  ASSERT_EQ(inst_->set_attr("mode", "tracked"), 0);
  for (size_t p = 0; p < kPages; ++p) mem[p * 4096 + 1] = static_cast<uint8_t>(p * 3);
  EXPECT_EQ(inst_->attr("dirty_pages"), std::to_string(kPages));
  uint8_t sink = 0;
  for (int pass = 0; pass < 3; ++pass) {
    ASSERT_EQ(inst_->set_attr("dirty_pages", "clear"), 0);  // re-arm
    EXPECT_EQ(inst_->attr("dirty_pages"), "0") << "pass " << pass;
    // Reads after a re-arm see the data and take no fault: the mappings stayed.
    long before = minor_faults();
    for (size_t p = 0; p < kPages; ++p) sink += mem[p * 4096 + 1];
    long faults = minor_faults() - before;
    EXPECT_LT(faults, 4) << "pass " << pass << ": reads refaulted after a re-arm";
    for (size_t p = 0; p < kPages; ++p)
      ASSERT_EQ(mem[p * 4096 + 1], static_cast<uint8_t>(p * 3 + pass)) << "pass " << pass;
    // A write after a re-arm is tracked, once per page however often it is written.
    for (size_t p = pass; p < kPages; p += 37) mem[p * 4096 + 1] = mem[p * 4096 + 1] + 1;
    std::vector<size_t> written;
    for (size_t p = pass; p < kPages; p += 37) written.push_back(p);
    EXPECT_EQ(inst_->attr("dirty_ranges"), as_ranges(written)) << "pass " << pass;
    // The pages not written this pass move on too, untracked by this pass's check.
    for (size_t p = 0; p < kPages; ++p)
      if (p < static_cast<size_t>(pass) || (p - pass) % 37 != 0)
        mem[p * 4096 + 1] = mem[p * 4096 + 1] + 1;
  }
  (void)sink;
}

// ---- re-arming never reaches another instance's mappings (kmod/mem.c) --------------------
// Before 6.10 all VFIO device files share one address_space, the anonymous inode's; only
// the per-instance offset windows (mdevmig.h) keep A's re-arm away from B's PTEs there.
// Both tests fail on 6.1 with a module whose instances all share window 0.

// A second instance next to the fixture's, opened and with its BAR2 mapped.
struct OtherInstance {
  Instance inst{"mdevmig_sim0", "quarter"};
  std::optional<vfio::OpenMdev> m;
  std::optional<Mapping> bar2;
  volatile uint8_t* mem = nullptr;

  OtherInstance() {
    if (!inst.ok()) return;
    auto opened = vfio::open_mdev(inst.uuid());
    if (!opened.ok()) {
      ADD_FAILURE() << "open: " << opened.error().message();
      return;
    }
    m.emplace(std::move(opened.value()));
    auto mapped = m->device.mmap_region(kBar2, 0);
    if (!mapped.ok()) {
      ADD_FAILURE() << "mmap BAR2: " << mapped.error().message();
      return;
    }
    bar2.emplace(std::move(mapped.value()));
    mem = static_cast<volatile uint8_t*>(bar2->data());
  }
  bool ok() const { return mem != nullptr; }
};

constexpr uint32_t kV1 = VFIO_PCI_NUM_REGIONS;  // the v1 migration region

// The fixture's instance saving through the v1 region (pre-copy: tracked, logging on),
// where every staged chunk is one harvest of its dirty set: the one way to see what a
// harvest reports.
class V1Saver {
 public:
  explicit V1Saver(const vfio::Device& dev) : dev_(dev) {
    started_ = set_state(VFIO_DEVICE_STATE_V1_RUNNING | VFIO_DEVICE_STATE_V1_SAVING);
  }
  ~V1Saver() {
    if (started_) set_state(VFIO_DEVICE_STATE_V1_RUNNING);
  }
  bool ok() const { return started_; }
  // Stages the next chunk; its size in bytes (0: nothing to send now).
  uint64_t stage() {
    auto off = dev_.read_as<uint64_t>(kV1, offsetof(vfio_device_migration_info, data_offset));
    EXPECT_TRUE(off.ok());
    auto size = dev_.read_as<uint64_t>(kV1, offsetof(vfio_device_migration_info, data_size));
    EXPECT_TRUE(size.ok());
    return size.ok() ? size.value() : 0;
  }
  // Stages until nothing is left to send now; false if that never happens.
  bool drain() {
    for (int i = 0; i < 1000; ++i)
      if (stage() == 0) return true;
    return false;
  }

 private:
  bool set_state(uint32_t s) {
    return dev_.write_as(kV1, offsetof(vfio_device_migration_info, device_state), s).ok();
  }
  const vfio::Device& dev_;
  bool started_ = false;
};

TEST_F(DeviceTest, AHarvestReportsNoPageAnotherInstanceWrote) {
  Mapping bar2 = map_bar2();  // A: the fixture's instance, mapped but never written
  ASSERT_TRUE(bar2.valid());
  OtherInstance b;
  ASSERT_TRUE(b.ok());
  ASSERT_EQ(b.inst.set_attr("mode", "tracked"), 0);
  V1Saver a(dev());
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(inst_->attr("mode"), "tracked");
  ASSERT_TRUE(a.drain()) << "A's initial pass never ended";

  // B writes; A's harvests must see none of it, B's all of it.
  const std::vector<size_t> pages{3, 10, 11, 100, 4095};
  for (int round = 0; round < 2; ++round) {
    for (size_t p : pages) b.mem[p * 4096 + 17] = static_cast<uint8_t>(round + 1);
    EXPECT_EQ(a.stage(), 0u) << "round " << round << ": A's harvest sent pages only B wrote";
    EXPECT_EQ(inst_->attr("dirty_pages"), "0") << "round " << round;
    // B's own harvest reports exactly its pages, and re-arms B.
    EXPECT_EQ(b.inst.attr("dirty_ranges"), as_ranges(pages)) << "round " << round;
    ASSERT_EQ(b.inst.set_attr("dirty_pages", "clear"), 0);
    EXPECT_EQ(b.inst.attr("dirty_pages"), "0") << "round " << round;
  }
  // Both still track their own writes.
  b.mem[4096 * 7] = 1;
  static_cast<volatile uint8_t*>(bar2.data())[4096 * 9] = 1;
  EXPECT_EQ(b.inst.attr("dirty_ranges"), "7");
  EXPECT_EQ(inst_->attr("dirty_ranges"), "9");
  EXPECT_GT(a.stage(), 4096u);
}

TEST_F(DeviceTest, AHarvestLeavesAnotherInstancesPassthroughMappingsAlone) {
  Mapping bar2 = map_bar2();
  ASSERT_TRUE(bar2.valid());
  ASSERT_EQ(inst_->set_attr("mode", "tracked"), 0);  // a switch zaps: before B maps
  OtherInstance b;                                   // in passthrough
  ASSERT_TRUE(b.ok());
  constexpr size_t kPages = 16 * kBlockPages;
  for (size_t p = 0; p < kPages; ++p) b.mem[p * 4096] = 1;  // every PTE writable
  // A harvest of A with nothing dirty: a write-protecting re-arm runs every time, a
  // zapping one only when a page was dirty.
  EXPECT_EQ(inst_->attr("dirty_pages"), "0");
  ASSERT_EQ(inst_->set_attr("dirty_pages", "clear"), 0);
  long before = minor_faults();
  for (size_t p = 0; p < kPages; ++p) b.mem[p * 4096] = 2;
  EXPECT_LT(minor_faults() - before, 4) << "B's writes faulted after A's harvest";
  EXPECT_EQ(b.inst.attr("dirty_pages"), "0");
  EXPECT_EQ(inst_->attr("dirty_pages"), "0");
}

TEST_F(DeviceTest, ModeSwitchesUnderConcurrentAccessLoseNothing) {
  Mapping bar2 = map_bar2();
  ASSERT_TRUE(bar2.valid());
  auto* mem = static_cast<uint8_t*>(bar2.data());
  constexpr size_t kPages = 64;  // mmap writer: pages [0, 64); region writer: [64, 128)
  std::vector<uint8_t> expect(2 * kPages * 4096, 0);
  std::atomic<bool> stop{false};
  std::atomic<int> rounds{0};

  std::thread mapper([&] {
    for (uint32_t r = 1; !stop; ++r) {
      for (size_t p = 0; p < kPages; ++p) {
        uint32_t word = r * 1000 + p;
        std::memcpy(mem + p * 4096 + (r % 64) * 64, &word, 4);
      }
      rounds = r;
    }
  });
  std::thread regioner([&, this] {
    std::vector<uint8_t> page(4096);
    for (uint32_t r = 1; !stop; ++r) {
      for (size_t p = kPages; p < 2 * kPages; p += 7) {
        std::memset(page.data(), static_cast<int>((r + p) & 0xff), page.size());
        if (!dev().write(kBar2, p * 4096, std::as_bytes(std::span(page))).ok()) ADD_FAILURE();
      }
    }
  });
  // Switch at least 60 times and until the writers have done several rounds, so that
  // switches really overlap writes however slow the machine is (bounded by a deadline).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  for (int i = 0; (i < 60 || rounds.load() < 5) && std::chrono::steady_clock::now() < deadline;
       ++i) {
    // EXPECT, not ASSERT: the writer threads must be joined whatever happens.
    EXPECT_EQ(inst_->set_attr("mode", i % 2 ? "passthrough" : "tracked"), 0) << "switch " << i;
    if (i % 10 == 9) {
      EXPECT_EQ(inst_->set_attr("dirty_pages", "clear"), 0);
    }
  }
  stop = true;
  mapper.join();
  regioner.join();
  ASSERT_GE(rounds.load(), 5) << "the writers made no progress within the deadline";

  // The region path and the mapping must agree, and the last round must be complete.
  std::vector<uint8_t> now(expect.size());
  ASSERT_TRUE(dev().read(kBar2, 0, std::as_writable_bytes(std::span(now))).ok());
  EXPECT_EQ(std::memcmp(now.data(), mem, kPages * 4096), 0) << "mmap and region views differ";
  // Every mmap write of the final round is visible (the last store per slot wins).
  const uint32_t last = rounds.load();
  for (size_t p = 0; p < kPages; ++p) {
    uint32_t word;
    std::memcpy(&word, now.data() + p * 4096 + (last % 64) * 64, 4);
    EXPECT_EQ(word, last * 1000 + p) << "page " << p;
  }
  EXPECT_EQ(XXH3_64bits(now.data(), now.size()), XXH3_64bits(mem, now.size()));
}

TEST_F(DeviceTest, ForcedTrappedModeHasNoMmapButRegionAccessWorks) {
  ASSERT_EQ(inst_->set_attr("force_trapped", "1"), 0);
  EXPECT_EQ(inst_->attr("mode"), "trapped");
  auto info = dev().query_region_info(kBar2);
  ASSERT_TRUE(info.ok());
  EXPECT_FALSE(info.value().mmappable());
  EXPECT_EQ(
      mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, dev().fd(), info.value().offset),
      MAP_FAILED);
  uint64_t v = 0x0123456789abcdefull;
  ASSERT_TRUE(dev().write_as(kBar2, kQuarterSize - 8, v).ok());
  EXPECT_EQ(must(dev().read_as<uint64_t>(kBar2, kQuarterSize - 8), "read"), v);
  ASSERT_EQ(inst_->set_attr("force_trapped", "0"), 0);
  Mapping bar2 = map_bar2();
  ASSERT_TRUE(bar2.valid());
  uint64_t seen;
  std::memcpy(&seen, static_cast<uint8_t*>(bar2.data()) + kQuarterSize - 8, 8);
  EXPECT_EQ(seen, v);
}

TEST_F(DeviceTest, InstancesNeverSeeEachOthersMemory) {
  Instance other("mdevmig_sim0", "quarter");
  ASSERT_TRUE(other.ok());
  auto m = vfio::open_mdev(other.uuid());
  ASSERT_TRUE(m.ok()) << m.error().message();
  Mapping mine = map_bar2();
  ASSERT_TRUE(mine.valid());
  std::memset(mine.data(), 0x5a, kQuarterSize);
  auto theirs = m.value().device.mmap_region(kBar2, 0);
  ASSERT_TRUE(theirs.ok());
  std::vector<uint8_t> zeros(kQuarterSize, 0);
  EXPECT_EQ(XXH3_64bits(theirs.value().data(), kQuarterSize),
            XXH3_64bits(zeros.data(), zeros.size()));
  EXPECT_NE(inst_->attr("memory"), other.attr("memory"));
}

// Guest pages the engine writes, as a set of page numbers relative to kIova.
std::vector<uint64_t> pages_of(const dirty::Bitmap& b) {
  std::vector<uint64_t> v;
  b.for_each_set([&](uint64_t p) { v.push_back(p); });
  return v;
}

TEST_F(DeviceTest, DmaLoggingAndContainerDirtyPagesReportExactlyTheEngineWrites) {
  setup_dma(/*msi=*/false);
  // Device DMA logging needs iova_bitmap_set(): in the vfio core before 6.8, later only
  // with CONFIG_IOMMUFD_DRIVER (not in Debian's config); the module offers it exactly
  // when it can report through it.
  auto probed = dev().probe_feature(VFIO_DEVICE_FEATURE_DMA_LOGGING_START, VFIO_DEVICE_FEATURE_SET);
  ASSERT_TRUE(probed.ok()) << probed.error().message();
  const bool logging = probed.value();
  if (kernel_release() < 608) {
    EXPECT_TRUE(logging) << "DMA logging missing on a pre-6.8 kernel";
  }
  const vfio::DmaLogRange range{kIova, kGuestSize};
  if (logging) {
    auto started = dev().dma_logging_start(4096, {&range, 1});
    ASSERT_TRUE(started.ok()) << started.error().message();
    EXPECT_FALSE(dev().dma_logging_start(4096, {&range, 1}).ok()) << "started twice";
  } else {
    EXPECT_FALSE(dev().dma_logging_start(4096, {&range, 1}).ok());
  }
  ASSERT_TRUE(mdev_->container.start_dirty_tracking().ok());
  // Drop what setting up wrote so far (nothing from the engine yet).
  ASSERT_TRUE(mdev_->container.dirty_bitmap(kIova, kGuestSize, 4096).ok());

  // Writes to guest memory: 3 pages + 1 byte out at data+5 pages, 8 bytes of hash at
  // data+20 pages, and the completion records (one page). FILL writes only device
  // memory; COPY_TO_DEV reads the guest.
  uint32_t s1 =
      submit(desc(MDEVMIG_DMA_OP_COPY_FROM_DEV, 0, kIova + kDataOff + 5 * 4096, 3 * 4096 + 1));
  uint32_t s2 = submit(desc(MDEVMIG_DMA_OP_HASH, 0, kIova + kDataOff + 20 * 4096, 4096));
  uint32_t s3 = submit(desc(MDEVMIG_DMA_OP_FILL, 0, 0, 65536, 1));
  uint32_t s4 = submit(desc(MDEVMIG_DMA_OP_COPY_TO_DEV, kIova + kDataOff + 40 * 4096, 0, 8192));
  for (uint32_t s : {s1, s2, s3, s4}) ASSERT_EQ(wait(s), MDEVMIG_DMA_ST_OK);

  const uint64_t d = kDataOff / 4096, c = kCmplOff / 4096;
  const std::vector<uint64_t> expect = {c, d + 5, d + 6, d + 7, d + 8, d + 20};
  if (logging) {
    auto log = dev().dma_logging_report(kIova, kGuestSize, 4096);
    ASSERT_TRUE(log.ok()) << log.error().message();
    EXPECT_EQ(pages_of(log.value()), expect);
    auto again = dev().dma_logging_report(kIova, kGuestSize, 4096);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again.value().count(), 0u) << "a report must clear what it returned";
  }
  auto bm = mdev_->container.dirty_bitmap(kIova, kGuestSize, 4096);
  ASSERT_TRUE(bm.ok()) << bm.error().message();
  EXPECT_EQ(pages_of(bm.value()), expect);
  ASSERT_TRUE(mdev_->container.stop_dirty_tracking().ok());
  if (logging) {
    ASSERT_TRUE(dev().dma_logging_stop().ok());
    EXPECT_FALSE(dev().dma_logging_report(kIova, kGuestSize, 4096).ok()) << "report after stop";
  }
}

TEST_F(DeviceTest, RepeatedOpenCloseCycles) {
  mdev_.reset();
  for (int i = 0; i < 20; ++i) {
    auto m = vfio::open_mdev(inst_->uuid());
    ASSERT_TRUE(m.ok()) << "cycle " << i << ": " << m.error().message();
    auto id = m.value().device.read_as<uint32_t>(kBar0, MDEVMIG_REG_ID);
    ASSERT_TRUE(id.ok());
    EXPECT_EQ(id.value(), MDEVMIG_ID_MAGIC);
  }
}

}  // namespace
}  // namespace mdevmig::lab
