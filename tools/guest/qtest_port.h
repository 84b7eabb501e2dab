// QtestPort: a DevicePort into a QEMU VM driven through qtest (tools/qtest/qtest.h):
// the harness does what the VM's CPU would, so BARs are reached at the addresses the
// harness programmed, configuration space through the 0xcf8/0xcfc mechanism of bus 0,
// and guest memory is the VM's RAM.
#pragma once

#include "tools/guest/device_port.h"
#include "tools/qtest/qtest.h"

namespace mdevmig::guest {

class QtestPort final : public DevicePort {
 public:
  /// `devfn`: the function on bus 0; `bar0`, `bar2`: guest-physical BAR addresses.
  QtestPort(qemu::QtestClient& qt, uint32_t devfn, uint64_t bar0, uint64_t bar2)
      : qt_(qt), devfn_(devfn), bar0_(bar0), bar2_(bar2) {}

  Result<uint32_t> read32(Bar bar, uint64_t off) override { return qt_.readl(addr(bar, off)); }
  Result<void> write32(Bar bar, uint64_t off, uint32_t v) override {
    return qt_.writel(addr(bar, off), v);
  }
  Result<uint64_t> read64(Bar bar, uint64_t off) override { return qt_.readq(addr(bar, off)); }
  Result<void> write64(Bar bar, uint64_t off, uint64_t v) override {
    return qt_.writeq(addr(bar, off), v);
  }
  Result<void> read_bar(Bar bar, uint64_t off, std::span<uint8_t> out) override {
    return mem_read(addr(bar, off), out);
  }
  Result<uint32_t> cfg_read(uint32_t off, uint32_t len) override;
  Result<void> cfg_write(uint32_t off, uint32_t len, uint32_t v) override;
  Result<void> mem_read(uint64_t addr, std::span<uint8_t> out) override;
  Result<void> mem_write(uint64_t addr, std::span<const uint8_t> data) override {
    return qt_.b64write(addr, data);
  }

  [[nodiscard]] qemu::QtestClient& qtest() { return qt_; }

 private:
  [[nodiscard]] uint64_t addr(Bar bar, uint64_t off) const {
    return (bar == Bar::kRegs ? bar0_ : bar2_) + off;
  }

  qemu::QtestClient& qt_;
  uint32_t devfn_;
  uint64_t bar0_, bar2_;
};

}  // namespace mdevmig::guest
