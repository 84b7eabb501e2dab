// Pins the layout of every structure in <linux/mdevmig.h>: these are wire formats
// (guest memory, the state stream), so a size or offset change is a format change and
// must come with a version bump, not by accident.
#include <linux/mdevmig.h>

#include <cstddef>
#include <set>

#include <gtest/gtest.h>

#define PIN(type, field, off) static_assert(offsetof(type, field) == (off), #type "." #field)

// ---- DMA descriptor and completion (guest memory) ----
static_assert(sizeof(mdevmig_dma_desc) == 64);
static_assert(alignof(mdevmig_dma_desc) == 8);
PIN(mdevmig_dma_desc, opcode, 0);
PIN(mdevmig_dma_desc, flags, 4);
PIN(mdevmig_dma_desc, src, 8);
PIN(mdevmig_dma_desc, dst, 16);
PIN(mdevmig_dma_desc, len, 24);
PIN(mdevmig_dma_desc, pattern, 32);
PIN(mdevmig_dma_desc, cmpl, 40);
PIN(mdevmig_dma_desc, user_data, 48);
PIN(mdevmig_dma_desc, rsvd, 56);

static_assert(sizeof(mdevmig_dma_cmpl) == 32);
PIN(mdevmig_dma_cmpl, status, 0);
PIN(mdevmig_dma_cmpl, seq, 4);
PIN(mdevmig_dma_cmpl, user_data, 8);
PIN(mdevmig_dma_cmpl, bytes_done, 16);
PIN(mdevmig_dma_cmpl, rsvd, 24);

// ---- State stream ----
static_assert(sizeof(mdevmig_rec_hdr) == 24);
PIN(mdevmig_rec_hdr, tag, 0);
PIN(mdevmig_rec_hdr, flags, 4);
PIN(mdevmig_rec_hdr, length, 8);
PIN(mdevmig_rec_hdr, hash, 16);

static_assert(sizeof(mdevmig_rec_compat) == 32);
PIN(mdevmig_rec_compat, stream_version, 0);
PIN(mdevmig_rec_compat, model_version, 4);
PIN(mdevmig_rec_compat, type_id, 8);
PIN(mdevmig_rec_compat, page_size, 12);
PIN(mdevmig_rec_compat, mem_size, 16);
PIN(mdevmig_rec_compat, rsvd, 24);

static_assert(sizeof(mdevmig_rec_pages) == 16);
PIN(mdevmig_rec_pages, first_page, 0);
PIN(mdevmig_rec_pages, count, 8);
PIN(mdevmig_rec_pages, rsvd, 12);

static_assert(sizeof(mdevmig_rec_config) == 40);
PIN(mdevmig_rec_config, command, 0);
PIN(mdevmig_rec_config, cache_line, 2);
PIN(mdevmig_rec_config, intr_line, 3);
PIN(mdevmig_rec_config, bar0, 4);
PIN(mdevmig_rec_config, bar2, 8);
PIN(mdevmig_rec_config, msi_ctrl, 16);
PIN(mdevmig_rec_config, msi_data, 18);
PIN(mdevmig_rec_config, msi_mask, 20);
PIN(mdevmig_rec_config, msi_addr, 24);
PIN(mdevmig_rec_config, rsvd, 32);

static_assert(sizeof(mdevmig_rec_regs) == 120);
PIN(mdevmig_rec_regs, ctrl, 0);
PIN(mdevmig_rec_regs, int_status, 4);
PIN(mdevmig_rec_regs, int_mask, 8);
PIN(mdevmig_rec_regs, rsvd0, 12);
PIN(mdevmig_rec_regs, scratch, 16);
PIN(mdevmig_rec_regs, ring_base, 80);
PIN(mdevmig_rec_regs, ring_size, 88);
PIN(mdevmig_rec_regs, ring_head, 92);
PIN(mdevmig_rec_regs, ring_tail, 96);
PIN(mdevmig_rec_regs, seq, 100);
PIN(mdevmig_rec_regs, err_desc, 104);
PIN(mdevmig_rec_regs, err_dma, 108);
PIN(mdevmig_rec_regs, err_ring, 112);
PIN(mdevmig_rec_regs, rsvd1, 116);

