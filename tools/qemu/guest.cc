#include "tools/qemu/guest.h"

#include <linux/pci_regs.h>
#include <xxhash.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <thread>

namespace mdevmig::qemu {
namespace {

using namespace std::chrono_literals;

constexpr uint32_t kDescSize = sizeof(mdevmig_dma_desc);
constexpr uint32_t kCmplSize = sizeof(mdevmig_dma_cmpl);
static_assert(kDescSize == 64 && kCmplSize == 32, "uapi layout");
constexpr uint64_t kFillPattern = 0xc3a5c3a5c3a5c3a5ull;
constexpr uint16_t kPciConfigAddr = 0xcf8, kPciConfigData = 0xcfc;

std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%" PRIx64, v);
  return buf;
}

uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Configuration space of bus 0 through the 0xcf8/0xcfc mechanism, as firmware does it.
uint32_t cfg_address(uint32_t devfn, uint32_t off) { return 0x80000000u | devfn << 8 | (off & 0xfc); }

Result<uint32_t> cfg_read32(QtestClient& qt, uint32_t devfn, uint32_t off) {
  MDEVMIG_TRY(qt.outl(kPciConfigAddr, cfg_address(devfn, off)));
  return qt.inl(kPciConfigData);
}
Result<void> cfg_write32(QtestClient& qt, uint32_t devfn, uint32_t off, uint32_t v) {
  MDEVMIG_TRY(qt.outl(kPciConfigAddr, cfg_address(devfn, off)));
  return qt.outl(kPciConfigData, v);
}
Result<uint16_t> cfg_read16(QtestClient& qt, uint32_t devfn, uint32_t off) {
  MDEVMIG_TRY(qt.outl(kPciConfigAddr, cfg_address(devfn, off)));
  return qt.inw(static_cast<uint16_t>(kPciConfigData + (off & 2)));
}
Result<void> cfg_write16(QtestClient& qt, uint32_t devfn, uint32_t off, uint16_t v) {
  MDEVMIG_TRY(qt.outl(kPciConfigAddr, cfg_address(devfn, off)));
  return qt.outw(static_cast<uint16_t>(kPciConfigData + (off & 2)), v);
}

Error device_error(std::string what) { return Error::make(EIO, "mdevmig device", std::move(what)); }

// First byte where `a` and `b` differ, and how many differ.
std::string describe_diff(const std::string& what, uint64_t base, std::span<const uint8_t> got,
                          std::span<const uint8_t> want) {
  uint64_t first = UINT64_MAX, count = 0;
  for (std::size_t i = 0; i < got.size() && i < want.size(); ++i)
    if (got[i] != want[i]) {
      if (first == UINT64_MAX) first = i;
      ++count;
    }
  if (count == 0) return {};
  char buf[200];
  std::snprintf(buf, sizeof buf, "%s: %" PRIu64 " bytes differ, first at %s (got 0x%02x, want 0x%02x)", what.c_str(),
                count, hex(base + first).c_str(), got[first], want[first]);
  return buf;
}

}  // namespace

const char* irq_mode_name(IrqMode m) { return m == IrqMode::kIntx ? "intx" : "msi"; }

Result<IrqMode> parse_irq_mode(std::string_view text) {
  if (text == "intx") return IrqMode::kIntx;
  if (text == "msi") return IrqMode::kMsi;
  return Error::make(EINVAL, "parse --irq", "'" + std::string(text) + "' (want intx or msi)");
}

// ---- the expected state -------------------------------------------------------------------

void source_buffer(uint64_t run_seed, uint64_t desc, std::span<uint8_t> out) {
  uint64_t x = run_seed ^ (desc * 0x2545f4914f6cdd1dull);
  std::size_t i = 0;
  for (; i + 8 <= out.size(); i += 8) {
    uint64_t v = splitmix64(x);
    std::memcpy(out.data() + i, &v, 8);
  }
  uint64_t v = splitmix64(x);
  std::memcpy(out.data() + i, &v, out.size() - i);
}

ExpectedState::ExpectedState(uint64_t mem_size_, uint64_t run_seed_)
    : mem_size(mem_size_),
      mem(mem_size_),
      dst(layout::kSlots * layout::kSlotSize),
      cmpl(layout::kRingEntries * kCmplSize),
      hash_out(layout::kRingEntries * 8),
      ring(layout::kRingEntries * kDescSize),
      run_seed(run_seed_) {}

