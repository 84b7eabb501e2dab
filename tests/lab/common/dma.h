// Driving an instance's DMA queue from a lab test: guest memory in the test process,
// mapped for DMA at kIova; a ring of kRingEntries descriptors, completions, data.
#pragma once

#include <linux/mdevmig.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <thread>

#include <gtest/gtest.h>

#include "migration/vfio/device.h"

namespace mdevmig::lab {

inline constexpr uint32_t kCfg = VFIO_PCI_CONFIG_REGION_INDEX;
inline constexpr uint32_t kBar0 = VFIO_PCI_BAR0_REGION_INDEX;
inline constexpr uint32_t kBar2 = VFIO_PCI_BAR2_REGION_INDEX;

// Guest memory layout (IOVAs).
inline constexpr uint64_t kIova = 0x40000000;
inline constexpr size_t kGuestSize = 4u << 20;
inline constexpr uint64_t kRingOff = 0;          // kRingEntries descriptors of 64 bytes
inline constexpr uint64_t kCmplOff = 64u << 10;  // completion records, 32 bytes each
inline constexpr uint64_t kDataOff = 1u << 20;   // data buffers
inline constexpr uint32_t kRingEntries = 64;

inline mdevmig_dma_desc desc(uint32_t opcode, uint64_t src, uint64_t dst, uint64_t len,
                             uint64_t pattern = 0, uint64_t user_data = 0) {
  mdevmig_dma_desc d;
  std::memset(&d, 0, sizeof d);
  d.opcode = opcode;
  d.src = src;
  d.dst = dst;
  d.len = len;
  d.pattern = pattern;
  d.user_data = user_data;
  return d;
}

// Register and queue access for one device whose container maps `guest` at kIova.
class DmaRig {
 public:
  DmaRig(const vfio::Device& dev, uint8_t* guest) : dev_(&dev), guest_(guest) {}

  uint32_t reg(uint32_t off) const {
    auto r = dev_->read_as<uint32_t>(kBar0, off);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message());
    return r.ok() ? r.value() : 0xdeadbeef;
  }
  void set_reg(uint32_t off, uint32_t v) const {
    auto r = dev_->write_as(kBar0, off, v);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message());
  }
  void set_cfg16(uint32_t off, uint16_t v) const { EXPECT_TRUE(dev_->write_as(kCfg, off, v).ok()); }
  void set_cfg32(uint32_t off, uint32_t v) const { EXPECT_TRUE(dev_->write_as(kCfg, off, v).ok()); }

  // Bus master + memory on, MSI enabled if `msi`, ring at kIova + kRingOff, engine on.
  void program(bool msi) const {
    set_cfg16(PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    if (msi) {
      set_cfg32(MDEVMIG_CFG_MSI_CAP + PCI_MSI_ADDRESS_LO, 0xfee00000);
      set_cfg16(MDEVMIG_CFG_MSI_CAP + PCI_MSI_DATA_64, 0x41);
      set_cfg16(MDEVMIG_CFG_MSI_CAP + PCI_MSI_FLAGS, PCI_MSI_FLAGS_ENABLE);
    }
    set_reg(MDEVMIG_REG_RING_BASE_LO, static_cast<uint32_t>(kIova + kRingOff));
    set_reg(MDEVMIG_REG_RING_BASE_HI, static_cast<uint32_t>((kIova + kRingOff) >> 32));
    set_reg(MDEVMIG_REG_RING_SIZE, kRingEntries);
    set_reg(MDEVMIG_REG_CTRL, MDEVMIG_CTRL_ENABLE);
  }

  mdevmig_dma_cmpl* cmpl(uint32_t slot) const {
    return reinterpret_cast<mdevmig_dma_cmpl*>(guest_ + kCmplOff + slot * sizeof(mdevmig_dma_cmpl));
  }

  // Writes a descriptor at the tail without ringing the doorbell; returns its slot.
  uint32_t queue(mdevmig_dma_desc d) {
    uint32_t slot = tail_ % kRingEntries;
    d.cmpl = kIova + kCmplOff + slot * sizeof(mdevmig_dma_cmpl);
    std::memset(cmpl(slot), 0, sizeof(mdevmig_dma_cmpl));
    __atomic_store_n(&cmpl(slot)->status, MDEVMIG_DMA_ST_PENDING, __ATOMIC_RELEASE);
    std::memcpy(guest_ + kRingOff + slot * sizeof d, &d, sizeof d);
    ++tail_;
    return slot;
  }
  void doorbell() const { set_reg(MDEVMIG_REG_RING_TAIL, tail_); }
  uint32_t submit(const mdevmig_dma_desc& d) {
    uint32_t slot = queue(d);
    doorbell();
    return slot;
  }
  uint32_t tail() const { return tail_; }

  // Waits for the completion of `slot`; its status, or PENDING on timeout.
  uint32_t wait(uint32_t slot, std::chrono::milliseconds limit = std::chrono::seconds(30)) const {
    auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
      uint32_t st = __atomic_load_n(&cmpl(slot)->status, __ATOMIC_ACQUIRE);
      if (st != MDEVMIG_DMA_ST_PENDING) return st;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return MDEVMIG_DMA_ST_PENDING;
  }

 private:
  const vfio::Device* dev_;
  uint8_t* guest_;
  uint32_t tail_ = 0;
};

}  // namespace mdevmig::lab
