// The ring driver over the simulator backend: layout, numbering and wrap, completion
// records, prefill, doorbell batching, interrupt acknowledgement, and every opcode the
// device does not implement completing with BAD_OPCODE without stalling the queue.
#include "tools/guest/ring.h"

#include <linux/pci_regs.h>

#include <cstring>
#include <vector>

#include <gtest/gtest.h>

#include "sim.h"
#include "tools/guest/descriptors.h"
#include "tools/guest/sim_port.h"

namespace mdevmig::guest {
namespace {

constexpr uint64_t kMem = 1 << 20;
constexpr Layout kLayout{.base = 0x40000000};

template <typename T>
T must(Result<T> r) {
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message());
  return r.ok() ? std::move(r).value() : T{};
}

class RingTest : public ::testing::Test {
 protected:
  RingTest() {
    EXPECT_TRUE(port.map(kLayout).ok());
    EXPECT_TRUE(enable_bus_master(port).ok());
    EXPECT_TRUE(ring.program(port).ok());
  }
  mdevmig_dma_cmpl exec(const mdevmig_dma_desc& d) {
    uint32_t slot = must(ring.submit(port, d));
    dev.run_to_idle();
    return must(ring.completion(port, slot));
  }

  vendor_sim::SimDevice dev{kMem};
  SimPort port{dev};
  Ring ring{kLayout, 16};
};

TEST_F(RingTest, ProgramsTheLayoutsRing) {
  EXPECT_EQ(dev.mmio_read64(MDEVMIG_REG_RING_BASE_LO), kLayout.ring());
  EXPECT_EQ(dev.mmio_read32(MDEVMIG_REG_RING_SIZE), 16u);
  EXPECT_EQ(dev.mmio_read32(MDEVMIG_REG_CTRL), MDEVMIG_CTRL_ENABLE);
  EXPECT_EQ(dev.cfg_read(PCI_COMMAND, 2) & (PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER),
            uint32_t{PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER});
}

TEST_F(RingTest, DescriptorsRunAndComplete) {
  std::vector<uint8_t> src(5000);
  for (std::size_t i = 0; i < src.size(); ++i) src[i] = static_cast<uint8_t>(i * 13);
  ASSERT_TRUE(port.mem_write(kLayout.src(2), src).ok());
  auto d = copy_to_dev(kLayout.src(2), 4096, src.size());
  d.user_data = 0xabc;
  auto c = exec(d);
  EXPECT_EQ(c.status, uint32_t{MDEVMIG_DMA_ST_OK});
  EXPECT_EQ(c.seq, 0u);
  EXPECT_EQ(c.user_data, 0xabcu);
  EXPECT_EQ(c.bytes_done, src.size());
  EXPECT_EQ(std::memcmp(dev.mem() + 4096, src.data(), src.size()), 0);

  EXPECT_EQ(exec(copy_from_dev(4096, kLayout.dst(5), src.size())).status,
            uint32_t{MDEVMIG_DMA_ST_OK});
  std::vector<uint8_t> back(src.size());
  ASSERT_TRUE(port.mem_read(kLayout.dst(5), back).ok());
  EXPECT_EQ(back, src);
  EXPECT_EQ(exec(fill(0, 64, 1)).seq, 2u);
  EXPECT_EQ(exec(hash(0, kMem, kLayout.result(3))).status, uint32_t{MDEVMIG_DMA_ST_OK});
  EXPECT_EQ(exec(copy_guest(kLayout.src(2), kLayout.dst(6), 8)).seq, 4u);
  EXPECT_EQ(ring.queued(), 5u);
  EXPECT_EQ(dev.mmio_read32(MDEVMIG_REG_SEQ), 5u);
}

TEST_F(RingTest, WrapsAndBatchesDoorbells) {
  for (uint32_t i = 0; i < 40; ++i) {
    uint32_t slot = must(ring.queue(port, fill(i * 8, 8, i)));
    EXPECT_EQ(slot, i % 16);
    EXPECT_EQ(must(ring.completion(port, slot)).status, MDEVMIG_DMA_ST_PENDING) << "prefilled";
    if (i % 5 == 4) {
      ASSERT_TRUE(ring.doorbell(port).ok());
      dev.run_to_idle();
    }
  }
  EXPECT_EQ(dev.mmio_read32(MDEVMIG_REG_SEQ), 40u);
  EXPECT_EQ(dev.mmio_read32(MDEVMIG_REG_RING_HEAD), 40u % 16);
  EXPECT_EQ(must(ring.wait(port, 39 % 16)), uint32_t{MDEVMIG_DMA_ST_OK});
  EXPECT_EQ(must(ring.completion(port, 39 % 16)).seq, 39u);
}

TEST_F(RingTest, WithoutPrefillLeavesCompletionsAlone) {
  Ring bare{kLayout, 16, false};
  ASSERT_TRUE(bare.program(port).ok());
  uint32_t slot = must(bare.queue(port, fill(0, 8, 1)));
  EXPECT_EQ(must(bare.completion(port, slot)).status, 0u);
}

TEST_F(RingTest, AcknowledgesInterrupts) {
  ASSERT_TRUE(port.set_reg(MDEVMIG_REG_INT_MASK, 0).ok());
  exec(fill(0, 8, 1));
  EXPECT_TRUE(dev.intx);
  EXPECT_EQ(must(ring.acknowledge(port)), uint32_t{MDEVMIG_INT_DONE});
  EXPECT_FALSE(dev.intx);
  EXPECT_EQ(must(ring.acknowledge(port)), 0u);
}

// Opcodes outside 1..MDEVMIG_DMA_OP_MAX: the uAPI promises a BAD_OPCODE completion
// (ERR_DESC counts it, DONE and ERROR are raised) and a queue that keeps going.
TEST_F(RingTest, UnknownOpcodesCompleteWithBadOpcode) {
  for (uint32_t op : {0u, uint32_t{MDEVMIG_DMA_OP_MAX} + 1, 0x80u, 0xffffffffu}) {
    SCOPED_TRACE(op);
    ASSERT_TRUE(port.set_reg(MDEVMIG_REG_INT_STATUS, MDEVMIG_INT_ALL).ok());
    uint32_t before = dev.mmio_read32(MDEVMIG_REG_ERR_DESC);
    auto c = exec(raw(op, 0, 0, 4096));
    EXPECT_EQ(c.status, uint32_t{MDEVMIG_DMA_ST_BAD_OPCODE});
    EXPECT_EQ(c.bytes_done, 0u);
    EXPECT_EQ(dev.mmio_read32(MDEVMIG_REG_ERR_DESC), before + 1);
    EXPECT_EQ(dev.mmio_read32(MDEVMIG_REG_INT_STATUS),
              uint32_t{MDEVMIG_INT_DONE | MDEVMIG_INT_ERROR});
    EXPECT_EQ(exec(fill(0, 8, 7)).status, uint32_t{MDEVMIG_DMA_ST_OK}) << "the queue keeps going";
    EXPECT_EQ(dev.mem()[0], 7);
  }
  EXPECT_EQ(dev.mmio_read32(MDEVMIG_REG_ERR_DMA), 0u);
  // CAPS names exactly the implemented opcodes.
  EXPECT_EQ(dev.mmio_read32(MDEVMIG_REG_CAPS), ((1u << (MDEVMIG_DMA_OP_MAX + 1)) - 1) & ~1u);
}

}  // namespace
}  // namespace mdevmig::guest