void ExpectedState::apply(const Op& op) {
  ++ops;
  switch (op.kind) {
    case Op::Kind::kBar2Write:
      MDEVMIG_CHECK(op.offset + 8 <= mem_size, "BAR2 write at %" PRIu64, op.offset);
      std::memcpy(mem.data() + op.offset, &op.value, 8);
      ++bar2_writes;
      return;
    case Op::Kind::kScratch:
      scratch[op.offset] = static_cast<uint32_t>(op.value);
      return;
    case Op::Kind::kSubmit:
      break;
  }
  const mdevmig_dma_desc& d = op.d;
  std::memcpy(ring.data() + (op.desc % layout::kRingEntries) * kDescSize, &d, kDescSize);
  // The guest RAM areas the device writes; anything else the harness never targets.
  auto ram = [&](uint64_t addr, uint64_t len) -> uint8_t* {
    struct Area { uint64_t base; std::vector<uint8_t>* v; } areas[] = {
        {layout::kDst, &dst}, {layout::kCmpl, &cmpl}, {layout::kHashOut, &hash_out}};
    for (auto& a : areas)
      if (addr >= a.base && addr + len <= a.base + a.v->size()) return a.v->data() + (addr - a.base);
    MDEVMIG_CHECK(false, "DMA to untracked guest RAM %" PRIx64 "+%" PRIu64, addr, len);
    return nullptr;
  };
  auto dev_ok = [&](uint64_t off, uint64_t len) { return off <= mem_size && len <= mem_size - off; };
  uint32_t status = MDEVMIG_DMA_ST_OK;
  if (d.len > MDEVMIG_DMA_MAX_LEN) status = MDEVMIG_DMA_ST_BAD_RANGE;
  else if ((d.opcode == MDEVMIG_DMA_OP_COPY_TO_DEV || d.opcode == MDEVMIG_DMA_OP_FILL) && !dev_ok(d.dst, d.len))
    status = MDEVMIG_DMA_ST_BAD_RANGE;
  else if ((d.opcode == MDEVMIG_DMA_OP_COPY_FROM_DEV || d.opcode == MDEVMIG_DMA_OP_HASH) && !dev_ok(d.src, d.len))
    status = MDEVMIG_DMA_ST_BAD_RANGE;

  if (status == MDEVMIG_DMA_ST_OK) {
    std::vector<uint8_t> src;
    if (d.opcode == MDEVMIG_DMA_OP_COPY_TO_DEV || d.opcode == MDEVMIG_DMA_OP_COPY_GUEST) {
      src.resize(d.len);
      source_buffer(run_seed, op.desc, src);
    }
    switch (d.opcode) {
      case MDEVMIG_DMA_OP_COPY_TO_DEV:
        std::memcpy(mem.data() + d.dst, src.data(), d.len);
        break;
      case MDEVMIG_DMA_OP_COPY_FROM_DEV:
        std::memcpy(ram(d.dst, d.len), mem.data() + d.src, d.len);
        break;
      case MDEVMIG_DMA_OP_COPY_GUEST:
        std::memcpy(ram(d.dst, d.len), src.data(), d.len);
        break;
      case MDEVMIG_DMA_OP_FILL:
        for (uint64_t i = 0; i < d.len; ++i) mem[d.dst + i] = static_cast<uint8_t>(d.pattern >> (8 * (i % 8)));
        break;
      case MDEVMIG_DMA_OP_HASH: {
        uint64_t h = XXH64(mem.data() + d.src, d.len, 0);
        std::memcpy(ram(d.dst, 8), &h, 8);
        break;
      }
      default:
        MDEVMIG_CHECK(false, "the harness generated opcode %u", d.opcode);
    }
  }
  mdevmig_dma_cmpl c{};
  c.status = status;
  c.seq = static_cast<uint32_t>(op.desc);
  c.user_data = d.user_data;
  c.bytes_done = status == MDEVMIG_DMA_ST_OK ? d.len : 0;
  std::memcpy(ram(d.cmpl, kCmplSize), &c, kCmplSize);
  ++descs;
  if (status != MDEVMIG_DMA_ST_OK) ++bad_descs;
}

std::string Verification::summary() const {
  char buf[200];
  std::snprintf(buf, sizeof buf, "%s: SEQ %" PRIu64 ", device memory XXH64 %016" PRIx64 ", %" PRIu64
                " pages compared through BAR2, interrupt %s",
                ok() ? "verified" : "MISMATCH", descs, mem_hash, pages_sampled,
                irq_delivered ? "delivered" : "NOT delivered");
  std::string s = buf;
  for (const auto& m : mismatches) s += "\n  - " + m;
  return s;
}

