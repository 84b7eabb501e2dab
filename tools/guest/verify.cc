#include "tools/guest/verify.h"

#include <linux/mdevmig.h>

#include <cinttypes>
#include <cstdio>

namespace mdevmig::guest {

std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%" PRIx64, v);
  return buf;
}

std::string describe_diff(const std::string& what, uint64_t base, std::span<const uint8_t> got,
                          std::span<const uint8_t> want) {
  uint64_t first = UINT64_MAX, count = 0;
  for (std::size_t i = 0; i < got.size() && i < want.size(); ++i)
    if (got[i] != want[i]) {
      if (first == UINT64_MAX) first = i;
      ++count;
    }
  if (count == 0) return {};
  char buf[200];
  std::snprintf(buf, sizeof buf,
                "%s: %" PRIu64 " bytes differ, first at %s (got 0x%02x, want 0x%02x)", what.c_str(),
                count, hex(base + first).c_str(), got[first], want[first]);
  return buf;
}

Result<std::vector<std::string>> compare_registers(DevicePort& port, const Replay& model) {
  std::vector<std::string> out;
  auto expect = [&](const std::string& name, uint32_t off, uint32_t want) -> Result<void> {
    const uint32_t got = MDEVMIG_TRY(port.reg(off));
    if (got != want) out.push_back(name + " = " + hex(got) + ", want " + hex(want));
    return ok();
  };
  struct Reg {
    const char* name;
    uint32_t off;
  };
  static constexpr Reg kModelRegs[] = {
      {"ID", MDEVMIG_REG_ID},
      {"MEM_SIZE_LO", MDEVMIG_REG_MEM_SIZE_LO},
      {"CTRL", MDEVMIG_REG_CTRL},
      {"INT_MASK", MDEVMIG_REG_INT_MASK},
      {"RING_BASE_LO", MDEVMIG_REG_RING_BASE_LO},
      {"RING_SIZE", MDEVMIG_REG_RING_SIZE},
      {"RING_HEAD", MDEVMIG_REG_RING_HEAD},
      {"RING_TAIL", MDEVMIG_REG_RING_TAIL},
      {"SEQ", MDEVMIG_REG_SEQ},
      {"ERR_DESC", MDEVMIG_REG_ERR_DESC},
  };
  for (const Reg& r : kModelRegs) MDEVMIG_TRY(expect(r.name, r.off, model.reg(r.off)));
  MDEVMIG_TRY(expect("ERR_DMA", MDEVMIG_REG_ERR_DMA, 0));
  MDEVMIG_TRY(expect("ERR_RING", MDEVMIG_REG_ERR_RING, 0));
  for (uint32_t i = 0; i < MDEVMIG_NR_SCRATCH; ++i)
    MDEVMIG_TRY(expect("SCRATCH" + std::to_string(i), MDEVMIG_REG_SCRATCH(i),
                       model.reg(MDEVMIG_REG_SCRATCH(i))));
  return out;
}

}  // namespace mdevmig::guest
