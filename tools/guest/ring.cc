#include "tools/guest/ring.h"

#include <linux/pci_regs.h>

#include <bit>
#include <cstring>
#include <thread>

#include "base/check.h"

namespace mdevmig::guest {

// Descriptors and completions are little-endian in guest memory; this driver copies
// the uAPI structs as they are.
static_assert(std::endian::native == std::endian::little);
static_assert(sizeof(mdevmig_dma_desc) == 64 && sizeof(mdevmig_dma_cmpl) == 32, "uapi layout");

Result<void> enable_bus_master(DevicePort& port) {
  uint32_t cmd = MDEVMIG_TRY(port.cfg_read(PCI_COMMAND, 2));
  return port.cfg_write(PCI_COMMAND, 2, cmd | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
}

Ring::Ring(Layout layout, uint32_t entries, bool prefill)
    : layout_(layout), entries_(entries), prefill_(prefill) {
  MDEVMIG_CHECK(std::has_single_bit(entries) && entries <= Layout::kMaxEntries,
                "ring of %u entries", entries);
}

Result<void> Ring::program(DevicePort& port) {
  queued_ = 0;
  MDEVMIG_TRY(port.set_reg(MDEVMIG_REG_RING_BASE_LO, static_cast<uint32_t>(layout_.ring())));
  MDEVMIG_TRY(port.set_reg(MDEVMIG_REG_RING_BASE_HI, static_cast<uint32_t>(layout_.ring() >> 32)));
  MDEVMIG_TRY(port.set_reg(MDEVMIG_REG_RING_SIZE, entries_));
  return port.set_reg(MDEVMIG_REG_CTRL, MDEVMIG_CTRL_ENABLE);
}

Result<uint32_t> Ring::queue(DevicePort& port, mdevmig_dma_desc d) {
  const uint32_t s = tail();
  if (d.cmpl == 0) {
    d.cmpl = layout_.cmpl(s);
    if (prefill_) {
      mdevmig_dma_cmpl pending{};
      pending.status = MDEVMIG_DMA_ST_PENDING;
      MDEVMIG_TRY(
          port.mem_write(d.cmpl, {reinterpret_cast<const uint8_t*>(&pending), sizeof pending}));
    }
  }
  MDEVMIG_TRY(port.mem_write(layout_.ring() + uint64_t{s} * sizeof d,
                             {reinterpret_cast<const uint8_t*>(&d), sizeof d}));
  ++queued_;
  return s;
}

Result<void> Ring::doorbell(DevicePort& port) const {
  return port.set_reg(MDEVMIG_REG_RING_TAIL, tail());
}

Result<uint32_t> Ring::submit(DevicePort& port, const mdevmig_dma_desc& d) {
  uint32_t s = MDEVMIG_TRY(queue(port, d));
  MDEVMIG_TRY(doorbell(port));
  return s;
}

Result<mdevmig_dma_cmpl> Ring::completion(DevicePort& port, uint32_t slot) const {
  mdevmig_dma_cmpl c;
  MDEVMIG_TRY(port.mem_read(layout_.cmpl(slot), {reinterpret_cast<uint8_t*>(&c), sizeof c}));
  return c;
}

Result<uint32_t> Ring::wait(DevicePort& port, uint32_t slot,
                            std::chrono::milliseconds limit) const {
  auto until = std::chrono::steady_clock::now() + limit;
  for (;;) {
    mdevmig_dma_cmpl c = MDEVMIG_TRY(completion(port, slot));
    if (c.status != MDEVMIG_DMA_ST_PENDING) return c.status;
    if (std::chrono::steady_clock::now() >= until) return uint32_t{MDEVMIG_DMA_ST_PENDING};
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

Result<uint32_t> Ring::acknowledge(DevicePort& port) const {
  uint32_t st = MDEVMIG_TRY(port.reg(MDEVMIG_REG_INT_STATUS));
  if (st != 0) MDEVMIG_TRY(port.set_reg(MDEVMIG_REG_INT_STATUS, st));
  return st;
}

}  // namespace mdevmig::guest
