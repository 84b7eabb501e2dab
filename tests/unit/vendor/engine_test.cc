// The DMA engine: every opcode, completions, interrupts, bounded steps, and every
// error path (bad descriptors, IOMMU faults on data, completions and the ring itself).
#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <numeric>

#include <gtest/gtest.h>

#include "sim.h"
#include "tools/guest/descriptors.h"
#include "tools/guest/sim_port.h"

namespace mdevmig::vendor_sim {
namespace {

constexpr uint64_t kMem = 1 << 20;
constexpr uint64_t kBuf = 0x40000000;  // guest buffer IOVA
constexpr uint64_t kBufSize = 1 << 20;
constexpr uint64_t kStep = MDEVMIG_DMA_STEP_BYTES;

class EngineTest : public ::testing::Test {
 protected:
  EngineTest() {
    EXPECT_TRUE(dev.iommu().map(kBuf, kBufSize));
    uint8_t* b = buf();
    for (uint64_t i = 0; i < kBufSize; i++) b[i] = static_cast<uint8_t>(i * 7 + (i >> 9));
    dev.clear_events();
  }
  uint8_t* buf(uint64_t off = 0) { return dev.iommu().translate(kBuf + off, kBufSize - off); }
  uint32_t reg(uint32_t off) { return dev.mmio_read32(off); }
  // Submits d, runs to idle, returns its completion.
  mdevmig_dma_cmpl exec(const mdevmig_dma_desc& d) {
    uint32_t slot = drv.submit(d);
    dev.run_to_idle();
    return drv.completion(slot);
  }

