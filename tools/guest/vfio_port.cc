#include "tools/guest/vfio_port.h"

#include <linux/vfio.h>

#include <atomic>
#include <cstring>
#include <string>

namespace mdevmig::guest {
namespace {

uint32_t region(Bar bar) {
  return bar == Bar::kRegs ? VFIO_PCI_BAR0_REGION_INDEX : VFIO_PCI_BAR2_REGION_INDEX;
}

Error outside(const char* op, uint64_t addr, uint64_t len) {
  return Error::make(EFAULT, op,
                     "guest memory " + std::to_string(addr) + "+" + std::to_string(len));
}

}  // namespace

Result<uint32_t> VfioPort::read32(Bar bar, uint64_t off) {
  return dev_->read_as<uint32_t>(region(bar), off);
}
Result<void> VfioPort::write32(Bar bar, uint64_t off, uint32_t v) {
  return dev_->write_as(region(bar), off, v);
}
Result<uint64_t> VfioPort::read64(Bar bar, uint64_t off) {
  return dev_->read_as<uint64_t>(region(bar), off);
}
Result<void> VfioPort::write64(Bar bar, uint64_t off, uint64_t v) {
  return dev_->write_as(region(bar), off, v);
}

Result<void> VfioPort::read_bar(Bar bar, uint64_t off, std::span<uint8_t> out) {
  return dev_->read(region(bar), off, std::as_writable_bytes(out));
}

Result<uint32_t> VfioPort::cfg_read(uint32_t off, uint32_t len) {
  switch (len) {
    case 1:
      return uint32_t{MDEVMIG_TRY(dev_->read_as<uint8_t>(VFIO_PCI_CONFIG_REGION_INDEX, off))};
    case 2:
      return uint32_t{MDEVMIG_TRY(dev_->read_as<uint16_t>(VFIO_PCI_CONFIG_REGION_INDEX, off))};
    case 4:
      return dev_->read_as<uint32_t>(VFIO_PCI_CONFIG_REGION_INDEX, off);
  }
  return Error::make(EINVAL, "config read", "length " + std::to_string(len));
}

Result<void> VfioPort::cfg_write(uint32_t off, uint32_t len, uint32_t v) {
  switch (len) {
    case 1:
      return dev_->write_as(VFIO_PCI_CONFIG_REGION_INDEX, off, static_cast<uint8_t>(v));
    case 2:
      return dev_->write_as(VFIO_PCI_CONFIG_REGION_INDEX, off, static_cast<uint16_t>(v));
    case 4:
      return dev_->write_as(VFIO_PCI_CONFIG_REGION_INDEX, off, v);
  }
  return Error::make(EINVAL, "config write", "length " + std::to_string(len));
}

uint8_t* VfioPort::host(uint64_t addr, uint64_t len) const {
  if (addr < iova_ || addr - iova_ > guest_.size() || len > guest_.size() - (addr - iova_))
    return nullptr;
  return guest_.data() + (addr - iova_);
}

// The device writes guest memory behind the compiler's back (the kernel's
// vfio_dma_rw): the fences order the copies against the device's accesses as the
// doorbell and completion polling need.
Result<void> VfioPort::mem_read(uint64_t addr, std::span<uint8_t> out) {
  const uint8_t* p = host(addr, out.size());
  if (!p) return outside("guest memory read", addr, out.size());
  std::atomic_thread_fence(std::memory_order_acquire);
  std::memcpy(out.data(), p, out.size());
  return ok();
}

Result<void> VfioPort::mem_write(uint64_t addr, std::span<const uint8_t> data) {
  uint8_t* p = host(addr, data.size());
  if (!p) return outside("guest memory write", addr, data.size());
  std::memcpy(p, data.data(), data.size());
  std::atomic_thread_fence(std::memory_order_release);
  return ok();
}

}  // namespace mdevmig::guest