static_assert(sizeof(mdevmig_rec_engine) == 160);
PIN(mdevmig_rec_engine, flags, 0);
PIN(mdevmig_rec_engine, rsvd, 4);
PIN(mdevmig_rec_engine, desc, 8);
PIN(mdevmig_rec_engine, progress, 72);
PIN(mdevmig_rec_engine, xxh_total_len, 80);
PIN(mdevmig_rec_engine, xxh_v, 88);
PIN(mdevmig_rec_engine, xxh_mem, 120);
PIN(mdevmig_rec_engine, xxh_memsize, 152);
PIN(mdevmig_rec_engine, rsvd2, 156);

static_assert(sizeof(mdevmig_rec_irq) == 8);
PIN(mdevmig_rec_irq, intx_asserted, 0);
PIN(mdevmig_rec_irq, msi_pending, 4);

// ---- Constants the formats depend on ----
static_assert(MDEVMIG_PAGE_SIZE == 4096);
static_assert(MDEVMIG_REC_MAX_PAYLOAD ==
              sizeof(mdevmig_rec_pages) + MDEVMIG_REC_PAGES_MAX * MDEVMIG_PAGE_SIZE);
static_assert(MDEVMIG_LOADER_BUF_SIZE >= MDEVMIG_REC_MAX_PAYLOAD);
static_assert(MDEVMIG_REC_TAG(1) >> 16 == MDEVMIG_REC_MAGIC);
static_assert((MDEVMIG_REGS_SIZE & (MDEVMIG_REGS_SIZE - 1)) == 0);
static_assert(MDEVMIG_REG_SCRATCH(MDEVMIG_NR_SCRATCH - 1) < MDEVMIG_REG_RING_BASE_LO);
static_assert(MDEVMIG_REG_ERR_RING < MDEVMIG_REGS_SIZE);
static_assert(MDEVMIG_REG_RING_BASE_LO % 8 == 0, "ring base is one 64-bit register");
static_assert(MDEVMIG_CFG_MSI_CAP + MDEVMIG_MSI_CAP_SIZE <= MDEVMIG_CFG_SIZE);
static_assert((MDEVMIG_RING_MAX_ENTRIES & (MDEVMIG_RING_MAX_ENTRIES - 1)) == 0);
static_assert(MDEVMIG_DMA_STEP_BYTES <= MDEVMIG_DMA_MAX_LEN);

// A single bit flip in a record header must not turn one known record into another
// valid one: every fixed-size known type has its own payload length, none of which a
// PAGES record (16 + n pages) can have.
TEST(UapiLayout, KnownRecordLengthsAreDistinct) {
  const size_t fixed[] = {sizeof(mdevmig_rec_compat), sizeof(mdevmig_rec_config),
                          sizeof(mdevmig_rec_regs),   sizeof(mdevmig_rec_engine),
                          sizeof(mdevmig_rec_irq),    0 /* END */};
  std::set<size_t> seen;
  for (size_t len : fixed) {
    EXPECT_TRUE(seen.insert(len).second) << len;
    EXPECT_LT(len, sizeof(mdevmig_rec_pages) + MDEVMIG_PAGE_SIZE) << len;
  }
}

TEST(UapiLayout, RecordTagsAreDistinct) {
  const unsigned tags[] = {MDEVMIG_REC_COMPAT, MDEVMIG_REC_CONFIG, MDEVMIG_REC_REGS,
                           MDEVMIG_REC_ENGINE, MDEVMIG_REC_IRQ,    MDEVMIG_REC_PAGES,
                           MDEVMIG_REC_END};
  std::set<unsigned> seen(std::begin(tags), std::end(tags));
  EXPECT_EQ(seen.size(), std::size(tags));
}
