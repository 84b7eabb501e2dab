// DevicePort: how a guest-side driver reaches one mdevmig device, whatever carries the
// accesses: BAR0/BAR2 MMIO, PCI configuration space and the guest memory the device's
// DMA engine reads and writes. Backends: QtestPort (a QEMU VM driven through qtest),
// VfioPort (a VFIO device fd and guest memory the tool owns), SimPort (the in-process
// simulator, vendor/sim). The ring driver (ring.h) works on any of them.
#pragma once

#include <cstdint>
#include <span>

#include "base/result.h"

namespace mdevmig::guest {

/// The device's memory BARs (DESIGN.md §2).
enum class Bar : uint32_t { kRegs = 0, kMem = 2 };

class DevicePort {
 public:
  virtual ~DevicePort() = default;

  [[nodiscard]] virtual Result<uint32_t> read32(Bar bar, uint64_t off) = 0;
  [[nodiscard]] virtual Result<void> write32(Bar bar, uint64_t off, uint32_t v) = 0;
  [[nodiscard]] virtual Result<uint64_t> read64(Bar bar, uint64_t off) = 0;
  [[nodiscard]] virtual Result<void> write64(Bar bar, uint64_t off, uint64_t v) = 0;
  /// Reads `out.size()` bytes of a BAR at `off` (bulk, e.g. a page of BAR2).
  [[nodiscard]] virtual Result<void> read_bar(Bar bar, uint64_t off, std::span<uint8_t> out) = 0;

  /// Configuration space; `len` is 1, 2 or 4.
  [[nodiscard]] virtual Result<uint32_t> cfg_read(uint32_t off, uint32_t len) = 0;
  [[nodiscard]] virtual Result<void> cfg_write(uint32_t off, uint32_t len, uint32_t v) = 0;

  /// Guest memory at `addr` as the device sees it (guest-physical address or IOVA).
  [[nodiscard]] virtual Result<void> mem_read(uint64_t addr, std::span<uint8_t> out) = 0;
  [[nodiscard]] virtual Result<void> mem_write(uint64_t addr, std::span<const uint8_t> data) = 0;

  /// BAR0 registers (MDEVMIG_REG_*).
  [[nodiscard]] Result<uint32_t> reg(uint32_t off) { return read32(Bar::kRegs, off); }
  [[nodiscard]] Result<void> set_reg(uint32_t off, uint32_t v) {
    return write32(Bar::kRegs, off, v);
  }
};

}  // namespace mdevmig::guest
