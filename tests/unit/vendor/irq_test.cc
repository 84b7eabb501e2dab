// Interrupt delivery: INTx level semantics and the MSI capability (vectors, masking,
// pending bits, bus master gating).
#include <gtest/gtest.h>

#include "sim.h"

namespace mdevmig::vendor_sim {
namespace {

constexpr uint64_t kMem = 1 << 20;
constexpr uint32_t kMsiCtrl = MDEVMIG_CFG_MSI_CAP + 2;
constexpr uint32_t kMsiMask = MDEVMIG_CFG_MSI_CAP + 0x10;
constexpr uint32_t kMsiPending = MDEVMIG_CFG_MSI_CAP + 0x14;

bool cfg_intx_status(SimDevice& dev) { return dev.cfg_read(0x06, 2) & 0x8; }

TEST(Intx, LevelFollowsUnmaskedStatus) {
  SimDevice dev(kMem);
  EXPECT_FALSE(dev.intx);
  dev.mmio_write32(MDEVMIG_REG_INT_SET, MDEVMIG_INT_SW);
  EXPECT_TRUE(dev.intx);
  EXPECT_TRUE(cfg_intx_status(dev));
  dev.mmio_write32(MDEVMIG_REG_INT_SET, MDEVMIG_INT_DONE);  // still asserted: no new edge
  EXPECT_EQ(dev.intx_changes, 1u);
  dev.mmio_write32(MDEVMIG_REG_INT_STATUS, MDEVMIG_INT_SW);
  EXPECT_TRUE(dev.intx);
  dev.mmio_write32(MDEVMIG_REG_INT_STATUS, MDEVMIG_INT_DONE);
  EXPECT_FALSE(dev.intx);
  EXPECT_FALSE(cfg_intx_status(dev));
  EXPECT_EQ(dev.intx_changes, 2u);
  EXPECT_TRUE(dev.msis.empty());
}

TEST(Intx, MaskDeassertsAndUnmaskReasserts) {
  SimDevice dev(kMem);
  dev.mmio_write32(MDEVMIG_REG_INT_SET, MDEVMIG_INT_ERROR);
  ASSERT_TRUE(dev.intx);
  dev.mmio_write32(MDEVMIG_REG_INT_MASK, MDEVMIG_INT_ERROR);
  EXPECT_FALSE(dev.intx);
  EXPECT_FALSE(cfg_intx_status(dev));
  EXPECT_EQ(dev.mmio_read32(MDEVMIG_REG_INT_STATUS), MDEVMIG_INT_ERROR);  // still latched
  dev.mmio_write32(MDEVMIG_REG_INT_MASK, 0);
  EXPECT_TRUE(dev.intx);
}

TEST(Intx, DisableBitGatesThePinNotTheStatus) {
  SimDevice dev(kMem);
  dev.cfg_write(0x04, 0x400, 2);  // INTx disable
  dev.mmio_write32(MDEVMIG_REG_INT_SET, MDEVMIG_INT_SW);
  EXPECT_FALSE(dev.intx);
  EXPECT_TRUE(cfg_intx_status(dev));
  dev.cfg_write(0x04, 0, 2);
  EXPECT_TRUE(dev.intx);
  dev.cfg_write(0x04, 0x400, 2);
  EXPECT_FALSE(dev.intx);
  mdevmig_model_irq_info info;
  mdevmig_model_get_irq_info(dev.model(), &info);
  EXPECT_FALSE(info.intx_asserted);
}

TEST(Intx, ResetDeasserts) {
  SimDevice dev(kMem);
  dev.mmio_write32(MDEVMIG_REG_INT_SET, MDEVMIG_INT_SW);
  ASSERT_TRUE(dev.intx);
  mdevmig_model_reset(dev.model());
  EXPECT_FALSE(dev.intx);
}

class MsiTest : public ::testing::Test {
 protected:
  void enable(uint32_t log2_vectors) {
    dev.cfg_write(0x04, 0x6, 2);  // bus master
    dev.cfg_write(MDEVMIG_CFG_MSI_CAP + 4, 0xfee00000);
    dev.cfg_write(kMsiCtrl, 1 | (log2_vectors << 4), 2);
  }
  SimDevice dev{kMem};
};

TEST_F(MsiTest, OneVectorForAllCauses) {
  enable(0);
  dev.mmio_write32(MDEVMIG_REG_INT_SET, MDEVMIG_INT_DONE);
  dev.mmio_write32(MDEVMIG_REG_INT_SET, MDEVMIG_INT_SW);
  dev.mmio_write32(MDEVMIG_REG_INT_SET, MDEVMIG_INT_DONE | MDEVMIG_INT_ERROR);  // one message
  EXPECT_EQ(dev.msis, (std::vector<unsigned>{0, 0, 0}));
  EXPECT_FALSE(dev.intx);  // MSI enabled: no INTx
  EXPECT_FALSE(cfg_intx_status(dev));
}

TEST_F(MsiTest, EveryEventSendsAMessage) {
  enable(0);
  dev.mmio_write32(MDEVMIG_REG_INT_SET, MDEVMIG_INT_DONE);
  dev.mmio_write32(MDEVMIG_REG_INT_SET, MDEVMIG_INT_DONE);  // status already set: still an edge
  EXPECT_EQ(dev.msis.size(), 2u);
}

TEST_F(MsiTest, VectorPerCause) {
  enable(2);
  dev.mmio_write32(MDEVMIG_REG_INT_SET, MDEVMIG_INT_DONE);
  dev.mmio_write32(MDEVMIG_REG_INT_SET, MDEVMIG_INT_ERROR);
  dev.mmio_write32(MDEVMIG_REG_INT_SET, MDEVMIG_INT_RING);
  dev.mmio_write32(MDEVMIG_REG_INT_SET, MDEVMIG_INT_SW);
  dev.mmio_write32(MDEVMIG_REG_INT_SET, MDEVMIG_INT_DONE | MDEVMIG_INT_ERROR);
  EXPECT_EQ(dev.msis, (std::vector<unsigned>{0, 1, 2, 3, 0, 1}));
}

TEST_F(MsiTest, CausesBeyondEnabledVectorsUseVectorZero) {
  enable(1);  // 2 vectors
  dev.mmio_write32(MDEVMIG_REG_INT_SET, MDEVMIG_INT_ERROR);
  dev.mmio_write32(MDEVMIG_REG_INT_SET, MDEVMIG_INT_RING);
  dev.mmio_write32(MDEVMIG_REG_INT_SET, MDEVMIG_INT_SW);
  EXPECT_EQ(dev.msis, (std::vector<unsigned>{1, 0, 0}));
}

TEST_F(MsiTest, MaskedCauseSendsOnUnmask) {
  enable(0);
  dev.mmio_write32(MDEVMIG_REG_INT_MASK, MDEVMIG_INT_DONE);
  dev.mmio_write32(MDEVMIG_REG_INT_SET, MDEVMIG_INT_DONE);
  EXPECT_TRUE(dev.msis.empty());
  dev.mmio_write32(MDEVMIG_REG_INT_MASK, 0);
  EXPECT_EQ(dev.msis, (std::vector<unsigned>{0}));
  dev.mmio_write32(MDEVMIG_REG_INT_MASK, MDEVMIG_INT_ERROR);  // masking another: nothing
  dev.mmio_write32(MDEVMIG_REG_INT_MASK, 0);
  EXPECT_EQ(dev.msis.size(), 1u);  // ERROR was not pending
}

TEST_F(MsiTest, PerVectorMaskLatchesPending) {
  enable(2);
  dev.cfg_write(kMsiMask, 0x2);
  dev.mmio_write32(MDEVMIG_REG_INT_SET, MDEVMIG_INT_ERROR);
  dev.mmio_write32(MDEVMIG_REG_INT_SET, MDEVMIG_INT_DONE);
  EXPECT_EQ(dev.msis, (std::vector<unsigned>{0}));
  EXPECT_EQ(dev.cfg_read(kMsiPending), 0x2u);
  dev.cfg_write(kMsiMask, 0);
  EXPECT_EQ(dev.msis, (std::vector<unsigned>{0, 1}));
  EXPECT_EQ(dev.cfg_read(kMsiPending), 0u);
}

TEST_F(MsiTest, NoMessagesWithoutBusMaster) {
  enable(0);
  dev.cfg_write(0x04, 0x2, 2);  // memory only
  dev.mmio_write32(MDEVMIG_REG_INT_SET, MDEVMIG_INT_DONE);
  EXPECT_TRUE(dev.msis.empty());
  EXPECT_FALSE(dev.intx);
}

TEST_F(MsiTest, DisablingMsiFallsBackToIntx) {
  enable(0);
  dev.mmio_write32(MDEVMIG_REG_INT_SET, MDEVMIG_INT_DONE);
  EXPECT_FALSE(dev.intx);
  dev.cfg_write(kMsiCtrl, 0, 2);
  EXPECT_TRUE(dev.intx);  // still pending and unmasked: the pin asserts
  dev.cfg_write(kMsiCtrl, 1, 2);
  EXPECT_FALSE(dev.intx);
  mdevmig_model_irq_info info;
  mdevmig_model_get_irq_info(dev.model(), &info);
  EXPECT_TRUE(info.msi_enabled);
  EXPECT_EQ(info.msi_vectors, 1u);
}

}  // namespace
}  // namespace mdevmig::vendor_sim
