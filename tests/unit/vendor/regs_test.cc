// BAR0 register semantics: identification, scratch, control and soft reset, interrupt
// status/mask/set, ring programming, access sizes and alignment.
#include <gtest/gtest.h>

#include "sim.h"

namespace mdevmig::vendor_sim {
namespace {

constexpr uint64_t kMem = 6 << 20;  // not a power of two on purpose

TEST(Regs, Identification) {
  SimDevice dev(kMem, 7);
  EXPECT_EQ(dev.mmio_read32(MDEVMIG_REG_ID), MDEVMIG_ID_MAGIC);
  EXPECT_EQ(dev.mmio_read32(MDEVMIG_REG_VERSION), uint32_t{MDEVMIG_MODEL_VERSION});
  EXPECT_EQ(dev.mmio_read32(MDEVMIG_REG_CAPS), 0x3eu);  // opcodes 1..5
  EXPECT_EQ(dev.mmio_read32(MDEVMIG_REG_TYPE_ID), 7u);
  EXPECT_EQ(dev.mmio_read64(MDEVMIG_REG_MEM_SIZE_LO), kMem);
  EXPECT_EQ(dev.mmio_read32(MDEVMIG_REG_RING_MAX), uint32_t{MDEVMIG_RING_MAX_ENTRIES});
  EXPECT_EQ(dev.mmio_read32(MDEVMIG_REG_MAX_LEN), uint32_t{MDEVMIG_DMA_MAX_LEN});
  // Read-only: writes change nothing.
  dev.mmio_write32(MDEVMIG_REG_ID, 0);
  dev.mmio_write32(MDEVMIG_REG_MEM_SIZE_LO, 0);
  dev.mmio_write32(MDEVMIG_REG_RING_HEAD, 3);
  dev.mmio_write32(MDEVMIG_REG_SEQ, 3);
  EXPECT_EQ(dev.mmio_read32(MDEVMIG_REG_ID), MDEVMIG_ID_MAGIC);
  EXPECT_EQ(dev.mmio_read64(MDEVMIG_REG_MEM_SIZE_LO), kMem);
  EXPECT_EQ(dev.mmio_read32(MDEVMIG_REG_RING_HEAD), 0u);
  EXPECT_EQ(dev.mmio_read32(MDEVMIG_REG_SEQ), 0u);
}

TEST(Regs, UnimplementedOffsetsReadZero) {
  SimDevice dev(kMem);
  for (uint32_t off = 0x200; off < MDEVMIG_REGS_SIZE; off += 4) {
    dev.mmio_write32(off, 0xffffffff);
    ASSERT_EQ(dev.mmio_read32(off), 0u) << off;
  }
  EXPECT_EQ(dev.mmio_read32(MDEVMIG_REG_INT_SET), 0u);
}

TEST(Regs, Scratch) {
  SimDevice dev(kMem);
  for (uint32_t i = 0; i < MDEVMIG_NR_SCRATCH; i++)
    dev.mmio_write32(MDEVMIG_REG_SCRATCH(i), 0x1000 + i);
  for (uint32_t i = 0; i < MDEVMIG_NR_SCRATCH; i++)
    EXPECT_EQ(dev.mmio_read32(MDEVMIG_REG_SCRATCH(i)), 0x1000 + i);
  dev.mmio_write64(MDEVMIG_REG_SCRATCH(2), 0x1122334455667788ull);
  EXPECT_EQ(dev.mmio_read32(MDEVMIG_REG_SCRATCH(2)), 0x55667788u);
  EXPECT_EQ(dev.mmio_read32(MDEVMIG_REG_SCRATCH(3)), 0x11223344u);
}

TEST(Regs, SubDwordAccess) {
  SimDevice dev(kMem);
  const uint32_t s = MDEVMIG_REG_SCRATCH(0);
  dev.mmio_write32(s, 0x11223344);
  uint8_t b = 0xaa;
  ASSERT_EQ(mdevmig_model_mmio_write(dev.model(), s + 2, &b, 1), 0);
  EXPECT_EQ(dev.mmio_read32(s), 0x11aa3344u);
  uint8_t w[2] = {0x01, 0x02};
  ASSERT_EQ(mdevmig_model_mmio_write(dev.model(), s, w, 2), 0);
  EXPECT_EQ(dev.mmio_read32(s), 0x11aa0201u);
  uint8_t r[2];
  ASSERT_EQ(mdevmig_model_mmio_read(dev.model(), s + 2, r, 2), 0);
  EXPECT_EQ(r[0], 0xaa);
  EXPECT_EQ(r[1], 0x11);
  ASSERT_EQ(mdevmig_model_mmio_read(dev.model(), s + 3, r, 1), 0);
  EXPECT_EQ(r[0], 0x11);
}

TEST(Regs, BadAccessesAreInvalid) {
  SimDevice dev(kMem);
  uint8_t buf[8] = {};
  for (uint32_t len : {0u, 3u, 5u, 16u}) {
    EXPECT_EQ(mdevmig_model_mmio_read(dev.model(), 0, buf, len), -EINVAL) << len;
    EXPECT_EQ(mdevmig_model_mmio_write(dev.model(), 0, buf, len), -EINVAL) << len;
  }
  EXPECT_EQ(mdevmig_model_mmio_read(dev.model(), 2, buf, 4), -EINVAL);
  EXPECT_EQ(mdevmig_model_mmio_read(dev.model(), 4, buf, 8), -EINVAL);
  EXPECT_EQ(mdevmig_model_mmio_read(dev.model(), 1, buf, 2), -EINVAL);
  EXPECT_EQ(mdevmig_model_mmio_read(dev.model(), MDEVMIG_REGS_SIZE, buf, 4), -EINVAL);
  EXPECT_EQ(mdevmig_model_mmio_write(dev.model(), MDEVMIG_REGS_SIZE - 4, buf, 8), -EINVAL);
  EXPECT_EQ(mdevmig_model_mmio_read(dev.model(), 0xfffffff8u, buf, 8), -EINVAL);
  EXPECT_EQ(mdevmig_model_mmio_read(dev.model(), MDEVMIG_REGS_SIZE - 8, buf, 8), 0);
  EXPECT_EQ(mdevmig_model_mmio_read(dev.model(), MDEVMIG_REGS_SIZE - 1, buf, 1), 0);
}

TEST(Regs, InterruptStatusIsWriteOneToClear) {
  SimDevice dev(kMem);
  dev.mmio_write32(MDEVMIG_REG_INT_SET, MDEVMIG_INT_SW | MDEVMIG_INT_DONE | 0xf0);
  EXPECT_EQ(dev.mmio_read32(MDEVMIG_REG_INT_STATUS), MDEVMIG_INT_SW | MDEVMIG_INT_DONE);
  dev.mmio_write32(MDEVMIG_REG_INT_STATUS, MDEVMIG_INT_DONE);
  EXPECT_EQ(dev.mmio_read32(MDEVMIG_REG_INT_STATUS), MDEVMIG_INT_SW);
  // A byte write to another byte clears nothing.
  uint8_t ff = 0xff;
  ASSERT_EQ(mdevmig_model_mmio_write(dev.model(), MDEVMIG_REG_INT_STATUS + 1, &ff, 1), 0);
  EXPECT_EQ(dev.mmio_read32(MDEVMIG_REG_INT_STATUS), MDEVMIG_INT_SW);
  dev.mmio_write32(MDEVMIG_REG_INT_STATUS, 0xffffffff);
  EXPECT_EQ(dev.mmio_read32(MDEVMIG_REG_INT_STATUS), 0u);
}

TEST(Regs, InterruptMaskKeepsValidBits) {
  SimDevice dev(kMem);
  dev.mmio_write32(MDEVMIG_REG_INT_MASK, 0xffffffff);
  EXPECT_EQ(dev.mmio_read32(MDEVMIG_REG_INT_MASK), uint32_t{MDEVMIG_INT_ALL});
}

TEST(Regs, ControlEnableAndStatus) {
  SimDevice dev(kMem);
  EXPECT_EQ(dev.mmio_read32(MDEVMIG_REG_STATUS), 0u);
  dev.mmio_write32(MDEVMIG_REG_CTRL, MDEVMIG_CTRL_ENABLE | 0xfc);
  EXPECT_EQ(dev.mmio_read32(MDEVMIG_REG_CTRL), MDEVMIG_CTRL_ENABLE);
  EXPECT_EQ(dev.mmio_read32(MDEVMIG_REG_STATUS), MDEVMIG_STATUS_ENABLED);
}

TEST(Regs, SoftResetClearsRegistersNotConfig) {
  SimDevice dev(kMem);
  dev.cfg_write(0x04, 0x6, 2);
  dev.cfg_write(0x10, 0xfebf0000);
  dev.mmio_write32(MDEVMIG_REG_SCRATCH(5), 5);
  dev.mmio_write64(MDEVMIG_REG_RING_BASE_LO, 0x1000);
  dev.mmio_write32(MDEVMIG_REG_RING_SIZE, 8);
  dev.mmio_write32(MDEVMIG_REG_RING_TAIL, 3);
  dev.mmio_write32(MDEVMIG_REG_INT_SET, MDEVMIG_INT_SW);
  dev.mmio_write32(MDEVMIG_REG_CTRL, MDEVMIG_CTRL_RESET | MDEVMIG_CTRL_ENABLE);
  EXPECT_EQ(dev.mmio_read32(MDEVMIG_REG_CTRL), 0u);
  EXPECT_EQ(dev.mmio_read32(MDEVMIG_REG_SCRATCH(5)), 0u);
  EXPECT_EQ(dev.mmio_read64(MDEVMIG_REG_RING_BASE_LO), 0u);
  EXPECT_EQ(dev.mmio_read32(MDEVMIG_REG_RING_SIZE), 0u);
  EXPECT_EQ(dev.mmio_read32(MDEVMIG_REG_RING_TAIL), 0u);
  EXPECT_EQ(dev.mmio_read32(MDEVMIG_REG_INT_STATUS), 0u);
  EXPECT_EQ(dev.cfg_read(0x04, 2), 0x6u);
  EXPECT_EQ(dev.cfg_read(0x10), 0xfebf0000u);
  EXPECT_FALSE(dev.intx);
}

TEST(Regs, RingBaseIsAligned) {
  SimDevice dev(kMem);
  dev.mmio_write64(MDEVMIG_REG_RING_BASE_LO, 0x123456789abcdeffull);
  EXPECT_EQ(dev.mmio_read64(MDEVMIG_REG_RING_BASE_LO), 0x123456789abcdec0ull);
}

TEST(Regs, RingSizeValidation) {
  SimDevice dev(kMem);
  for (uint32_t ok : {1u, 2u, 64u, uint32_t{MDEVMIG_RING_MAX_ENTRIES}}) {
    dev.mmio_write32(MDEVMIG_REG_RING_SIZE, ok);
    EXPECT_EQ(dev.mmio_read32(MDEVMIG_REG_RING_SIZE), ok);
  }
  uint32_t errors = 0;
  for (uint32_t bad : {3u, 100u, uint32_t{MDEVMIG_RING_MAX_ENTRIES} * 2, 0x80000000u}) {
    dev.mmio_write32(MDEVMIG_REG_RING_SIZE, bad);
    EXPECT_EQ(dev.mmio_read32(MDEVMIG_REG_RING_SIZE), 0u) << bad;
    EXPECT_EQ(dev.mmio_read32(MDEVMIG_REG_ERR_RING), ++errors);
    EXPECT_TRUE(dev.mmio_read32(MDEVMIG_REG_INT_STATUS) & MDEVMIG_INT_RING);
  }
  dev.mmio_write32(MDEVMIG_REG_RING_SIZE, 0);  // no ring: not an error
  EXPECT_EQ(dev.mmio_read32(MDEVMIG_REG_ERR_RING), errors);
}

TEST(Regs, TailIsMaskedAndNeedsARing) {
  SimDevice dev(kMem);
  dev.mmio_write32(MDEVMIG_REG_RING_TAIL, 5);
  EXPECT_EQ(dev.mmio_read32(MDEVMIG_REG_RING_TAIL), 0u);
  EXPECT_EQ(dev.mmio_read32(MDEVMIG_REG_ERR_RING), 1u);
  EXPECT_TRUE(dev.mmio_read32(MDEVMIG_REG_INT_STATUS) & MDEVMIG_INT_RING);
  dev.mmio_write32(MDEVMIG_REG_RING_SIZE, 16);
  dev.mmio_write32(MDEVMIG_REG_RING_TAIL, 21);  // free-running counter
  EXPECT_EQ(dev.mmio_read32(MDEVMIG_REG_RING_TAIL), 5u);
  uint32_t status = dev.mmio_read32(MDEVMIG_REG_STATUS);
  EXPECT_TRUE(status & MDEVMIG_STATUS_BUSY);
  EXPECT_TRUE(status & MDEVMIG_STATUS_BLOCKED);  // not enabled, no bus master
  EXPECT_FALSE(mdevmig_model_work_pending(dev.model()));
}

TEST(Regs, RingReprogramDropsWork) {
  SimDevice dev(kMem);
  dev.mmio_write32(MDEVMIG_REG_RING_SIZE, 16);
  dev.mmio_write32(MDEVMIG_REG_RING_TAIL, 4);
  dev.mmio_write32(MDEVMIG_REG_RING_BASE_HI, 1);
  EXPECT_EQ(dev.mmio_read32(MDEVMIG_REG_RING_TAIL), 0u);
  EXPECT_EQ(dev.mmio_read32(MDEVMIG_REG_RING_HEAD), 0u);
  EXPECT_EQ(dev.mmio_read32(MDEVMIG_REG_RING_SIZE), 16u);
  EXPECT_EQ(dev.mmio_read32(MDEVMIG_REG_STATUS) & MDEVMIG_STATUS_BUSY, 0u);
}

TEST(Regs, KickOnlyWhenRunnable) {
  SimDevice dev(kMem);
  dev.mmio_write32(MDEVMIG_REG_RING_SIZE, 16);
  dev.mmio_write32(MDEVMIG_REG_RING_TAIL, 1);
  EXPECT_EQ(dev.kicks, 0u);  // disabled, no bus master
  dev.mmio_write32(MDEVMIG_REG_CTRL, MDEVMIG_CTRL_ENABLE);
  EXPECT_EQ(dev.kicks, 0u);  // no bus master
  dev.cfg_write(0x04, 0x4, 2);
  EXPECT_EQ(dev.kicks, 1u);
  EXPECT_TRUE(mdevmig_model_work_pending(dev.model()));
  dev.mmio_write32(MDEVMIG_REG_RING_TAIL, 2);
  EXPECT_EQ(dev.kicks, 2u);
  dev.mmio_write32(MDEVMIG_REG_CTRL, 0);
  EXPECT_FALSE(mdevmig_model_work_pending(dev.model()));
  dev.mmio_write32(MDEVMIG_REG_CTRL, MDEVMIG_CTRL_ENABLE);
  EXPECT_EQ(dev.kicks, 3u);
}

}  // namespace
}  // namespace mdevmig::vendor_sim
