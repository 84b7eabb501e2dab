// Fuzzes the wire protocol decoder: the input is a byte stream as a peer would send it,
// cut into messages by the segment tables (frame_size) and decoded one by one, with
// and without guest memory.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "migration/schema/codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mdevmig::schema;
  std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);
  std::vector<uint64_t> aligned;
  while (!in.empty()) {
    auto n = frame_size(in, kMaxFrameBytes);
    if (!n.ok() || !n->has_value() || **n > in.size()) break;
    aligned.assign((**n + 7) / 8, 0);
    std::memcpy(aligned.data(), in.data(), **n);
    std::span<const std::byte> msg(reinterpret_cast<const std::byte*>(aligned.data()), **n);
    (void)decode_wire(msg, 4096);
    (void)decode_wire(msg, 0);
    (void)decode_frame(msg);
    in = in.subspan(**n);
  }
  return 0;
}
