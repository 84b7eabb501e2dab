#include "tools/guest/descriptors.h"

namespace mdevmig::guest {

mdevmig_dma_desc raw(uint32_t opcode, uint64_t src, uint64_t dst, uint64_t len, uint64_t pattern) {
  mdevmig_dma_desc d{};
  d.opcode = opcode;
  d.src = src;
  d.dst = dst;
  d.len = len;
  d.pattern = pattern;
  return d;
}

mdevmig_dma_desc copy_to_dev(uint64_t src_iova, uint64_t dst_off, uint64_t len) {
  return raw(MDEVMIG_DMA_OP_COPY_TO_DEV, src_iova, dst_off, len);
}

mdevmig_dma_desc copy_from_dev(uint64_t src_off, uint64_t dst_iova, uint64_t len) {
  return raw(MDEVMIG_DMA_OP_COPY_FROM_DEV, src_off, dst_iova, len);
}

mdevmig_dma_desc copy_guest(uint64_t src_iova, uint64_t dst_iova, uint64_t len) {
  return raw(MDEVMIG_DMA_OP_COPY_GUEST, src_iova, dst_iova, len);
}

mdevmig_dma_desc fill(uint64_t dst_off, uint64_t len, uint64_t pattern) {
  return raw(MDEVMIG_DMA_OP_FILL, 0, dst_off, len, pattern);
}

mdevmig_dma_desc hash(uint64_t src_off, uint64_t len, uint64_t dst_iova) {
  return raw(MDEVMIG_DMA_OP_HASH, src_off, dst_iova, len);
}

}  // namespace mdevmig::guest
