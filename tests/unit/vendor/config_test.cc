// PCI config space of the model: identity, read-only behaviour, BAR sizing, command
// and status, the MSI capability layout, access checks.
#include <cstring>

#include <gtest/gtest.h>

#include "sim.h"

namespace mdevmig::vendor_sim {
namespace {

constexpr uint64_t kMem = 1 << 20;

TEST(Config, Identity) {
  SimDevice dev(kMem);
  EXPECT_EQ(dev.cfg_read(0x00, 2), MDEVMIG_PCI_VENDOR_ID);
  EXPECT_EQ(dev.cfg_read(0x02, 2), MDEVMIG_PCI_DEVICE_ID);
  EXPECT_EQ(dev.cfg_read(0x08, 1), MDEVMIG_PCI_REVISION);
  EXPECT_EQ(dev.cfg_read(0x08) >> 8, uint32_t{MDEVMIG_PCI_CLASS});
  EXPECT_EQ(dev.cfg_read(0x0e, 1), 0u);  // header type 0
  EXPECT_EQ(dev.cfg_read(0x2c, 2), MDEVMIG_PCI_SUBSYS_VENDOR_ID);
  EXPECT_EQ(dev.cfg_read(0x2e, 2), MDEVMIG_PCI_SUBSYS_ID);
  EXPECT_EQ(dev.cfg_read(0x3d, 1), 1u);  // INTA#
  EXPECT_EQ(dev.cfg_read(0x34, 1), uint32_t{MDEVMIG_CFG_MSI_CAP});
  EXPECT_EQ(dev.cfg_read(0x06, 2) & 0x10, 0x10u);  // capability list
}

TEST(Config, ReadOnlyFieldsIgnoreWrites) {
  SimDevice dev(kMem);
  uint8_t before[MDEVMIG_CFG_SIZE], after[MDEVMIG_CFG_SIZE];
  ASSERT_EQ(mdevmig_model_cfg_read(dev.model(), 0, before, sizeof(before)), 0);
  // All ones everywhere except the command register (which would enable things) and
  // the writable fields checked below; read-only bytes must not change.
  const uint32_t ro_dwords[] = {0x00, 0x08, 0x14, 0x20, 0x24, 0x28, 0x2c,
                                0x30, 0x34, 0x38, 0x54, 0x58, 0x80, 0xfc};
  for (uint32_t off : ro_dwords) dev.cfg_write(off, 0xffffffff);
  dev.cfg_write(0x06, 0xffff, 2);    // status
  dev.cfg_write(0x3d, 0xff, 1);      // pin
  dev.cfg_write(0x0d, 0xffffff, 3);  // latency, header type, BIST
  ASSERT_EQ(mdevmig_model_cfg_read(dev.model(), 0, after, sizeof(after)), 0);
  EXPECT_EQ(0, std::memcmp(before, after, sizeof(before)));
}

TEST(Config, UnimplementedReadsZero) {
  SimDevice dev(kMem);
  for (uint32_t off = MDEVMIG_CFG_MSI_CAP + MDEVMIG_MSI_CAP_SIZE; off < MDEVMIG_CFG_SIZE; off += 4)
    EXPECT_EQ(dev.cfg_read(off), 0u) << off;
  EXPECT_EQ(dev.cfg_read(0x14), 0u);  // BAR1
  EXPECT_EQ(dev.cfg_read(0x20), 0u);
  EXPECT_EQ(dev.cfg_read(0x24), 0u);
  EXPECT_EQ(dev.cfg_read(0x30), 0u);  // no ROM
}

TEST(Config, CommandWritableBits) {
  SimDevice dev(kMem);
  dev.cfg_write(0x04, 0xffff, 2);
  EXPECT_EQ(dev.cfg_read(0x04, 2), 0x0546u);  // memory, master, parity, SERR, INTx disable
  dev.cfg_write(0x04, 0, 2);
  EXPECT_EQ(dev.cfg_read(0x04, 2), 0u);
}

TEST(Config, Bar0Sizing) {
  SimDevice dev(kMem);
  EXPECT_EQ(dev.cfg_read(0x10), 0u);
  dev.cfg_write(0x10, 0xffffffff);
  EXPECT_EQ(dev.cfg_read(0x10), ~uint32_t{MDEVMIG_REGS_SIZE - 1});  // 4 KiB, 32-bit, non-prefetch
  dev.cfg_write(0x10, 0xfebf1234);
  EXPECT_EQ(dev.cfg_read(0x10), 0xfebf1000u);
  EXPECT_EQ(mdevmig_model_bar_size(dev.model(), 0), uint64_t{MDEVMIG_REGS_SIZE});
}

void expect_bar2_size(uint64_t mem, uint64_t bar) {
  SimDevice dev(mem);
  EXPECT_EQ(mdevmig_model_bar_size(dev.model(), 2), bar);
  EXPECT_EQ(dev.cfg_read(0x18), 0xcu);  // 64-bit prefetchable
  dev.cfg_write(0x18, 0xffffffff);
  dev.cfg_write(0x1c, 0xffffffff);
  uint64_t size_mask = (uint64_t{dev.cfg_read(0x1c)} << 32) | (dev.cfg_read(0x18) & ~0xfu);
  EXPECT_EQ(~size_mask + 1, bar) << "mem " << mem;
  EXPECT_EQ(dev.cfg_read(0x18) & 0xf, 0xcu);
  dev.cfg_write(0x18, 0);
  dev.cfg_write(0x1c, 0x12);
  EXPECT_EQ(dev.cfg_read(0x1c), 0x12u);
  EXPECT_EQ(dev.cfg_read(0x18), 0xcu);
}

TEST(Config, Bar2SizingPowerOfTwo) {
  expect_bar2_size(4096, 4096);
  expect_bar2_size(1 << 20, 1 << 20);
  expect_bar2_size(64 << 20, 64 << 20);
}

TEST(Config, Bar2SizingRoundsUp) {
  expect_bar2_size(3 * 4096, 4 * 4096);
  expect_bar2_size(48 << 20, 64 << 20);
}

TEST(Config, InterruptLineAndCacheLine) {
  SimDevice dev(kMem);
  dev.cfg_write(0x3c, 0x0b, 1);
  dev.cfg_write(0x0c, 0x10, 1);
  EXPECT_EQ(dev.cfg_read(0x3c, 2), 0x010bu);
  EXPECT_EQ(dev.cfg_read(0x0c), 0x10u);
}

TEST(Config, MsiCapabilityLayout) {
  SimDevice dev(kMem);
  const uint32_t cap = MDEVMIG_CFG_MSI_CAP;
  EXPECT_EQ(dev.cfg_read(cap, 1), 0x05u);      // MSI
  EXPECT_EQ(dev.cfg_read(cap + 1, 1), 0x00u);  // end of list
  uint32_t ctrl = dev.cfg_read(cap + 2, 2);
  EXPECT_EQ(ctrl & 1, 0u);          // disabled
  EXPECT_EQ((ctrl >> 1) & 7, 2u);   // 4 vectors capable
  EXPECT_EQ(ctrl & 0x80, 0x80u);    // 64-bit
  EXPECT_EQ(ctrl & 0x100, 0x100u);  // per-vector masking
  dev.cfg_write(cap + 4, 0xfee01233);
  dev.cfg_write(cap + 8, 0x1);
  dev.cfg_write(cap + 12, 0xabcd4321);
  dev.cfg_write(cap + 16, 0xffffffff);
  EXPECT_EQ(dev.cfg_read(cap + 4), 0xfee01230u);  // dword aligned
  EXPECT_EQ(dev.cfg_read(cap + 8), 0x1u);
  EXPECT_EQ(dev.cfg_read(cap + 12), 0x4321u);  // 16-bit data
  EXPECT_EQ(dev.cfg_read(cap + 16), 0xfu);     // 4 mask bits
  dev.cfg_write(cap + 20, 0xffffffff);
  EXPECT_EQ(dev.cfg_read(cap + 20), 0u);  // pending is read-only
}

TEST(Config, MsiMultipleMessageEnableIsClamped) {
  SimDevice dev(kMem);
  const uint32_t ctrl_off = MDEVMIG_CFG_MSI_CAP + 2;
  dev.cfg_write(ctrl_off, 0x71, 2);  // MME = 7: more than capable
  uint32_t ctrl = dev.cfg_read(ctrl_off, 2);
  EXPECT_EQ((ctrl >> 4) & 7, 2u);
  mdevmig_model_irq_info info;
  mdevmig_model_get_irq_info(dev.model(), &info);
  EXPECT_TRUE(info.msi_enabled);
  EXPECT_EQ(info.msi_vectors, 4u);
  EXPECT_EQ(info.msi_max_vectors, 4u);
  dev.cfg_write(ctrl_off, 0x10, 2);  // 2 vectors, disabled
  mdevmig_model_get_irq_info(dev.model(), &info);
  EXPECT_FALSE(info.msi_enabled);
  EXPECT_EQ(info.msi_vectors, 2u);
}

TEST(Config, AnyOffsetAndLength) {
  SimDevice dev(kMem);
  uint8_t all[MDEVMIG_CFG_SIZE];
  ASSERT_EQ(mdevmig_model_cfg_read(dev.model(), 0, all, sizeof(all)), 0);
  for (uint32_t off = 0; off < MDEVMIG_CFG_SIZE; off++) {
    for (uint32_t len = 0; off + len <= MDEVMIG_CFG_SIZE && len <= 9; len++) {
      uint8_t buf[9];
      ASSERT_EQ(mdevmig_model_cfg_read(dev.model(), off, buf, len), 0);
      EXPECT_EQ(0, std::memcmp(buf, all + off, len)) << off << "+" << len;
    }
  }
  // An unaligned write spanning two dwords: BAR0's top byte and BAR1's low bytes.
  const uint8_t bytes[3] = {0xaa, 0xbb, 0xcc};
  ASSERT_EQ(mdevmig_model_cfg_write(dev.model(), 0x13, bytes, 3), 0);
  EXPECT_EQ(dev.cfg_read(0x10), 0xaa000000u);
  EXPECT_EQ(dev.cfg_read(0x14), 0u);
}

TEST(Config, OutOfRangeIsInvalid) {
  SimDevice dev(kMem);
  uint8_t buf[8] = {};
  EXPECT_EQ(mdevmig_model_cfg_read(dev.model(), 256, buf, 1), -EINVAL);
  EXPECT_EQ(mdevmig_model_cfg_read(dev.model(), 253, buf, 4), -EINVAL);
  EXPECT_EQ(mdevmig_model_cfg_write(dev.model(), 0xffffffff, buf, 2), -EINVAL);
  EXPECT_EQ(mdevmig_model_cfg_read(dev.model(), 252, buf, 4), 0);
  EXPECT_EQ(mdevmig_model_cfg_read(dev.model(), 256, buf, 0), 0);
}

TEST(Config, ResetRestoresDefaults) {
  SimDevice dev(kMem);
  uint8_t fresh[MDEVMIG_CFG_SIZE], now[MDEVMIG_CFG_SIZE];
  ASSERT_EQ(mdevmig_model_cfg_read(dev.model(), 0, fresh, sizeof(fresh)), 0);
  dev.cfg_write(0x04, 0x0546, 2);
  dev.cfg_write(0x10, 0xfebf0000);
  dev.cfg_write(0x18, 0xe0000000);
  dev.cfg_write(MDEVMIG_CFG_MSI_CAP + 2, 0x21, 2);
  mdevmig_model_reset(dev.model());
  ASSERT_EQ(mdevmig_model_cfg_read(dev.model(), 0, now, sizeof(now)), 0);
  EXPECT_EQ(0, std::memcmp(fresh, now, sizeof(now)));
}

TEST(Config, InitRejectsBadGeometry) {
  static const mdevmig_model_ops ops = {
      .dma_read = [](void*, uint64_t, void*, size_t) { return 0; },
      .dma_write = [](void*, uint64_t, const void*, size_t) { return 0; },
      .msi = [](void*, unsigned int) {},
      .intx = [](void*, bool) {},
      .kick = [](void*) {},
      .mem_dirty = [](void*, uint64_t, uint64_t) {},
  };
  uint8_t mem[8192];
  mdevmig_model m;
  mdevmig_model_config cfg{.mem = mem, .mem_size = 0, .type_id = 0};
  EXPECT_EQ(mdevmig_model_init(&m, &cfg, &ops, nullptr), -EINVAL);
  cfg.mem_size = 4097;
  EXPECT_EQ(mdevmig_model_init(&m, &cfg, &ops, nullptr), -EINVAL);
  cfg.mem_size = MDEVMIG_MEM_MAX_SIZE + MDEVMIG_PAGE_SIZE;
  EXPECT_EQ(mdevmig_model_init(&m, &cfg, &ops, nullptr), -EINVAL);
  cfg.mem_size = sizeof(mem);
  cfg.mem = nullptr;
  EXPECT_EQ(mdevmig_model_init(&m, &cfg, &ops, nullptr), -EINVAL);
  cfg.mem = mem;
  mdevmig_model_ops partial = ops;
  partial.kick = nullptr;
  EXPECT_EQ(mdevmig_model_init(&m, &cfg, &partial, nullptr), -EINVAL);
  EXPECT_EQ(mdevmig_model_init(&m, &cfg, &ops, nullptr), 0);
}

}  // namespace
}  // namespace mdevmig::vendor_sim
