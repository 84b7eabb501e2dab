// The replay model: what is replayed into it runs in vendor/'s engine (the state is
// the model's, not a second implementation), and a copy continues on its own.
#include "tools/guest/replay.h"

#include <cstring>
#include <vector>

#include <gtest/gtest.h>

#include "tools/guest/descriptors.h"

namespace mdevmig::guest {
namespace {

constexpr uint64_t kMem = 1 << 20;
constexpr Layout kLayout{.base = 0x100000};

TEST(Replay, BringsUpLikeADriver) {
  Replay r(kMem, kLayout, 256, false);
  EXPECT_EQ(r.reg(MDEVMIG_REG_RING_BASE_LO), kLayout.ring());
  EXPECT_EQ(r.reg(MDEVMIG_REG_RING_SIZE), 256u);
  EXPECT_EQ(r.reg(MDEVMIG_REG_CTRL), MDEVMIG_CTRL_ENABLE);
  EXPECT_EQ(r.reg(MDEVMIG_REG_INT_MASK), 0u);
  EXPECT_EQ(r.mem_size(), kMem);
}

TEST(Replay, DoorbellsRunInTheModel) {
  Replay r(kMem, kLayout, 256, false);
  std::vector<uint8_t> src(300, 0x5a);
  ASSERT_TRUE(r.port().mem_write(kLayout.src(1), src).ok());
  ASSERT_TRUE(r.ring().submit(r.port(), copy_to_dev(kLayout.src(1), 100, src.size())).ok());
  ASSERT_TRUE(r.ring().submit(r.port(), fill(kMem, 8, 1)).ok());  // out of range
  r.run();
  EXPECT_EQ(std::memcmp(r.mem().data() + 100, src.data(), src.size()), 0);
  EXPECT_EQ(r.reg(MDEVMIG_REG_SEQ), 2u);
  EXPECT_EQ(r.reg(MDEVMIG_REG_ERR_DESC), 1u);
  mdevmig_dma_cmpl c;
  std::memcpy(&c, r.guest(kLayout.cmpl(1), sizeof c).data(), sizeof c);
  EXPECT_EQ(c.status, uint32_t{MDEVMIG_DMA_ST_BAD_RANGE});
  EXPECT_EQ(c.seq, 1u);
  ASSERT_TRUE(r.port().write64(Bar::kMem, 4096, 0x1122334455667788ull).ok());
  ASSERT_TRUE(r.port().set_reg(MDEVMIG_REG_SCRATCH(3), 0x80000001u).ok());
  EXPECT_EQ(r.mem()[4096], 0x88);
  EXPECT_EQ(r.reg(MDEVMIG_REG_SCRATCH(3)), 0x80000001u);
}

TEST(Replay, CopiesContinueOnTheirOwn) {
  Replay a(kMem, kLayout, 256, false);
  ASSERT_TRUE(a.ring().submit(a.port(), fill(0, 4096, 0x0101010101010101ull)).ok());
  a.run();
  Replay b = a;
  EXPECT_EQ(std::memcmp(a.mem().data(), b.mem().data(), kMem), 0);
  EXPECT_EQ(std::memcmp(a.guest(kLayout.base, Layout::kSize).data(),
                        b.guest(kLayout.base, Layout::kSize).data(), Layout::kSize),
            0);
  EXPECT_EQ(b.reg(MDEVMIG_REG_SEQ), 1u);
  EXPECT_EQ(b.ring().queued(), 1u);
  ASSERT_TRUE(b.ring().submit(b.port(), fill(0, 8, 2)).ok());
  b.run();
  EXPECT_EQ(b.mem()[0], 2);
  EXPECT_EQ(a.mem()[0], 1);
  EXPECT_EQ(b.reg(MDEVMIG_REG_SEQ), 2u);
  EXPECT_EQ(a.reg(MDEVMIG_REG_SEQ), 1u);
  a = b;  // back to a checkpoint
  EXPECT_EQ(a.mem()[0], 2);
  EXPECT_EQ(a.reg(MDEVMIG_REG_SEQ), 2u);
  ASSERT_TRUE(a.ring().submit(a.port(), fill(0, 8, 3)).ok());
  a.run();
  EXPECT_EQ(a.mem()[0], 3);
  EXPECT_EQ(b.mem()[0], 2);
}

TEST(Replay, SnapshotsContinueElsewhere) {
  Replay a(kMem, kLayout, 64, true);
  ASSERT_TRUE(a.ring().submit(a.port(), fill(0, 4096, 0x0101010101010101ull)).ok());
  ASSERT_TRUE(a.ring().submit(a.port(), copy_from_dev(0, kLayout.data(), 64)).ok());
  ASSERT_TRUE(a.port().set_reg(MDEVMIG_REG_SCRATCH(5), 0x1234u).ok());
  a.run();
  const std::vector<uint8_t> snap = a.snapshot();
  Replay b(kMem, kLayout, 64, true);
  ASSERT_TRUE(b.restore(snap, a.ring().queued()).ok());
  EXPECT_EQ(std::memcmp(a.mem().data(), b.mem().data(), kMem), 0);
  EXPECT_EQ(std::memcmp(a.guest(kLayout.base, Layout::kSize).data(),
                        b.guest(kLayout.base, Layout::kSize).data(), Layout::kSize),
            0);
  for (uint32_t reg :
       {MDEVMIG_REG_SEQ, MDEVMIG_REG_RING_HEAD, MDEVMIG_REG_RING_TAIL, MDEVMIG_REG_SCRATCH(5)})
    EXPECT_EQ(b.reg(reg), a.reg(reg)) << reg;
  // Both go on alike.
  for (Replay* r : {&a, &b}) {
    ASSERT_TRUE(r->ring().submit(r->port(), fill(8192, 8, 7)).ok());
    r->run();
  }
  EXPECT_EQ(b.reg(MDEVMIG_REG_SEQ), 3u);
  EXPECT_EQ(std::memcmp(a.guest(kLayout.cmpl(0), 3 * sizeof(mdevmig_dma_cmpl)).data(),
                        b.guest(kLayout.cmpl(0), 3 * sizeof(mdevmig_dma_cmpl)).data(),
                        3 * sizeof(mdevmig_dma_cmpl)),
            0);
  EXPECT_EQ(b.mem()[8192], 7);
  // A stream the model refuses is an error, not an abort.
  std::vector<uint8_t> bad = snap;
  bad[0] ^= 0xff;
  EXPECT_FALSE(b.restore(bad, 0).ok());
  EXPECT_FALSE(b.restore(std::span(snap).first(100), 0).ok());
}

}  // namespace
}  // namespace mdevmig::guest
