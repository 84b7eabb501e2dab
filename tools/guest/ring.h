// The ring driver: the one guest-side driver of the device's DMA command queue. It
// writes descriptors into the ring of the guest-memory layout (layout.h), rings the
// doorbell, reads completion records and acknowledges interrupts, through any
// DevicePort. Semantics: <linux/mdevmig.h>, "DMA command queue".
#pragma once

#include <linux/mdevmig.h>

#include <chrono>
#include <cstdint>

#include "base/result.h"
#include "tools/guest/device_port.h"
#include "tools/guest/layout.h"

namespace mdevmig::guest {

/// Memory space and bus master on in the command register (read, modify, write).
[[nodiscard]] Result<void> enable_bus_master(DevicePort& port);

class Ring {
 public:
  /// `entries`: a power of two up to Layout::kMaxEntries. With `prefill` every queued
  /// descriptor's completion record is set to MDEVMIG_DMA_ST_PENDING first, so that
  /// wait() can poll it; without it the driver leaves guest memory it does not own
  /// alone (a harness that keeps guest RAM as an exact expected image).
  explicit Ring(Layout layout, uint32_t entries = 64, bool prefill = true);

  /// Ring base and size, then CTRL.ENABLE. Queued descriptors start at slot 0.
  [[nodiscard]] Result<void> program(DevicePort& port);

  /// Writes `d` at the tail without ringing the doorbell; d.cmpl defaults to the
  /// slot's completion record. Returns the slot.
  [[nodiscard]] Result<uint32_t> queue(DevicePort& port, mdevmig_dma_desc d);
  /// Writes the tail to RING_TAIL: the device may run everything queued.
  [[nodiscard]] Result<void> doorbell(DevicePort& port) const;
  /// queue() and doorbell().
  [[nodiscard]] Result<uint32_t> submit(DevicePort& port, const mdevmig_dma_desc& d);

  [[nodiscard]] Result<mdevmig_dma_cmpl> completion(DevicePort& port, uint32_t slot) const;
  /// Polls the completion record of `slot` (queued with prefill) until the device
  /// writes it; its status, or MDEVMIG_DMA_ST_PENDING after `limit`.
  [[nodiscard]] Result<uint32_t> wait(
      DevicePort& port, uint32_t slot,
      std::chrono::milliseconds limit = std::chrono::seconds(30)) const;
  /// The interrupt handler: acknowledges (write 1 to clear) every cause in
  /// INT_STATUS and returns them.
  [[nodiscard]] Result<uint32_t> acknowledge(DevicePort& port) const;

  /// Descriptors queued since program(): the number the next one gets (its SEQ on a
  /// device that consumed all before it).
  [[nodiscard]] uint64_t queued() const { return queued_; }
  /// Continues numbering at `queued` (after queued descriptors were lost with a VM).
  void resync(uint64_t queued) { queued_ = queued; }
  [[nodiscard]] uint32_t slot(uint64_t n) const {
    return static_cast<uint32_t>(n & (entries_ - 1));
  }
  [[nodiscard]] uint32_t tail() const { return slot(queued_); }
  [[nodiscard]] uint32_t entries() const { return entries_; }
  [[nodiscard]] const Layout& layout() const { return layout_; }

 private:
  Layout layout_;
  uint32_t entries_;
  bool prefill_;
  uint64_t queued_ = 0;
};

}  // namespace mdevmig::guest
