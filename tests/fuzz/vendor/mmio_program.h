// The byte program the vendor_mmio fuzzer executes against a simulated device: guest
// config/MMIO accesses, descriptors written into the ring, doorbells, engine steps,
// IOMMU changes and save/load round trips. Shared by the fuzzer and the seed
// generator so seeds are real programs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "sim.h"

namespace mdevmig::fuzz {

inline constexpr uint64_t kMemSize = 128 << 10;  // > one step: HASH and copies checkpoint mid-way
inline constexpr uint64_t kBuf = 0x40000000;     // guest buffer IOVA
inline constexpr uint64_t kBufSize = 128 << 10;
inline constexpr uint32_t kRingEntries = 16;

enum Op : uint8_t {
  kCfgWrite,  // u8 off, u8 len (1..4), u32 value
  kCfgRead,   // u8 off, u8 len
  kRegWrite,  // u8 register (index into kRegs), u32 value
  kMmio,      // u16 off, u8 len index (1/2/4/8), u8 write, u64 value
  kRun,       // u8 steps
  kDesc,      // u8 slot, u8 opcode, u8 flags, u8 src sel, u8 dst sel, u8 len sel, u64 raw
  kDoorbell,  // u8 tail
  kIommu,     // u8 action (0 fail after n, 1 unmap buffer, 2 map buffer), u8 n
  kSaveLoad,  // -
  kNumOps,
};

inline constexpr uint32_t kRegs[] = {
    MDEVMIG_REG_CTRL,         MDEVMIG_REG_INT_STATUS, MDEVMIG_REG_INT_MASK,
    MDEVMIG_REG_INT_SET,      MDEVMIG_REG_SCRATCH(0), MDEVMIG_REG_RING_BASE_LO,
    MDEVMIG_REG_RING_BASE_HI, MDEVMIG_REG_RING_SIZE,  MDEVMIG_REG_RING_TAIL,
    MDEVMIG_REG_STATUS,
};

// Operand selectors for descriptor addresses and lengths: interesting values first,
// then the raw u64 of the command.
inline uint64_t select_value(uint8_t sel, uint64_t raw) {
  static constexpr uint64_t kValues[] = {
      0,
      1,
      8,
      4096,
      kMemSize - 1,
      kMemSize,
      kMemSize - 4096,
      3 * MDEVMIG_DMA_STEP_BYTES / 2,
      kBuf,
      kBuf + 3,
      kBuf + kBufSize - 8,
      kBuf + kBufSize - 100,
      0x7000000000,
      ~0ull,
      ~0ull - 7,
      MDEVMIG_DMA_MAX_LEN,
      MDEVMIG_DMA_STEP_BYTES,
      kMemSize / 2,
  };
  constexpr size_t n = sizeof(kValues) / sizeof(kValues[0]);
  return sel < n ? kValues[sel] : raw;
}

// Appends commands to a program (for the seed generator).
class ProgramWriter {
 public:
  ProgramWriter& cfg_write(uint8_t off, uint8_t len, uint32_t v) {
    op(kCfgWrite).u8(off).u8(len).u32(v);
    return *this;
  }
  ProgramWriter& reg(uint8_t idx, uint32_t v) {
    op(kRegWrite).u8(idx).u32(v);
    return *this;
  }
  ProgramWriter& run(uint8_t steps) {
    op(kRun).u8(steps);
    return *this;
  }
  ProgramWriter& desc(uint8_t slot, uint8_t opcode, uint8_t flags, uint8_t src, uint8_t dst,
                      uint8_t len, uint64_t raw = 0) {
    op(kDesc).u8(slot).u8(opcode).u8(flags).u8(src).u8(dst).u8(len).u64(raw);
    return *this;
  }
  ProgramWriter& doorbell(uint8_t tail) {
    op(kDoorbell).u8(tail);
    return *this;
  }
  ProgramWriter& iommu(uint8_t action, uint8_t n) {
    op(kIommu).u8(action).u8(n);
    return *this;
  }
  ProgramWriter& save_load() {
    op(kSaveLoad);
    return *this;
  }
  const std::vector<uint8_t>& bytes() const { return b_; }

 private:
  ProgramWriter& op(Op o) { return u8(o); }
  ProgramWriter& u8(uint8_t v) {
    b_.push_back(v);
    return *this;
  }
  ProgramWriter& u32(uint32_t v) {
    for (int i = 0; i < 4; i++) u8(static_cast<uint8_t>(v >> (8 * i)));
    return *this;
  }
  ProgramWriter& u64(uint64_t v) {
    for (int i = 0; i < 8; i++) u8(static_cast<uint8_t>(v >> (8 * i)));
    return *this;
  }
  std::vector<uint8_t> b_;
};

// Index of a register in kRegs.
inline uint8_t reg_index(uint32_t off) {
  for (std::size_t i = 0; i < sizeof(kRegs) / sizeof(kRegs[0]); i++)
    if (kRegs[i] == off) return static_cast<uint8_t>(i);
  return 0;
}

}  // namespace mdevmig::fuzz
