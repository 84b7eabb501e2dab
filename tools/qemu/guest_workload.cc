// The live workload of GuestDriver: what is due when (rates), and the random
// descriptors it submits (opcodes mixed, buffers from tools/guest's layout).
#include <algorithm>

#include "tools/qemu/guest.h"

namespace mdevmig::qemu {
namespace {

using namespace std::chrono_literals;

}  // namespace

mdevmig_dma_desc GuestDriver::random_desc(uint64_t desc) {
  const uint64_t half = state_.mem_size() / 2;  // the DMA half of device memory
  const auto slot = static_cast<uint32_t>(desc % guest::Layout::kSlots);
  auto pick = [&](uint64_t lo, uint64_t hi) { return lo + rng_() % (hi - lo + 1); };
  auto dev_off = [&](uint64_t len) { return pick(0, (half - len) / 8) * 8; };
  mdevmig_dma_desc d{};
  d.user_data = (state_.run_seed << 32) ^ desc;
  d.flags = rng_() % 4 != 0 ? MDEVMIG_DMA_F_NO_IRQ : 0;
  uint64_t small = std::min<uint64_t>(pick(1, guest::Layout::kSlotSize / 8) * 8, half);
  uint32_t r = static_cast<uint32_t>(rng_() % 100);
  if (r < 30) {
    d.opcode = MDEVMIG_DMA_OP_COPY_TO_DEV;
    d.len = small;
    d.src = place_.guest.src(slot);
    d.dst = dev_off(d.len);
  } else if (r < 55) {
    d.opcode = MDEVMIG_DMA_OP_COPY_FROM_DEV;
    d.len = small;
    d.src = dev_off(d.len);
    d.dst = place_.guest.dst(slot);
  } else if (r < 75) {
    d.opcode = MDEVMIG_DMA_OP_FILL;
    d.len = std::min<uint64_t>(pick(1, 64) * 4096, half);
    d.dst = dev_off(d.len);
    d.pattern = rng_();
  } else if (r < 90) {
    // Long enough to be in flight when the device stops (the engine works in 64 KiB steps).
    d.opcode = MDEVMIG_DMA_OP_HASH;
    d.len = std::min<uint64_t>(pick(1, 512) * 4096, half);
    d.src = dev_off(d.len);
    d.dst = place_.guest.result(ring_.slot(desc));
  } else if (r < 96) {
    d.opcode = MDEVMIG_DMA_OP_COPY_GUEST;
    d.len = small;
    d.src = place_.guest.src(slot);
    d.dst = place_.guest.dst(slot);
  } else {
    // A bad descriptor: it must complete with BAD_RANGE and not stall the queue.
    d.opcode = MDEVMIG_DMA_OP_FILL;
    d.len = 4096;
    d.dst = state_.mem_size();
    d.pattern = 1;
    d.flags = 0;
  }
  return d;
}

void GuestDriver::start_clock() {
  t0_ = Clock::now();
  auto first = [&](double rate) { return rate > 0 ? t0_ : Clock::time_point::max(); };
  next_write_ = first(rates_.bar2_writes_per_s);
  next_desc_ = first(rates_.descs_per_s);
  next_scratch_ = first(rates_.scratch_per_s);
  next_irq_poll_ = t0_;
}

Result<Clock::time_point> GuestDriver::step(QtestClient& qt) {
  Clock::time_point now = Clock::now();
  auto advance = [&](Clock::time_point& next, double rate) {
    auto period =
        std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / rate));
    // Falling behind (qtest is slower than asked) must not turn into a burst later.
    next = std::max(next + period, now - period);
  };
  if (now >= next_irq_poll_) {
    MDEVMIG_TRY(service_irqs(qt));
    next_irq_poll_ = now + 10ms;
  }
  if (now >= next_write_ && bar2_writes_on_) {
    const uint64_t w = next_bar2_write();
    const uint64_t half = state_.mem_size() / 2, pages = half / 4096;
    Op op;
    op.kind = Op::Kind::kBar2Write;
    // Write w lands in its own 8 bytes (unique until w wraps pages * 512), a new page
    // each time: the write rate is the dirty-page rate.
    op.offset = half + (w % pages) * 4096 + ((w / pages) % 512) * 8;
    op.value = 0x5700000000000000ull | (state_.run_seed & 0xff) << 48 | (w & 0xffffffffffffull);
    MDEVMIG_TRY(issue(qt, op));
    advance(next_write_, rates_.bar2_writes_per_s);
  }
  if (pressure_on_) {
    // A big FILL in the queue at all times: when the last one is consumed, add one.
    const uint64_t n = next_desc();
    if (pressure_last_ >= head_seen_) {
      uint32_t head = MDEVMIG_TRY(reg(qt, MDEVMIG_REG_RING_HEAD));
      head_seen_ = n - ((static_cast<uint32_t>(n) - head) & (layout::kRingEntries - 1));
    }
    if (pressure_last_ < head_seen_ && n - head_seen_ < layout::kMaxOutstanding) {
      const uint64_t half = state_.mem_size() / 2;
      mdevmig_dma_desc d{};
      d.opcode = MDEVMIG_DMA_OP_FILL;
      d.flags = MDEVMIG_DMA_F_NO_IRQ;
      d.len = std::min(rates_.pressure_fill_bytes, half) & ~uint64_t{7};
      d.dst = (rng_() % ((half - d.len) / 8 + 1)) * 8;
      d.pattern = rng_();
      d.user_data = (state_.run_seed << 32) ^ n;
      pressure_last_ = n;
      MDEVMIG_TRY(submit(qt, d));
    }
  }
  if (now >= next_desc_) {
    const uint64_t n = next_desc();
    if (n - head_seen_ >= layout::kMaxOutstanding) {
      uint32_t head = MDEVMIG_TRY(reg(qt, MDEVMIG_REG_RING_HEAD));
      head_seen_ = n - ((static_cast<uint32_t>(n) - head) & (layout::kRingEntries - 1));
    }
    if (n - head_seen_ < layout::kMaxOutstanding) {
      MDEVMIG_TRY(submit(qt, random_desc(n)));
      advance(next_desc_, rates_.descs_per_s);
    } else {
      next_desc_ = now + 2ms;
    }
  }
  if (now >= next_scratch_) {
    Op op;
    op.kind = Op::Kind::kScratch;
    op.offset = rng_() % MDEVMIG_NR_SCRATCH;
    op.value = 0x80000000u | (next_seq() & 0x7fffffff);
    MDEVMIG_TRY(issue(qt, op));
    advance(next_scratch_, rates_.scratch_per_s);
  }
  stats_.seconds = std::chrono::duration<double>(Clock::now() - t0_).count();
  return std::min({next_write_, next_desc_, next_scratch_, now + 10ms});
}

}  // namespace mdevmig::qemu
