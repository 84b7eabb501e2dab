// SimPort: a DevicePort over the in-process simulator (vendor/sim): the device model
// the kernel module runs, with guest memory in the simulator's fake IOMMU. The device
// runs when the caller says so (SimDevice::run / run_to_idle), so tests see every step.
#pragma once

#include "sim.h"
#include "tools/guest/device_port.h"
#include "tools/guest/layout.h"
#include "tools/guest/ring.h"

namespace mdevmig::guest {

class SimPort final : public DevicePort {
 public:
  explicit SimPort(vendor_sim::SimDevice& dev) : dev_(&dev) {}

  /// Maps the guest memory of `layout` in the simulator's IOMMU (zeroed).
  [[nodiscard]] Result<void> map(const Layout& layout);

  Result<uint32_t> read32(Bar bar, uint64_t off) override;
  Result<void> write32(Bar bar, uint64_t off, uint32_t v) override;
  Result<uint64_t> read64(Bar bar, uint64_t off) override;
  Result<void> write64(Bar bar, uint64_t off, uint64_t v) override;
  Result<void> read_bar(Bar bar, uint64_t off, std::span<uint8_t> out) override;
  Result<uint32_t> cfg_read(uint32_t off, uint32_t len) override;
  Result<void> cfg_write(uint32_t off, uint32_t len, uint32_t v) override;
  Result<void> mem_read(uint64_t addr, std::span<uint8_t> out) override;
  Result<void> mem_write(uint64_t addr, std::span<const uint8_t> data) override;

  [[nodiscard]] vendor_sim::SimDevice& device() { return *dev_; }

 private:
  [[nodiscard]] Result<void> mmio(Bar bar, uint64_t off, void* buf, uint32_t len, bool write);

  vendor_sim::SimDevice* dev_;
};

/// The ring driver bound to a simulated device, for tests, fuzzers and benchmarks:
/// maps the layout, enables bus mastering and programs the ring at construction;
/// errors, which the simulator cannot have with a mapped layout, abort.
class SimRing {
 public:
  static constexpr Layout kLayout = kSimLayout;

  explicit SimRing(vendor_sim::SimDevice& dev, uint32_t entries = 64, Layout layout = kLayout);
  SimRing(const SimRing&) = delete;
  SimRing& operator=(const SimRing&) = delete;

  /// Ring::submit(): the slot; the device runs when the caller runs it.
  uint32_t submit(const mdevmig_dma_desc& d);
  uint32_t queue(const mdevmig_dma_desc& d);
  void doorbell();
  [[nodiscard]] mdevmig_dma_cmpl completion(uint32_t slot);
  [[nodiscard]] uint64_t cmpl_iova(uint32_t slot) const { return ring_.layout().cmpl(slot); }
  [[nodiscard]] uint32_t entries() const { return ring_.entries(); }
  [[nodiscard]] SimPort& port() { return port_; }
  [[nodiscard]] Ring& ring() { return ring_; }

 private:
  SimPort port_;
  Ring ring_;
};

}  // namespace mdevmig::guest
