// VfioPort: a DevicePort over a VFIO device fd (migration/vfio/device.h) and guest
// memory the tool owns: the caller maps `guest` for DMA at `iova` in the device's
// container and keeps both alive while the port is used. A tool that tracks what its
// CPU writes into guest memory (migration's GuestMemory) overrides mem_write().
#pragma once

#include <cstdint>
#include <span>

#include "migration/vfio/device.h"
#include "tools/guest/device_port.h"

namespace mdevmig::guest {

class VfioPort : public DevicePort {
 public:
  VfioPort(const vfio::Device& dev, std::span<uint8_t> guest, uint64_t iova)
      : dev_(&dev), guest_(guest), iova_(iova) {}

  Result<uint32_t> read32(Bar bar, uint64_t off) override;
  Result<void> write32(Bar bar, uint64_t off, uint32_t v) override;
  Result<uint64_t> read64(Bar bar, uint64_t off) override;
  Result<void> write64(Bar bar, uint64_t off, uint64_t v) override;
  Result<void> read_bar(Bar bar, uint64_t off, std::span<uint8_t> out) override;
  Result<uint32_t> cfg_read(uint32_t off, uint32_t len) override;
  Result<void> cfg_write(uint32_t off, uint32_t len, uint32_t v) override;
  Result<void> mem_read(uint64_t addr, std::span<uint8_t> out) override;
  Result<void> mem_write(uint64_t addr, std::span<const uint8_t> data) override;

  [[nodiscard]] const vfio::Device& device() const { return *dev_; }
  /// Host address of guest memory at `addr`, or nullptr outside it.
  [[nodiscard]] uint8_t* host(uint64_t addr, uint64_t len) const;

 private:
  const vfio::Device* dev_;
  std::span<uint8_t> guest_;
  uint64_t iova_;
};

}  // namespace mdevmig::guest
