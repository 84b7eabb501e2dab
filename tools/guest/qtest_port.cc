#include "tools/guest/qtest_port.h"

#include <cstring>

namespace mdevmig::guest {
namespace {

constexpr uint16_t kPciConfigAddr = 0xcf8, kPciConfigData = 0xcfc;

uint32_t cfg_address(uint32_t devfn, uint32_t off) {
  return 0x80000000u | devfn << 8 | (off & 0xfc);
}

}  // namespace

Result<uint32_t> QtestPort::cfg_read(uint32_t off, uint32_t len) {
  MDEVMIG_TRY(qt_.outl(kPciConfigAddr, cfg_address(devfn_, off)));
  const auto data = static_cast<uint16_t>(kPciConfigData + (off & 3));
  switch (len) {
    case 1:
      return uint32_t{MDEVMIG_TRY(qt_.inb(data))};
    case 2:
      return uint32_t{MDEVMIG_TRY(qt_.inw(data))};
    case 4:
      return qt_.inl(kPciConfigData);
  }
  return Error::make(EINVAL, "config read", "length " + std::to_string(len));
}

Result<void> QtestPort::cfg_write(uint32_t off, uint32_t len, uint32_t v) {
  MDEVMIG_TRY(qt_.outl(kPciConfigAddr, cfg_address(devfn_, off)));
  const auto data = static_cast<uint16_t>(kPciConfigData + (off & 3));
  switch (len) {
    case 1:
      return qt_.outb(data, static_cast<uint8_t>(v));
    case 2:
      return qt_.outw(data, static_cast<uint16_t>(v));
    case 4:
      return qt_.outl(kPciConfigData, v);
  }
  return Error::make(EINVAL, "config write", "length " + std::to_string(len));
}

Result<void> QtestPort::mem_read(uint64_t addr, std::span<uint8_t> out) {
  auto got = MDEVMIG_TRY(qt_.b64read(addr, out.size()));
  if (got.size() != out.size()) return Error::make(EPROTO, "qtest b64read", "short read");
  std::memcpy(out.data(), got.data(), out.size());
  return ok();
}

}  // namespace mdevmig::guest