// ---- the driver -------------------------------------------------------------------------

GuestDriver::GuestDriver(uint64_t mem_size, IrqMode irq, uint64_t seed, WorkloadRates rates)
    : state_(mem_size, seed), irq_(irq), rates_(rates), rng_(seed) {}


Result<uint32_t> GuestDriver::reg(QtestClient& qt, uint32_t off) { return qt.readl(layout::kBar0 + off); }
Result<void> GuestDriver::set_reg(QtestClient& qt, uint32_t off, uint32_t v) {
  return qt.writel(layout::kBar0 + off, v);
}

Result<void> GuestDriver::bring_up(QtestClient& qt) {
  // Find the function on bus 0.
  int devfn = -1;
  for (uint32_t slot = 0; slot < 32 && devfn < 0; ++slot) {
    uint32_t id = MDEVMIG_TRY(cfg_read32(qt, slot << 3, PCI_VENDOR_ID));
    if (id == (MDEVMIG_PCI_DEVICE_ID << 16 | MDEVMIG_PCI_VENDOR_ID)) devfn = static_cast<int>(slot << 3);
  }
  if (devfn < 0) return Error::make(ENODEV, "PCI scan", "no 1de7:6d67 function on bus 0");
  const uint32_t fn = static_cast<uint32_t>(devfn);

  // BAR0: 32-bit memory of MDEVMIG_REGS_SIZE.
  MDEVMIG_TRY(cfg_write32(qt, fn, PCI_BASE_ADDRESS_0, 0xffffffff));
  uint32_t bar0 = MDEVMIG_TRY(cfg_read32(qt, fn, PCI_BASE_ADDRESS_0));
  if ((bar0 & PCI_BASE_ADDRESS_SPACE_IO) || (~(bar0 & ~0xfu) + 1) != MDEVMIG_REGS_SIZE)
    return device_error("BAR0 sizes as " + hex(bar0));
  MDEVMIG_TRY(cfg_write32(qt, fn, PCI_BASE_ADDRESS_0, static_cast<uint32_t>(layout::kBar0)));
  // BAR2: 64-bit prefetchable memory, at least the device memory.
  MDEVMIG_TRY(cfg_write32(qt, fn, PCI_BASE_ADDRESS_2, 0xffffffff));
  MDEVMIG_TRY(cfg_write32(qt, fn, PCI_BASE_ADDRESS_3, 0xffffffff));
  uint64_t lo = MDEVMIG_TRY(cfg_read32(qt, fn, PCI_BASE_ADDRESS_2));
  uint64_t hi = MDEVMIG_TRY(cfg_read32(qt, fn, PCI_BASE_ADDRESS_3));
  uint64_t bar2_size = ~(hi << 32 | (lo & ~0xfull)) + 1;
  if ((lo & 0xf) != (PCI_BASE_ADDRESS_MEM_TYPE_64 | PCI_BASE_ADDRESS_MEM_PREFETCH) || bar2_size < state_.mem_size ||
      layout::kBar2 % bar2_size != 0)
    return device_error("BAR2 sizes as " + hex(hi << 32 | lo));
  MDEVMIG_TRY(cfg_write32(qt, fn, PCI_BASE_ADDRESS_2, static_cast<uint32_t>(layout::kBar2)));
  MDEVMIG_TRY(cfg_write32(qt, fn, PCI_BASE_ADDRESS_3, static_cast<uint32_t>(layout::kBar2 >> 32)));
  MDEVMIG_TRY(cfg_write16(qt, fn, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER));

  // The registers say who they are.
  uint32_t id = MDEVMIG_TRY(reg(qt, MDEVMIG_REG_ID));
  uint32_t version = MDEVMIG_TRY(reg(qt, MDEVMIG_REG_VERSION));
  uint64_t mem = MDEVMIG_TRY(reg(qt, MDEVMIG_REG_MEM_SIZE_LO)) | uint64_t{MDEVMIG_TRY(reg(qt, MDEVMIG_REG_MEM_SIZE_HI))} << 32;
  if (id != MDEVMIG_ID_MAGIC || version != MDEVMIG_MODEL_VERSION || mem != state_.mem_size)
    return device_error("ID " + hex(id) + " version " + std::to_string(version) + " memory " + hex(mem) +
                        " (want memory " + hex(state_.mem_size) + ")");

  // Interrupts: MSI into a RAM word the harness watches, or INTx seen by intercepting
  // the IOAPIC's inputs.
  if (irq_ == IrqMode::kMsi) {
    uint32_t cap = MDEVMIG_TRY(cfg_read16(qt, fn, PCI_CAPABILITY_LIST)) & 0xfc;
    for (int hops = 0; cap != 0 && hops < 48; ++hops) {
      uint16_t hdr = MDEVMIG_TRY(cfg_read16(qt, fn, cap));
      if ((hdr & 0xff) == PCI_CAP_ID_MSI) break;
      cap = (hdr >> 8) & 0xfc;
    }
    if (cap == 0) return device_error("no MSI capability");
    MDEVMIG_TRY(cfg_write32(qt, fn, cap + PCI_MSI_ADDRESS_LO, static_cast<uint32_t>(layout::kMsi)));
    MDEVMIG_TRY(cfg_write32(qt, fn, cap + PCI_MSI_ADDRESS_HI, 0));
    MDEVMIG_TRY(cfg_write16(qt, fn, cap + PCI_MSI_DATA_64, layout::kMsiData));
    MDEVMIG_TRY(cfg_write32(qt, fn, cap + PCI_MSI_MASK_64, 0));
    MDEVMIG_TRY(cfg_write16(qt, fn, cap + PCI_MSI_FLAGS, PCI_MSI_FLAGS_ENABLE));
  } else {
    MDEVMIG_TRY(qt.irq_intercept_in("ioapic"));
  }
  MDEVMIG_TRY(set_reg(qt, MDEVMIG_REG_INT_MASK, 0));
  MDEVMIG_TRY(set_reg(qt, MDEVMIG_REG_INT_STATUS, MDEVMIG_INT_ALL));
  MDEVMIG_TRY(set_reg(qt, MDEVMIG_REG_RING_BASE_LO, static_cast<uint32_t>(layout::kRing)));
  MDEVMIG_TRY(set_reg(qt, MDEVMIG_REG_RING_BASE_HI, static_cast<uint32_t>(layout::kRing >> 32)));
  MDEVMIG_TRY(set_reg(qt, MDEVMIG_REG_RING_SIZE, layout::kRingEntries));
  MDEVMIG_TRY(set_reg(qt, MDEVMIG_REG_CTRL, MDEVMIG_CTRL_ENABLE));

  // Which IOAPIC input INTx A reaches (PCI interrupts are on inputs 16-23 on q35): the
  // device raises a software interrupt and the harness watches.
  if (irq_ == IrqMode::kIntx) {
    MDEVMIG_TRY(set_reg(qt, MDEVMIG_REG_INT_SET, MDEVMIG_INT_SW));
    Deadline until = deadline_in(10s);
    while (intx_line_ < 0) {
      MDEVMIG_TRY(qt.poll_irqs());
      for (const auto& [n, l] : qt.irqs())
        if (n >= 16 && l.raises > 0) intx_line_ = n;
      if (intx_line_ >= 0) break;
      if (Clock::now() >= until) return device_error("no INTx on IOAPIC inputs 16-23 after INT_SET");
      std::this_thread::sleep_for(2ms);
    }
    MDEVMIG_TRY(set_reg(qt, MDEVMIG_REG_INT_STATUS, MDEVMIG_INT_ALL));
  } else {
    MDEVMIG_TRY(qt.writel(layout::kMsi, 0));
    MDEVMIG_TRY(set_reg(qt, MDEVMIG_REG_INT_SET, MDEVMIG_INT_SW));
    MDEVMIG_TRY(wait_irq(qt, 0, 10s));
  }

  // Known contents everywhere: one FILL of all device memory, every scratch register.
  mdevmig_dma_desc fill{};
  fill.opcode = MDEVMIG_DMA_OP_FILL;
  fill.flags = MDEVMIG_DMA_F_NO_IRQ;
  fill.len = state_.mem_size;
  fill.pattern = kFillPattern;
  MDEVMIG_TRY(submit(qt, fill));
  for (uint32_t i = 0; i < MDEVMIG_NR_SCRATCH; ++i) {
    Op op;
    op.kind = Op::Kind::kScratch;
    op.offset = i;
    op.value = 0x80000000u | (next_seq() & 0x7fffffff);
    MDEVMIG_TRY(issue(qt, op));
  }
  return settle(qt);
}

