// Driving an instance's DMA queue from a lab test: guest memory in the test process,
// mapped for DMA at kIova, laid out as tools/guest's one layout; the ring is
// tools/guest's Ring over a VfioPort. DmaRig only turns its errors into test failures.
#pragma once

#include <linux/mdevmig.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>

#include <chrono>
#include <cstdint>
#include <span>

#include <gtest/gtest.h>

#include "migration/vfio/device.h"
#include "tools/guest/descriptors.h"
#include "tools/guest/layout.h"
#include "tools/guest/ring.h"
#include "tools/guest/vfio_port.h"

namespace mdevmig::lab {

inline constexpr uint32_t kCfg = VFIO_PCI_CONFIG_REGION_INDEX;
inline constexpr uint32_t kBar0 = VFIO_PCI_BAR0_REGION_INDEX;
inline constexpr uint32_t kBar2 = VFIO_PCI_BAR2_REGION_INDEX;

// Guest memory (IOVAs): tools/guest's layout at kIova.
inline constexpr guest::Layout kLayout{.base = 0x40000000};
inline constexpr uint64_t kIova = kLayout.base;
inline constexpr size_t kGuestSize = guest::Layout::kSize;
inline constexpr uint64_t kRingOff = guest::Layout::kRingOff;
inline constexpr uint64_t kCmplOff = guest::Layout::kCmplOff;
inline constexpr uint64_t kDataOff = guest::Layout::kDataOff;  // data buffers, to kGuestSize
inline constexpr uint32_t kRingEntries = 64;

inline mdevmig_dma_desc desc(uint32_t opcode, uint64_t src, uint64_t dst, uint64_t len,
                             uint64_t pattern = 0, uint64_t user_data = 0) {
  mdevmig_dma_desc d = guest::raw(opcode, src, dst, len, pattern);
  d.user_data = user_data;
  return d;
}

// Register and queue access for one device whose container maps `guest` at kIova.
class DmaRig {
 public:
  DmaRig(const vfio::Device& dev, uint8_t* guest)
      : port_(dev, std::span<uint8_t>(guest, kGuestSize), kIova), ring_(kLayout, kRingEntries) {}

  uint32_t reg(uint32_t off) { return check(port_.reg(off), 0xdeadbeef); }
  void set_reg(uint32_t off, uint32_t v) { check(port_.set_reg(off, v)); }
  void set_cfg16(uint32_t off, uint16_t v) { check(port_.cfg_write(off, 2, v)); }
  void set_cfg32(uint32_t off, uint32_t v) { check(port_.cfg_write(off, 4, v)); }

  // Bus master + memory on, MSI enabled if `msi`, the ring programmed, engine on.
  void program(bool msi) {
    set_cfg16(PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    if (msi) {
      set_cfg32(MDEVMIG_CFG_MSI_CAP + PCI_MSI_ADDRESS_LO, 0xfee00000);
      set_cfg16(MDEVMIG_CFG_MSI_CAP + PCI_MSI_DATA_64, 0x41);
      set_cfg16(MDEVMIG_CFG_MSI_CAP + PCI_MSI_FLAGS, PCI_MSI_FLAGS_ENABLE);
    }
    check(ring_.program(port_));
  }

  // The completion record of `slot`, in the test's guest memory.
  mdevmig_dma_cmpl* cmpl(uint32_t slot) const {
    return reinterpret_cast<mdevmig_dma_cmpl*>(
        port_.host(kLayout.cmpl(slot), sizeof(mdevmig_dma_cmpl)));
  }

  // Writes a descriptor at the tail without ringing the doorbell; returns its slot.
  uint32_t queue(const mdevmig_dma_desc& d) { return check(ring_.queue(port_, d), 0u); }
  void doorbell() { check(ring_.doorbell(port_)); }
  uint32_t submit(const mdevmig_dma_desc& d) { return check(ring_.submit(port_, d), 0u); }
  // Descriptors queued so far (wraps at 2^32 like the ring index registers).
  uint32_t tail() const { return static_cast<uint32_t>(ring_.queued()); }

  // Waits for the completion of `slot`; its status, or PENDING on timeout.
  uint32_t wait(uint32_t slot, std::chrono::milliseconds limit = std::chrono::seconds(30)) {
    return check(ring_.wait(port_, slot, limit), uint32_t{MDEVMIG_DMA_ST_PENDING});
  }

 private:
  static void check(const Result<void>& r) {
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message());
  }
  template <typename T>
  static T check(Result<T> r, T fallback) {
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message());
    return r.ok() ? std::move(r).value() : fallback;
  }

  guest::VfioPort port_;
  guest::Ring ring_;
};

}  // namespace mdevmig::lab
