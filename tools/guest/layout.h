// The one guest-memory layout every driver of the DMA ring uses: where the ring, the
// completion records, the HASH results and the data buffers sit, as offsets from the
// start of the guest memory the device may reach (a guest-physical address under QEMU,
// an IOVA under VFIO and in the simulator).
#pragma once

#include <linux/mdevmig.h>

#include <cstdint>

namespace mdevmig::guest {

struct Layout {
  static constexpr uint64_t kRingOff = 0;             ///< the descriptor ring
  static constexpr uint32_t kMaxEntries = 1024;       ///< ring entries that fit before kCmplOff
  static constexpr uint64_t kCmplOff = 64u << 10;     ///< one completion record per ring slot
  static constexpr uint64_t kResultOff = 128u << 10;  ///< one 8-byte HASH result per ring slot
  static constexpr uint64_t kDataOff = 1u << 20;      ///< data buffers, up to kSize
  static constexpr uint64_t kSrcOff = kDataOff;  ///< kSlots source buffers (the guest writes them)
  static constexpr uint64_t kDstOff =
      3u << 20;  ///< kSlots destination buffers (the device writes them)
  static constexpr uint32_t kSlots = 64;
  static constexpr uint32_t kSlotSize = 16u << 10;
  static constexpr uint64_t kSize = 4u << 20;  ///< guest memory the layout spans

  uint64_t base = 0;  ///< address of the first byte

  [[nodiscard]] constexpr uint64_t ring() const { return base + kRingOff; }
  [[nodiscard]] constexpr uint64_t cmpl(uint32_t slot) const {
    return base + kCmplOff + uint64_t{slot} * sizeof(mdevmig_dma_cmpl);
  }
  [[nodiscard]] constexpr uint64_t result(uint32_t slot) const {
    return base + kResultOff + uint64_t{slot} * 8;
  }
  [[nodiscard]] constexpr uint64_t data(uint64_t off = 0) const { return base + kDataOff + off; }
  [[nodiscard]] constexpr uint64_t src(uint32_t slot) const {
    return base + kSrcOff + uint64_t{slot} * kSlotSize;
  }
  [[nodiscard]] constexpr uint64_t dst(uint32_t slot) const {
    return base + kDstOff + uint64_t{slot} * kSlotSize;
  }
};

static_assert(Layout::kMaxEntries * sizeof(mdevmig_dma_desc) <=
              Layout::kCmplOff - Layout::kRingOff);
static_assert(Layout::kCmplOff + Layout::kMaxEntries * sizeof(mdevmig_dma_cmpl) <=
              Layout::kResultOff);
static_assert(Layout::kResultOff + uint64_t{Layout::kMaxEntries} * 8 <= Layout::kDataOff);
static_assert(Layout::kSrcOff + uint64_t{Layout::kSlots} * Layout::kSlotSize <= Layout::kDstOff);
static_assert(Layout::kDstOff + uint64_t{Layout::kSlots} * Layout::kSlotSize <= Layout::kSize);

/// The layout of the simulator's tests, fuzzers and benchmarks (SimRing): the ring at
/// the IOVA their seeds program.
inline constexpr Layout kSimLayout{.base = 0x10000000};

}  // namespace mdevmig::guest