Result<void> GuestDriver::adopt(QtestClient& qt) {
  if (irq_ == IrqMode::kIntx) MDEVMIG_TRY(qt.irq_intercept_in("ioapic"));
  return ok();
}

Result<void> GuestDriver::issue(QtestClient& qt, Op op) {
  op.seq = next_seq();
  // Recorded before the accesses: if the VM goes away halfway, find_cut() decides
  // whether the op landed.
  pending_.push_back(op);
  switch (op.kind) {
    case Op::Kind::kBar2Write:
      ++pending_writes_;
      ++stats_.bar2_writes;
      return qt.writeq(layout::kBar2 + op.offset, op.value);
    case Op::Kind::kScratch:
      ++stats_.scratch;
      return set_reg(qt, MDEVMIG_REG_SCRATCH(op.offset), static_cast<uint32_t>(op.value));
    case Op::Kind::kSubmit: {
      ++pending_descs_;
      ++stats_.descs;
      const mdevmig_dma_desc& d = op.d;
      if (d.opcode == MDEVMIG_DMA_OP_COPY_TO_DEV || d.opcode == MDEVMIG_DMA_OP_COPY_GUEST) {
        std::vector<uint8_t> src(d.len);
        source_buffer(state_.run_seed, op.desc, src);
        MDEVMIG_TRY(qt.b64write(d.src, src));
      }
      uint8_t raw[kDescSize];
      std::memcpy(raw, &d, kDescSize);
      MDEVMIG_TRY(qt.write(layout::kRing + (op.desc % layout::kRingEntries) * kDescSize, raw));
      return set_reg(qt, MDEVMIG_REG_RING_TAIL, static_cast<uint32_t>(op.desc + 1));
    }
  }
  return ok();
}

