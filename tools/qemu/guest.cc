#include "tools/qemu/guest.h"

#include <linux/pci_regs.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <thread>

#include "base/check.h"
#include "tools/guest/descriptors.h"

namespace mdevmig::qemu {
namespace {

using namespace std::chrono_literals;

constexpr uint64_t kFillPattern = 0xc3a5c3a5c3a5c3a5ull;

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

Error device_error(std::string what) { return Error::make(EIO, "mdevmig device", std::move(what)); }

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

ExpectedState::ExpectedState(uint64_t mem_size, uint64_t run_seed_, guest::Layout where)
    : device(mem_size, where, layout::kRingEntries, false), run_seed(run_seed_) {}

Placement placement(uint32_t index) {
  MDEVMIG_CHECK(index < kMaxDevices, "device %u of at most %u", index, kMaxDevices);
  Placement p;
  p.index = index;
  p.bar0 = layout::kBar0 + uint64_t{index} * (1u << 20);
  p.bar2 = layout::kBar2 + uint64_t{index} * (4ull << 30);
  p.guest.base = layout::kGuest.base + uint64_t{index} * guest::Layout::kSize;
  p.msi = layout::kMsi + uint64_t{index} * 64;
  return p;
}

Result<void> perform(guest::DevicePort& port, guest::Ring& ring, uint64_t run_seed, const Op& op) {
  switch (op.kind) {
    case Op::Kind::kBar2Write:
      return port.write64(guest::Bar::kMem, op.offset, op.value);
    case Op::Kind::kScratch:
      return port.set_reg(MDEVMIG_REG_SCRATCH(op.offset), static_cast<uint32_t>(op.value));
    case Op::Kind::kSubmit:
      break;
  }
  const mdevmig_dma_desc& d = op.d;
  MDEVMIG_CHECK(ring.queued() == op.desc, "descriptor %" PRIu64 " queued as %" PRIu64, op.desc,
                ring.queued());
  if (d.opcode == MDEVMIG_DMA_OP_COPY_TO_DEV || d.opcode == MDEVMIG_DMA_OP_COPY_GUEST) {
    std::vector<uint8_t> src(d.len);
    source_buffer(run_seed, op.desc, src);
    MDEVMIG_TRY(port.mem_write(d.src, src));
  }
  MDEVMIG_TRY(ring.queue(port, d));
  return ring.doorbell(port);
}

void ExpectedState::apply(const Op& op) {
  auto r = perform(device.port(), device.ring(), run_seed, op);
  MDEVMIG_CHECK(r.ok(), "replaying op %" PRIu64 ": %s", op.seq,
                r.ok() ? "" : r.error().message().c_str());
  device.run();
  ++ops;
  if (op.kind == Op::Kind::kBar2Write) ++bar2_writes;
  if (op.kind == Op::Kind::kSubmit) ++descs;
}

// ---- the driver -------------------------------------------------------------------------

GuestDriver::GuestDriver(uint64_t mem_size, IrqMode irq, uint64_t seed, WorkloadRates rates,
                         Placement where)
    : place_(where),
      state_(mem_size, seed, where.guest),
      ring_(where.guest, layout::kRingEntries, false),
      irq_(irq),
      rates_(rates),
      rng_(seed) {}

Result<uint32_t> GuestDriver::reg(QtestClient& qt, uint32_t off) {
  return qt.readl(place_.bar0 + off);
}
Result<void> GuestDriver::set_reg(QtestClient& qt, uint32_t off, uint32_t v) {
  return qt.writel(place_.bar0 + off, v);
}

Result<void> GuestDriver::bring_up(QtestClient& qt) {
  MDEVMIG_TRY(find_function(qt));
  guest::QtestPort dev = port(qt);
  MDEVMIG_TRY(program_bars(dev));
  MDEVMIG_TRY(check_identity(qt));

  // Interrupts: MSI into a RAM word the harness watches, or INTx seen by intercepting
  // the IOAPIC's inputs.
  if (irq_ == IrqMode::kMsi) {
    MDEVMIG_TRY(enable_msi(dev));
  } else {
    MDEVMIG_TRY(qt.irq_intercept_in("ioapic"));
  }
  MDEVMIG_TRY(set_reg(qt, MDEVMIG_REG_INT_MASK, 0));
  MDEVMIG_TRY(set_reg(qt, MDEVMIG_REG_INT_STATUS, MDEVMIG_INT_ALL));
  MDEVMIG_TRY(ring_.program(dev));
  MDEVMIG_TRY(first_interrupt(qt));
  return fill_known(qt);
}

Result<void> GuestDriver::find_function(QtestClient& qt) {
  // Find the function on bus 0: the placement's index-th one.
  int devfn = -1;
  uint32_t seen = 0;
  for (uint32_t slot = 0; slot < 32 && devfn < 0; ++slot) {
    uint32_t id = MDEVMIG_TRY(
        guest::QtestPort(qt, slot << 3, place_.bar0, place_.bar2).cfg_read(PCI_VENDOR_ID, 4));
    if (id == (MDEVMIG_PCI_DEVICE_ID << 16 | MDEVMIG_PCI_VENDOR_ID) && seen++ == place_.index)
      devfn = static_cast<int>(slot << 3);
  }
  if (devfn < 0)
    return Error::make(ENODEV, "PCI scan",
                       "no 1de7:6d67 function number " + std::to_string(place_.index) +
                           " on bus 0 (found " + std::to_string(seen) + ")");
  devfn_ = static_cast<uint32_t>(devfn);
  return ok();
}

Result<void> GuestDriver::program_bars(guest::QtestPort& dev) {
  // BAR0: 32-bit memory of MDEVMIG_REGS_SIZE.
  MDEVMIG_TRY(dev.cfg_write(PCI_BASE_ADDRESS_0, 4, 0xffffffff));
  uint32_t bar0 = MDEVMIG_TRY(dev.cfg_read(PCI_BASE_ADDRESS_0, 4));
  if ((bar0 & PCI_BASE_ADDRESS_SPACE_IO) || (~(bar0 & ~0xfu) + 1) != MDEVMIG_REGS_SIZE)
    return device_error("BAR0 sizes as " + hex(bar0));
  MDEVMIG_TRY(dev.cfg_write(PCI_BASE_ADDRESS_0, 4, static_cast<uint32_t>(place_.bar0)));
  // BAR2: 64-bit prefetchable memory, at least the device memory.
  MDEVMIG_TRY(dev.cfg_write(PCI_BASE_ADDRESS_2, 4, 0xffffffff));
  MDEVMIG_TRY(dev.cfg_write(PCI_BASE_ADDRESS_3, 4, 0xffffffff));
  uint64_t lo = MDEVMIG_TRY(dev.cfg_read(PCI_BASE_ADDRESS_2, 4));
  uint64_t hi = MDEVMIG_TRY(dev.cfg_read(PCI_BASE_ADDRESS_3, 4));
  uint64_t bar2_size = ~(hi << 32 | (lo & ~0xfull)) + 1;
  if ((lo & 0xf) != (PCI_BASE_ADDRESS_MEM_TYPE_64 | PCI_BASE_ADDRESS_MEM_PREFETCH) ||
      bar2_size < state_.mem_size() || place_.bar2 % bar2_size != 0)
    return device_error("BAR2 sizes as " + hex(hi << 32 | lo));
  MDEVMIG_TRY(dev.cfg_write(PCI_BASE_ADDRESS_2, 4, static_cast<uint32_t>(place_.bar2)));
  MDEVMIG_TRY(dev.cfg_write(PCI_BASE_ADDRESS_3, 4, static_cast<uint32_t>(place_.bar2 >> 32)));
  return dev.cfg_write(PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
}

Result<void> GuestDriver::check_identity(QtestClient& qt) {
  // The registers say who they are.
  uint32_t id = MDEVMIG_TRY(reg(qt, MDEVMIG_REG_ID));
  uint32_t version = MDEVMIG_TRY(reg(qt, MDEVMIG_REG_VERSION));
  uint64_t mem = MDEVMIG_TRY(reg(qt, MDEVMIG_REG_MEM_SIZE_LO)) |
                 uint64_t{MDEVMIG_TRY(reg(qt, MDEVMIG_REG_MEM_SIZE_HI))} << 32;
  if (id != MDEVMIG_ID_MAGIC || version != MDEVMIG_MODEL_VERSION || mem != state_.mem_size())
    return device_error("ID " + hex(id) + " version " + std::to_string(version) + " memory " +
                        hex(mem) + " (want memory " + hex(state_.mem_size()) + ")");
  return ok();
}

Result<void> GuestDriver::enable_msi(guest::QtestPort& dev) {
  uint32_t cap = MDEVMIG_TRY(dev.cfg_read(PCI_CAPABILITY_LIST, 2)) & 0xfc;
  for (int hops = 0; cap != 0 && hops < 48; ++hops) {
    uint32_t hdr = MDEVMIG_TRY(dev.cfg_read(cap, 2));
    if ((hdr & 0xff) == PCI_CAP_ID_MSI) break;
    cap = (hdr >> 8) & 0xfc;
  }
  if (cap == 0) return device_error("no MSI capability");
  MDEVMIG_TRY(dev.cfg_write(cap + PCI_MSI_ADDRESS_LO, 4, static_cast<uint32_t>(place_.msi)));
  MDEVMIG_TRY(dev.cfg_write(cap + PCI_MSI_ADDRESS_HI, 4, 0));
  MDEVMIG_TRY(dev.cfg_write(cap + PCI_MSI_DATA_64, 2, layout::kMsiData));
  MDEVMIG_TRY(dev.cfg_write(cap + PCI_MSI_MASK_64, 4, 0));
  return dev.cfg_write(cap + PCI_MSI_FLAGS, 2, PCI_MSI_FLAGS_ENABLE);
}

Result<void> GuestDriver::first_interrupt(QtestClient& qt) {
  if (irq_ == IrqMode::kMsi) {
    MDEVMIG_TRY(qt.writel(place_.msi, 0));
    MDEVMIG_TRY(set_reg(qt, MDEVMIG_REG_INT_SET, MDEVMIG_INT_SW));
    return wait_irq(qt, 0, 10s);
  }
  // Which IOAPIC input INTx A reaches (PCI interrupts are on inputs 16-23 on q35): the
  // device raises a software interrupt and the harness watches.
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
  return set_reg(qt, MDEVMIG_REG_INT_STATUS, MDEVMIG_INT_ALL);
}

Result<void> GuestDriver::fill_known(QtestClient& qt) {
  // Known contents everywhere: one FILL of all device memory, every scratch register.
  mdevmig_dma_desc fill = guest::fill(0, state_.mem_size(), kFillPattern);
  fill.flags = MDEVMIG_DMA_F_NO_IRQ;
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
      break;
    case Op::Kind::kScratch:
      ++stats_.scratch;
      break;
    case Op::Kind::kSubmit:
      ++pending_descs_;
      ++stats_.descs;
      break;
  }
  guest::QtestPort dev = port(qt);
  return perform(dev, ring_, state_.run_seed, pending_.back());
}

Result<void> GuestDriver::submit(QtestClient& qt, mdevmig_dma_desc d) {
  Op op;
  op.kind = Op::Kind::kSubmit;
  op.desc = next_desc();
  d.cmpl = place_.guest.cmpl(ring_.slot(op.desc));
  op.d = d;
  return issue(qt, op);
}

Result<void> GuestDriver::service_irqs(QtestClient& qt) {
  if (irq_ == IrqMode::kIntx) {
    uint64_t before = qt.irq(intx_line_).raises;
    MDEVMIG_TRY(qt.poll_irqs());
    stats_.irqs += qt.irq(intx_line_).raises - before;
    if (!qt.irq(intx_line_).level) return ok();
  } else {
    if (MDEVMIG_TRY(qt.readl(place_.msi)) != layout::kMsiData) return ok();
    MDEVMIG_TRY(qt.writel(place_.msi, 0));
    ++stats_.irqs;
  }
  // The interrupt handler: acknowledge every cause (write 1 to clear).
  guest::QtestPort dev = port(qt);
  MDEVMIG_TRY(ring_.acknowledge(dev));
  ++stats_.isr_runs;
  return ok();
}

Result<void> GuestDriver::wait_irq(QtestClient& qt, uint64_t raises_before,
                                   std::chrono::milliseconds timeout) {
  if (irq_ == IrqMode::kIntx) return qt.wait_irq_raises(intx_line_, raises_before + 1, timeout);
  Deadline until = deadline_in(timeout);
  while (MDEVMIG_TRY(qt.readl(place_.msi)) != layout::kMsiData) {
    if (Clock::now() >= until)
      return Error::make(ETIMEDOUT, "wait for MSI", "word at " + hex(place_.msi));
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
      return MDEVMIG_TRY(qt.readq(place_.bar2 + op.offset)) == op.value;
    case Op::Kind::kScratch: {
      // Landed iff the register holds this write's value or a later write's to it.
      uint32_t v = MDEVMIG_TRY(reg(qt, MDEVMIG_REG_SCRATCH(op.offset)));
      for (std::size_t k = op.seq - state_.ops; k < pending_.size(); ++k) {
        const Op& later = pending_[k];
        if (later.kind == Op::Kind::kScratch && later.offset == op.offset && later.value == v)
          return true;
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
    if (MDEVMIG_TRY(landed(qt, pending_[mid], seq_reg)))
      lo = mid + 1;
    else
      hi = mid;
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
  ring_.resync(state_.descs);
}

}  // namespace mdevmig::qemu
