// The descriptor builder: one function per DMA opcode (<linux/mdevmig.h>, "DMA
// descriptors and completions"). A new opcode gets its builder here.
#pragma once

#include <linux/mdevmig.h>

#include <cstdint>

namespace mdevmig::guest {

/// Guest memory at src_iova → device memory at dst_off.
[[nodiscard]] mdevmig_dma_desc copy_to_dev(uint64_t src_iova, uint64_t dst_off, uint64_t len);
/// Device memory at src_off → guest memory at dst_iova.
[[nodiscard]] mdevmig_dma_desc copy_from_dev(uint64_t src_off, uint64_t dst_iova, uint64_t len);
/// Guest memory → guest memory.
[[nodiscard]] mdevmig_dma_desc copy_guest(uint64_t src_iova, uint64_t dst_iova, uint64_t len);
/// len bytes of device memory at dst_off with the little-endian bytes of pattern.
[[nodiscard]] mdevmig_dma_desc fill(uint64_t dst_off, uint64_t len, uint64_t pattern);
/// XXH64 of device memory [src_off, src_off + len) written to guest memory at dst_iova.
[[nodiscard]] mdevmig_dma_desc hash(uint64_t src_off, uint64_t len, uint64_t dst_iova);
/// A descriptor with an opcode of the caller's choosing (also opcodes the device lacks).
[[nodiscard]] mdevmig_dma_desc raw(uint32_t opcode, uint64_t src, uint64_t dst, uint64_t len,
                                   uint64_t pattern = 0);

}  // namespace mdevmig::guest