Result<void> GuestDriver::submit(QtestClient& qt, mdevmig_dma_desc d) {
  Op op;
  op.kind = Op::Kind::kSubmit;
  op.desc = next_desc();
  d.cmpl = layout::kCmpl + (op.desc % layout::kRingEntries) * kCmplSize;
  op.d = d;
  return issue(qt, op);
}

mdevmig_dma_desc GuestDriver::random_desc(uint64_t desc) {
  const uint64_t half = state_.mem_size / 2;  // the DMA half of device memory
  const uint64_t slot = desc % layout::kSlots;
  auto pick = [&](uint64_t lo, uint64_t hi) { return lo + rng_() % (hi - lo + 1); };
  auto dev_off = [&](uint64_t len) { return pick(0, (half - len) / 8) * 8; };
  mdevmig_dma_desc d{};
  d.user_data = (state_.run_seed << 32) ^ desc;
  d.flags = rng_() % 4 != 0 ? MDEVMIG_DMA_F_NO_IRQ : 0;
  uint64_t small = std::min<uint64_t>(pick(1, layout::kSlotSize / 8) * 8, half);
  uint32_t r = static_cast<uint32_t>(rng_() % 100);
  if (r < 30) {
    d.opcode = MDEVMIG_DMA_OP_COPY_TO_DEV;
    d.len = small;
    d.src = layout::kSrc + slot * layout::kSlotSize;
    d.dst = dev_off(d.len);
  } else if (r < 55) {
    d.opcode = MDEVMIG_DMA_OP_COPY_FROM_DEV;
    d.len = small;
    d.src = dev_off(d.len);
    d.dst = layout::kDst + slot * layout::kSlotSize;
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
    d.dst = layout::kHashOut + (desc % layout::kRingEntries) * 8;
  } else if (r < 96) {
    d.opcode = MDEVMIG_DMA_OP_COPY_GUEST;
    d.len = small;
    d.src = layout::kSrc + slot * layout::kSlotSize;
    d.dst = layout::kDst + slot * layout::kSlotSize;
  } else {
    // A bad descriptor: it must complete with BAD_RANGE and not stall the queue.
    d.opcode = MDEVMIG_DMA_OP_FILL;
    d.len = 4096;
    d.dst = state_.mem_size;
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
    auto period = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / rate));
    // Falling behind (qtest is slower than asked) must not turn into a burst later.
    next = std::max(next + period, now - period);
  };
  if (now >= next_irq_poll_) {
    MDEVMIG_TRY(service_irqs(qt));
    next_irq_poll_ = now + 10ms;
  }
  if (now >= next_write_ && bar2_writes_on_) {
    const uint64_t w = next_bar2_write();
    const uint64_t half = state_.mem_size / 2, pages = half / 4096;
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
      const uint64_t half = state_.mem_size / 2;
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

Result<void> GuestDriver::service_irqs(QtestClient& qt) {
  if (irq_ == IrqMode::kIntx) {
    uint64_t before = qt.irq(intx_line_).raises;
    MDEVMIG_TRY(qt.poll_irqs());
    stats_.irqs += qt.irq(intx_line_).raises - before;
    if (!qt.irq(intx_line_).level) return ok();
  } else {
    if (MDEVMIG_TRY(qt.readl(layout::kMsi)) != layout::kMsiData) return ok();
    MDEVMIG_TRY(qt.writel(layout::kMsi, 0));
    ++stats_.irqs;
  }
  // The interrupt handler: acknowledge every cause (write 1 to clear).
  uint32_t st = MDEVMIG_TRY(reg(qt, MDEVMIG_REG_INT_STATUS));
  if (st != 0) MDEVMIG_TRY(set_reg(qt, MDEVMIG_REG_INT_STATUS, st));
  ++stats_.isr_runs;
  return ok();
}

Result<void> GuestDriver::wait_irq(QtestClient& qt, uint64_t raises_before, std::chrono::milliseconds timeout) {
  if (irq_ == IrqMode::kIntx) return qt.wait_irq_raises(intx_line_, raises_before + 1, timeout);
  Deadline until = deadline_in(timeout);
  while (MDEVMIG_TRY(qt.readl(layout::kMsi)) != layout::kMsiData) {
    if (Clock::now() >= until) return Error::make(ETIMEDOUT, "wait for MSI", "word at " + hex(layout::kMsi));
    std::this_thread::sleep_for(2ms);
  }
  return ok();
}

Result<void> GuestDriver::drain(QtestClient& qt, std::chrono::milliseconds timeout) {
  Deadline until = deadline_in(timeout);
  for (;;) {
    uint32_t st = MDEVMIG_TRY(reg(qt, MDEVMIG_REG_STATUS));
    if (!(st & MDEVMIG_STATUS_BUSY)) return ok();
    if (st & MDEVMIG_STATUS_BLOCKED) return device_error("queue blocked (STATUS " + hex(st) + ")");
    if (Clock::now() >= until)
      return Error::make(ETIMEDOUT, "drain the DMA queue", "STATUS " + hex(st));
    MDEVMIG_TRY(service_irqs(qt));
    std::this_thread::sleep_for(2ms);
  }
}

Result<void> GuestDriver::settle(QtestClient& qt) {
  MDEVMIG_TRY(drain(qt));
  commit(pending_.size());
  return ok();
}

Result<bool> GuestDriver::landed(QtestClient& qt, const Op& op, uint32_t seq_reg) {
  switch (op.kind) {
    case Op::Kind::kSubmit:
      // SEQ counts consumed descriptors: it is past this one iff the doorbell landed.
      return static_cast<int32_t>(seq_reg - static_cast<uint32_t>(op.desc) - 1) >= 0;
    case Op::Kind::kBar2Write:
      return MDEVMIG_TRY(qt.readq(layout::kBar2 + op.offset)) == op.value;
    case Op::Kind::kScratch: {
      // Landed iff the register holds this write's value or a later write's to it.
      uint32_t v = MDEVMIG_TRY(reg(qt, MDEVMIG_REG_SCRATCH(op.offset)));
      for (std::size_t k = op.seq - state_.ops; k < pending_.size(); ++k) {
        const Op& later = pending_[k];
        if (later.kind == Op::Kind::kScratch && later.offset == op.offset && later.value == v) return true;
      }
      return false;
    }
  }
  return false;
}

Result<uint64_t> GuestDriver::find_cut(QtestClient& qt) {
  uint32_t seq_reg = MDEVMIG_TRY(reg(qt, MDEVMIG_REG_SEQ));
  // Ops [0, lo) landed, [hi, n) did not.
  uint64_t lo = 0, hi = pending_.size();
  while (lo < hi) {
    uint64_t mid = lo + (hi - lo) / 2;
    if (MDEVMIG_TRY(landed(qt, pending_[mid], seq_reg))) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

void GuestDriver::commit(uint64_t cut) {
  MDEVMIG_CHECK(cut <= pending_.size(), "cut %" PRIu64 " of %zu", cut, pending_.size());
  for (uint64_t i = 0; i < cut; ++i) state_.apply(pending_[i]);
  pending_.clear();
  pending_descs_ = pending_writes_ = 0;
  head_seen_ = state_.descs;
  pressure_last_ = 0;
}

Result<Verification> GuestDriver::verify(QtestClient& qt, uint32_t sample_pages) {
  Verification v;
  MDEVMIG_CHECK(pending_.empty(), "verify() with %zu ops pending", pending_.size());
  MDEVMIG_TRY(drain(qt));
  MDEVMIG_TRY(service_irqs(qt));
  auto mismatch = [&](std::string what) { v.mismatches.push_back(std::move(what)); };
  auto expect_reg = [&](const char* name, uint32_t off, uint32_t want) -> Result<void> {
    uint32_t got = MDEVMIG_TRY(reg(qt, off));
    if (got != want) mismatch(std::string(name) + " = " + hex(got) + ", want " + hex(want));
    return ok();
  };

  // Registers.
  const uint32_t seq = static_cast<uint32_t>(state_.descs);
  const uint32_t idx = static_cast<uint32_t>(state_.descs % layout::kRingEntries);
  MDEVMIG_TRY(expect_reg("ID", MDEVMIG_REG_ID, MDEVMIG_ID_MAGIC));
  MDEVMIG_TRY(expect_reg("MEM_SIZE_LO", MDEVMIG_REG_MEM_SIZE_LO, static_cast<uint32_t>(state_.mem_size)));
  MDEVMIG_TRY(expect_reg("CTRL", MDEVMIG_REG_CTRL, MDEVMIG_CTRL_ENABLE));
  MDEVMIG_TRY(expect_reg("INT_MASK", MDEVMIG_REG_INT_MASK, 0));
  MDEVMIG_TRY(expect_reg("RING_BASE_LO", MDEVMIG_REG_RING_BASE_LO, static_cast<uint32_t>(layout::kRing)));
  MDEVMIG_TRY(expect_reg("RING_SIZE", MDEVMIG_REG_RING_SIZE, layout::kRingEntries));
  MDEVMIG_TRY(expect_reg("RING_HEAD", MDEVMIG_REG_RING_HEAD, idx));
  MDEVMIG_TRY(expect_reg("RING_TAIL", MDEVMIG_REG_RING_TAIL, idx));
  MDEVMIG_TRY(expect_reg("SEQ", MDEVMIG_REG_SEQ, seq));
  MDEVMIG_TRY(expect_reg("ERR_DESC", MDEVMIG_REG_ERR_DESC, static_cast<uint32_t>(state_.bad_descs)));
  MDEVMIG_TRY(expect_reg("ERR_DMA", MDEVMIG_REG_ERR_DMA, 0));
  MDEVMIG_TRY(expect_reg("ERR_RING", MDEVMIG_REG_ERR_RING, 0));
  for (uint32_t i = 0; i < MDEVMIG_NR_SCRATCH; ++i) {
    std::string name = "SCRATCH" + std::to_string(i);
    MDEVMIG_TRY(expect_reg(name.c_str(), MDEVMIG_REG_SCRATCH(i), state_.scratch[i]));
  }

  // Guest RAM the DMA engine wrote: data, hashes, completion records (status, SEQ).
  struct Area { const char* name; uint64_t base; const std::vector<uint8_t>* want; } areas[] = {
      {"guest RAM (DMA destinations)", layout::kDst, &state_.dst},
      {"guest RAM (completion records)", layout::kCmpl, &state_.cmpl},
      {"guest RAM (HASH results)", layout::kHashOut, &state_.hash_out}};
  for (const auto& a : areas) {
    auto got = MDEVMIG_TRY(qt.b64read(a.base, a.want->size()));
    if (auto d = describe_diff(a.name, a.base, got, *a.want); !d.empty()) mismatch(d);
    if (a.base != layout::kCmpl) continue;
    // Say which descriptors' completions differ, decoded.
    for (uint32_t slot = 0, shown = 0; slot < layout::kRingEntries && shown < 4; ++slot) {
      mdevmig_dma_cmpl g, w;
      std::memcpy(&g, got.data() + slot * kCmplSize, kCmplSize);
      std::memcpy(&w, a.want->data() + slot * kCmplSize, kCmplSize);
      if (std::memcmp(&g, &w, kCmplSize) == 0) continue;
      ++shown;
      char buf[240];
      std::snprintf(buf, sizeof buf,
                    "completion slot %u: got status %u seq %u user_data %" PRIx64 " bytes %" PRIu64
                    ", want status %u seq %u user_data %" PRIx64 " bytes %" PRIu64,
                    slot, g.status, g.seq, static_cast<uint64_t>(g.user_data), static_cast<uint64_t>(g.bytes_done),
                    w.status, w.seq, static_cast<uint64_t>(w.user_data), static_cast<uint64_t>(w.bytes_done));
      mismatch(buf);
    }
  }
  {
    // The ring: written by the guest (qtest), read by the device.
    auto got = MDEVMIG_TRY(qt.b64read(layout::kRing, state_.ring.size()));
    for (uint32_t slot = 0, shown = 0; slot < layout::kRingEntries && shown < 4; ++slot) {
      if (std::memcmp(got.data() + slot * kDescSize, state_.ring.data() + slot * kDescSize, kDescSize) == 0) continue;
      ++shown;
      mdevmig_dma_desc g, w;
      std::memcpy(&g, got.data() + slot * kDescSize, kDescSize);
      std::memcpy(&w, state_.ring.data() + slot * kDescSize, kDescSize);
      char buf[240];
      std::snprintf(buf, sizeof buf,
                    "guest RAM (ring) slot %u: got opcode %u len %" PRIu64 " user_data %" PRIx64
                    ", want opcode %u len %" PRIu64 " user_data %" PRIx64,
                    slot, g.opcode, static_cast<uint64_t>(g.len), static_cast<uint64_t>(g.user_data), w.opcode,
                    static_cast<uint64_t>(w.len), static_cast<uint64_t>(w.user_data));
      mismatch(buf);
    }
  }

  // Device memory, all of it: the device hashes it (XXH64) into guest RAM.
  mdevmig_dma_desc h{};
  h.opcode = MDEVMIG_DMA_OP_HASH;
  h.flags = MDEVMIG_DMA_F_NO_IRQ;
  h.len = state_.mem_size;
  const uint64_t hash_desc = next_desc();
  h.dst = layout::kHashOut + (hash_desc % layout::kRingEntries) * 8;
  MDEVMIG_TRY(submit(qt, h));
  MDEVMIG_TRY(settle(qt));
  v.mem_hash = MDEVMIG_TRY(qt.readq(h.dst));
  uint64_t want_hash = 0;
  std::memcpy(&want_hash, state_.hash_out.data() + (hash_desc % layout::kRingEntries) * 8, 8);
  if (v.mem_hash != want_hash)
    mismatch("device memory XXH64 = " + hex(v.mem_hash) + ", want " + hex(want_hash));

  // And pages read through BAR2 by the "CPU", compared byte for byte: the last pages
  // the workload wrote and random others.
  const uint64_t pages = state_.mem_size / 4096, half_pages = pages / 2;
  std::vector<uint64_t> sample;
  for (uint64_t k = 1; k <= 4 && k <= state_.bar2_writes; ++k) sample.push_back(half_pages + (state_.bar2_writes - k) % half_pages);
  for (uint32_t k = 0; k < sample_pages; ++k) sample.push_back(rng_() % pages);
  for (uint64_t p : sample) {
    auto got = MDEVMIG_TRY(qt.b64read(layout::kBar2 + p * 4096, 4096));
    auto want = std::span<const uint8_t>(state_.mem).subspan(p * 4096, 4096);
    if (auto d = describe_diff("BAR2 page " + std::to_string(p), p * 4096, got, want); !d.empty()) mismatch(d);
    ++v.pages_sampled;
  }

  // An interrupt: a descriptor that asks for one.
  MDEVMIG_TRY(service_irqs(qt));
  uint64_t raises = irq_ == IrqMode::kIntx ? qt.irq(intx_line_).raises : 0;
  if (irq_ == IrqMode::kMsi) MDEVMIG_TRY(qt.writel(layout::kMsi, 0));
  mdevmig_dma_desc probe{};
  probe.opcode = MDEVMIG_DMA_OP_FILL;
  probe.len = 0;
  probe.pattern = 1;
  MDEVMIG_TRY(submit(qt, probe));
  if (auto w = wait_irq(qt, raises, std::chrono::seconds(10)); w) {
    v.irq_delivered = true;
  } else {
    mismatch("no interrupt for a completed descriptor (" + w.error().message() + ")");
  }
  MDEVMIG_TRY(settle(qt));
  MDEVMIG_TRY(service_irqs(qt));
  v.descs = state_.descs;
  return v;
}

}  // namespace mdevmig::qemu