  SimDevice dev{kMem};
  guest::SimRing drv{dev};
};

TEST_F(EngineTest, CopyToDevice) {
  auto d = guest::copy_to_dev(kBuf + 100, 4096 + 3, 200000);
  d.user_data = 0xfeedface;
  auto c = exec(d);
  EXPECT_EQ(c.status, uint32_t{MDEVMIG_DMA_ST_OK});
  EXPECT_EQ(c.seq, 0u);
  EXPECT_EQ(c.user_data, 0xfeedfaceu);
  EXPECT_EQ(c.bytes_done, 200000u);
  EXPECT_EQ(0, std::memcmp(dev.mem() + 4096 + 3, buf(100), 200000));
  EXPECT_EQ(dev.mem()[4096 + 2], 0);
  EXPECT_EQ(dev.mem()[4096 + 3 + 200000], 0);
  // Exactly the written device pages are reported dirty.
  for (uint64_t p = 0; p < dev.dirty.size(); p++)
    EXPECT_EQ(dev.dirty[p], p >= 1 && p <= (4096 + 3 + 200000 - 1) / 4096) << p;
  EXPECT_EQ(reg(MDEVMIG_REG_SEQ), 1u);
  EXPECT_EQ(reg(MDEVMIG_REG_RING_HEAD), 1u);
  EXPECT_EQ(reg(MDEVMIG_REG_INT_STATUS), MDEVMIG_INT_DONE);
  EXPECT_TRUE(dev.intx);
  EXPECT_EQ(reg(MDEVMIG_REG_STATUS), MDEVMIG_STATUS_ENABLED);
}

TEST_F(EngineTest, CopyFromDevice) {
  for (uint64_t i = 0; i < kMem; i++) dev.mem()[i] = static_cast<uint8_t>(i ^ (i >> 8));
  auto c = exec(guest::copy_from_dev(kMem - 150000, kBuf + 1, 150000));
  EXPECT_EQ(c.status, uint32_t{MDEVMIG_DMA_ST_OK});
  EXPECT_EQ(0, std::memcmp(buf(1), dev.mem() + kMem - 150000, 150000));
  EXPECT_TRUE(std::none_of(dev.dirty.begin(), dev.dirty.end(), [](bool b) { return b; }));
}

TEST_F(EngineTest, CopyGuestToGuest) {
  std::vector<uint8_t> src(buf(5), buf(5) + 100003);
  auto c = exec(guest::copy_guest(kBuf + 5, kBuf + 500000, 100003));
  EXPECT_EQ(c.status, uint32_t{MDEVMIG_DMA_ST_OK});
  EXPECT_EQ(0, std::memcmp(buf(500000), src.data(), src.size()));
}

TEST_F(EngineTest, FillDeviceMemory) {
  const uint64_t pattern = 0x0123456789abcdefull;
  const uint64_t off = 3, len = 3 * kStep + 13;
  auto c = exec(guest::fill(off, len, pattern));
  EXPECT_EQ(c.status, uint32_t{MDEVMIG_DMA_ST_OK});
  for (uint64_t i = 0; i < len; i++)
    ASSERT_EQ(dev.mem()[off + i], static_cast<uint8_t>(pattern >> (8 * (i % 8)))) << i;
  EXPECT_EQ(dev.mem()[off + len], 0);
  EXPECT_EQ(dev.mem()[off - 1], 0);
  EXPECT_TRUE(dev.dirty[0] && dev.dirty[(off + len - 1) / 4096]);
}

TEST_F(EngineTest, HashOfDeviceMemory) {
  for (uint64_t i = 0; i < kMem; i++) dev.mem()[i] = static_cast<uint8_t>(i * 13);
  for (uint64_t len : std::initializer_list<uint64_t>{0, 1, 31, 32, kStep, 5 * kStep + 17}) {
    auto c = exec(guest::hash(777, len, kBuf + 8));
    EXPECT_EQ(c.status, uint32_t{MDEVMIG_DMA_ST_OK});
    EXPECT_EQ(mdevmig_get_le64(buf(8)), XXH64(dev.mem() + 777, len, 0)) << len;
  }
}

TEST_F(EngineTest, ZeroLengthCompletesInOneStep) {
  drv.submit(guest::copy_to_dev(kBuf, 0, 0));
  EXPECT_EQ(dev.run(1), 0);
  EXPECT_EQ(drv.completion(0).status, uint32_t{MDEVMIG_DMA_ST_OK});
  EXPECT_EQ(reg(MDEVMIG_REG_RING_HEAD), 1u);
}

TEST_F(EngineTest, WorkIsBoundedPerStep) {
  drv.submit(guest::copy_to_dev(kBuf, 0, kMem));
  unsigned steps = 0;
  while (dev.run(1)) {
    steps++;
    EXPECT_TRUE(reg(MDEVMIG_REG_STATUS) & MDEVMIG_STATUS_ACTIVE);
    EXPECT_EQ(dev.model()->eng.progress, steps * kStep);
  }
  EXPECT_EQ(steps + 1, kMem / kStep);
  EXPECT_EQ(drv.completion(0).status, uint32_t{MDEVMIG_DMA_ST_OK});
}

TEST_F(EngineTest, RunReportsRemainingWork) {
  drv.submit(guest::fill(0, kMem, 1));
  drv.submit(guest::fill(0, 10, 2));
  EXPECT_EQ(dev.run(3), 1);
  EXPECT_EQ(dev.run(1000), 0);
  EXPECT_EQ(dev.run(1000), 0);
  EXPECT_EQ(reg(MDEVMIG_REG_SEQ), 2u);
}

TEST_F(EngineTest, SequenceAndRingWrap) {
  SimDevice d2(kMem);
  ASSERT_TRUE(d2.iommu().map(kBuf, 4096));
  guest::SimRing small(d2, 4);
  for (uint32_t i = 0; i < 10; i++) {
    auto fill = guest::fill(i * 8, 8, i);
    fill.user_data = i;
    uint32_t slot = small.submit(fill);
    d2.run_to_idle();
    auto c = small.completion(slot);
    EXPECT_EQ(c.seq, i);
    EXPECT_EQ(c.user_data, i);
    EXPECT_EQ(d2.mmio_read32(MDEVMIG_REG_RING_HEAD), (i + 1) % 4);
  }
  // Three in flight at once (a ring of 4 holds 3).
  for (uint32_t i = 0; i < 3; i++) small.queue(guest::fill(0, 8, 0));
  small.doorbell();
  d2.run_to_idle();
  EXPECT_EQ(d2.mmio_read32(MDEVMIG_REG_SEQ), 13u);
}

TEST_F(EngineTest, NoIrqFlagSuppressesDoneOnly) {
  auto d = guest::fill(0, 8, 1);
  d.flags = MDEVMIG_DMA_F_NO_IRQ;
  exec(d);
  EXPECT_EQ(reg(MDEVMIG_REG_INT_STATUS), 0u);
  EXPECT_FALSE(dev.intx);
  d.len = kMem + 1;  // fails: the error is still signalled
  EXPECT_EQ(exec(d).status, uint32_t{MDEVMIG_DMA_ST_BAD_RANGE});
  EXPECT_EQ(reg(MDEVMIG_REG_INT_STATUS), MDEVMIG_INT_DONE | MDEVMIG_INT_ERROR);
}

struct BadDesc {
  const char* name;
  mdevmig_dma_desc desc;
  uint32_t status;
};

std::vector<BadDesc> bad_descriptors() {
  std::vector<BadDesc> v;
  auto add = [&](const char* name, mdevmig_dma_desc d, uint32_t st) { v.push_back({name, d, st}); };
  mdevmig_dma_desc d{};
  add("opcode 0", d, MDEVMIG_DMA_ST_BAD_OPCODE);
  d.opcode = MDEVMIG_DMA_OP_MAX + 1;
  add("opcode max+1", d, MDEVMIG_DMA_ST_BAD_OPCODE);
  d.opcode = 0xffffffff;
  add("opcode ~0", d, MDEVMIG_DMA_ST_BAD_OPCODE);
  d = guest::fill(0, 8, 1);
  d.flags = 2;
  add("unknown flag", d, MDEVMIG_DMA_ST_BAD_DESC);
  d = guest::fill(0, 8, 1);
  d.rsvd = 1;
  add("rsvd", d, MDEVMIG_DMA_ST_BAD_DESC);
  d = guest::fill(0, 8, 1);
  d.src = 1;
  add("fill with src", d, MDEVMIG_DMA_ST_BAD_DESC);
  d = guest::copy_to_dev(kBuf, 0, 8);
  d.pattern = 1;
  add("copy with pattern", d, MDEVMIG_DMA_ST_BAD_DESC);
  add("fill past memory end", guest::fill(kMem - 10, 11, 1), MDEVMIG_DMA_ST_BAD_RANGE);
  add("fill offset past end", guest::fill(kMem + 1, 0, 1), MDEVMIG_DMA_ST_BAD_RANGE);
  add("fill offset overflow", guest::fill(~0ull, 2, 1), MDEVMIG_DMA_ST_BAD_RANGE);
  add("fill len overflow", guest::fill(16, ~0ull - 8, 1), MDEVMIG_DMA_ST_BAD_RANGE);
  add("len over max", guest::copy_guest(kBuf, kBuf, uint64_t{MDEVMIG_DMA_MAX_LEN} + 1),
      MDEVMIG_DMA_ST_BAD_RANGE);
  add("to dev past end", guest::copy_to_dev(kBuf, kMem - 4095, 4096), MDEVMIG_DMA_ST_BAD_RANGE);
  add("from dev past end", guest::copy_from_dev(kMem, kBuf, 1), MDEVMIG_DMA_ST_BAD_RANGE);
  add("guest src wraps", guest::copy_to_dev(~0ull - 10, 0, 12), MDEVMIG_DMA_ST_BAD_RANGE);
  add("guest dst wraps", guest::copy_from_dev(0, ~0ull, 2), MDEVMIG_DMA_ST_BAD_RANGE);
  add("guest-guest wraps", guest::copy_guest(kBuf, ~0ull - 1, 3), MDEVMIG_DMA_ST_BAD_RANGE);
  add("hash past end", guest::hash(1, kMem, kBuf), MDEVMIG_DMA_ST_BAD_RANGE);
  add("hash result wraps", guest::hash(0, 8, ~0ull - 3), MDEVMIG_DMA_ST_BAD_RANGE);
  return v;
}

TEST_F(EngineTest, BadDescriptorsCompleteWithErrorAndQueueGoesOn) {
  uint32_t n = 0;
  for (const auto& bad : bad_descriptors()) {
    SCOPED_TRACE(bad.name);
    dev.mmio_write32(MDEVMIG_REG_INT_STATUS, ~0u);
    auto d = bad.desc;
    d.user_data = n;
    uint32_t slot = drv.queue(d);
    uint32_t good = drv.queue(guest::fill(0, 16, n));
    drv.doorbell();
    dev.run_to_idle();
    auto c = drv.completion(slot);
    EXPECT_EQ(c.status, bad.status);
    EXPECT_EQ(c.bytes_done, 0u);
    EXPECT_EQ(c.user_data, n);
    EXPECT_EQ(drv.completion(good).status, uint32_t{MDEVMIG_DMA_ST_OK});
    EXPECT_EQ(reg(MDEVMIG_REG_ERR_DESC), ++n);
    EXPECT_EQ(reg(MDEVMIG_REG_INT_STATUS), MDEVMIG_INT_DONE | MDEVMIG_INT_ERROR);
  }
  EXPECT_EQ(reg(MDEVMIG_REG_ERR_DMA), 0u);
}

TEST_F(EngineTest, DescriptorAtTheVeryEndOfMemoryIsFine) {
  EXPECT_EQ(exec(guest::copy_to_dev(kBuf, kMem - 4096, 4096)).status, uint32_t{MDEVMIG_DMA_ST_OK});
  EXPECT_EQ(exec(guest::fill(kMem, 0, 1)).status, uint32_t{MDEVMIG_DMA_ST_OK});
}

TEST_F(EngineTest, ReadFaultReportsProgress) {
  // The guest buffer ends 100 KiB after src: the second step faults.
  auto c = exec(guest::copy_to_dev(kBuf + kBufSize - 100 * 1024, 0, 200 * 1024));
  EXPECT_EQ(c.status, uint32_t{MDEVMIG_DMA_ST_READ_FAULT});
  EXPECT_EQ(c.bytes_done, kStep);
  EXPECT_EQ(reg(MDEVMIG_REG_ERR_DMA), 1u);
  EXPECT_EQ(reg(MDEVMIG_REG_ERR_DESC), 1u);
  EXPECT_TRUE(dev.dirty[0]);
  EXPECT_EQ(exec(guest::copy_to_dev(0x7000000000, 0, 1)).status,
            uint32_t{MDEVMIG_DMA_ST_READ_FAULT});
}

TEST_F(EngineTest, WriteFaults) {
  auto c = exec(guest::copy_from_dev(0, 0x7000000000, 100));
  EXPECT_EQ(c.status, uint32_t{MDEVMIG_DMA_ST_WRITE_FAULT});
  EXPECT_EQ(c.bytes_done, 0u);
  c = exec(guest::hash(0, 3 * kStep, 0x7000000000));  // result address unmapped
  EXPECT_EQ(c.status, uint32_t{MDEVMIG_DMA_ST_WRITE_FAULT});
  EXPECT_EQ(c.bytes_done, 3 * kStep);
}

TEST_F(EngineTest, GuestCopyFaultsMidway) {
  // Destination runs off the mapping after 10000 bytes.
  auto c = exec(guest::copy_guest(kBuf, kBuf + kBufSize - 10000, 20000));
  EXPECT_EQ(c.status, uint32_t{MDEVMIG_DMA_ST_WRITE_FAULT});
  EXPECT_EQ(c.bytes_done, 8192u);  // two whole bounce chunks made it
  c = exec(guest::copy_guest(kBuf + kBufSize - 5000, kBuf, 20000));
  EXPECT_EQ(c.status, uint32_t{MDEVMIG_DMA_ST_READ_FAULT});
  EXPECT_EQ(c.bytes_done, 4096u);
}

TEST_F(EngineTest, CompletionWriteFault) {
  auto d = guest::fill(0, 64, 0x55);
  d.cmpl = 0x7000000000;
  drv.submit(d);
  dev.run_to_idle();
  EXPECT_EQ(dev.mem()[56], 0x55);
  EXPECT_EQ(reg(MDEVMIG_REG_ERR_DMA), 1u);
  EXPECT_EQ(reg(MDEVMIG_REG_ERR_DESC), 0u);
  EXPECT_EQ(reg(MDEVMIG_REG_INT_STATUS), MDEVMIG_INT_DONE | MDEVMIG_INT_ERROR);
  EXPECT_EQ(reg(MDEVMIG_REG_RING_HEAD), 1u);
  d.cmpl = ~0ull - 8;  // wraps: refused without asking the IOMMU
  drv.submit(d);
  dev.run_to_idle();
  EXPECT_EQ(reg(MDEVMIG_REG_ERR_DMA), 2u);
}

TEST_F(EngineTest, RingFetchFaultConsumesTheSlot) {
  SimDevice d2(kMem);
  d2.cfg_write(0x04, 0x4, 2);
  d2.mmio_write64(MDEVMIG_REG_RING_BASE_LO, 0x5000000000);  // unmapped
  d2.mmio_write32(MDEVMIG_REG_RING_SIZE, 8);
  d2.mmio_write32(MDEVMIG_REG_CTRL, MDEVMIG_CTRL_ENABLE);
  d2.mmio_write32(MDEVMIG_REG_RING_TAIL, 3);
  EXPECT_EQ(d2.run_to_idle(), 3u);
  EXPECT_EQ(d2.mmio_read32(MDEVMIG_REG_RING_HEAD), 3u);
  EXPECT_EQ(d2.mmio_read32(MDEVMIG_REG_SEQ), 3u);
  EXPECT_EQ(d2.mmio_read32(MDEVMIG_REG_ERR_RING), 3u);
  EXPECT_EQ(d2.mmio_read32(MDEVMIG_REG_ERR_DMA), 3u);
  EXPECT_EQ(d2.mmio_read32(MDEVMIG_REG_INT_STATUS), MDEVMIG_INT_RING);
  EXPECT_TRUE(d2.intx);
}

TEST_F(EngineTest, RingAtTopOfAddressSpaceFaultsWithoutWrapping) {
  SimDevice d2(kMem);
  d2.cfg_write(0x04, 0x4, 2);
  d2.mmio_write64(MDEVMIG_REG_RING_BASE_LO, ~0ull & ~63ull);
  d2.mmio_write32(MDEVMIG_REG_RING_SIZE, 4);
  d2.mmio_write32(MDEVMIG_REG_CTRL, MDEVMIG_CTRL_ENABLE);
  d2.mmio_write32(MDEVMIG_REG_RING_TAIL, 3);
  d2.run_to_idle();
  EXPECT_EQ(d2.mmio_read32(MDEVMIG_REG_ERR_RING), 3u);
  EXPECT_EQ(d2.iommu().accesses(), 1u);  // slot 0 asked; slots 1, 2 would wrap
}

TEST_F(EngineTest, NeedsEnableAndBusMaster) {
  dev.mmio_write32(MDEVMIG_REG_CTRL, 0);
  drv.submit(guest::fill(0, 8, 0x11));
  EXPECT_EQ(dev.run(10), 0);
  EXPECT_EQ(dev.mem()[0], 0);
  dev.cfg_write(0x04, 0x2, 2);  // bus master off
  dev.mmio_write32(MDEVMIG_REG_CTRL, MDEVMIG_CTRL_ENABLE);
  EXPECT_EQ(dev.run(10), 0);
  EXPECT_EQ(dev.mem()[0], 0);
  EXPECT_TRUE(reg(MDEVMIG_REG_STATUS) & MDEVMIG_STATUS_BLOCKED);
  dev.cfg_write(0x04, 0x6, 2);
  EXPECT_EQ(dev.run(10), 0);
  EXPECT_EQ(dev.mem()[0], 0x11);
}

TEST_F(EngineTest, PauseAndResumeMidDescriptor) {
  drv.submit(guest::copy_to_dev(kBuf, 0, 5 * kStep));
  EXPECT_EQ(dev.run(2), 1);
  dev.mmio_write32(MDEVMIG_REG_CTRL, 0);
  EXPECT_EQ(dev.run(10), 0);
  EXPECT_EQ(dev.model()->eng.progress, 2 * kStep);
  EXPECT_EQ(reg(MDEVMIG_REG_STATUS),
            MDEVMIG_STATUS_BUSY | MDEVMIG_STATUS_ACTIVE | MDEVMIG_STATUS_BLOCKED);
  dev.mmio_write32(MDEVMIG_REG_CTRL, MDEVMIG_CTRL_ENABLE);
  dev.run_to_idle();
  EXPECT_EQ(drv.completion(0).status, uint32_t{MDEVMIG_DMA_ST_OK});
  EXPECT_EQ(0, std::memcmp(dev.mem(), buf(), 5 * kStep));
}

TEST_F(EngineTest, SoftResetDropsInFlightWork) {
  drv.submit(guest::copy_to_dev(kBuf, 0, 5 * kStep));
  dev.run(2);
  dev.mmio_write32(MDEVMIG_REG_CTRL, MDEVMIG_CTRL_RESET);
  EXPECT_FALSE(mdevmig_model_work_pending(dev.model()));
  EXPECT_EQ(reg(MDEVMIG_REG_STATUS), 0u);
  EXPECT_EQ(drv.completion(0).status, uint32_t{MDEVMIG_DMA_ST_PENDING});
}

// Every possible single IOMMU fault during a mixed workload: the queue always drains,
// each descriptor gets a completion (or the completion write is the fault), and the
// error counters add up.
TEST_F(EngineTest, FaultInjectionAtEveryAccess) {
  auto workload = [](guest::SimRing& g) {
    g.queue(guest::copy_to_dev(kBuf, 0, 3 * kStep + 5));
    g.queue(guest::copy_from_dev(100, kBuf + 4096, 2 * kStep));
    g.queue(guest::copy_guest(kBuf, kBuf + 512 * 1024, 3 * 4096 + 1));
    g.queue(guest::fill(7, 2 * kStep, 0xabcdef));
    g.queue(guest::hash(0, 2 * kStep + 1, kBuf + 8));
    g.doorbell();
  };
  SimDevice ref(kMem);
  ASSERT_TRUE(ref.iommu().map(kBuf, kBufSize));
  guest::SimRing rdrv(ref);
  workload(rdrv);
  uint64_t before = ref.iommu().accesses();  // the driver's own writes
  ref.run_to_idle();
  uint64_t total = ref.iommu().accesses() - before;
  ASSERT_GT(total, 20u);
  for (uint64_t n = 0; n < total; n++) {
    SimDevice d(kMem);
    ASSERT_TRUE(d.iommu().map(kBuf, kBufSize));
    guest::SimRing g(d);
    workload(g);
    d.iommu().fail_after(n);
    d.run_to_idle();
    EXPECT_FALSE(mdevmig_model_work_pending(d.model())) << n;
    EXPECT_EQ(d.mmio_read32(MDEVMIG_REG_SEQ), 5u) << n;
    EXPECT_EQ(d.mmio_read32(MDEVMIG_REG_ERR_DMA), 1u) << n;
    EXPECT_EQ(d.iommu().faults(), 1u) << n;
    EXPECT_TRUE(d.mmio_read32(MDEVMIG_REG_INT_STATUS) & (MDEVMIG_INT_ERROR | MDEVMIG_INT_RING))
        << n;
  }
}

}  // namespace
}  // namespace mdevmig::vendor_sim
