// Fuzzes inspect's reader of damaged save files (tools/cli/inspect_damaged.h): any bytes
// in, a report out (the salvage and inspect --json's document of it, as text). Nothing may
// crash, hang or allocate without bound, and the report must describe the input: every
// frame it lists lies inside the file, in file order.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>

#include "tools/cli/inspect_damaged.h"

namespace {

[[noreturn]] void broken(const char* what) {
  std::fprintf(stderr, "report does not describe the input: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mdevmig::cli;
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  const Salvage s = salvage(bytes, "fuzz.mdevmig");
  if (s.file_bytes != size) broken("file_bytes");
  uint64_t end = 0;
  for (const auto& e : s.chunks) {
    if (e.file_offset < end || e.frame_bytes == 0 || e.frame_bytes > size - e.file_offset)
      broken("a frame's place");
    end = e.file_offset + e.frame_bytes;
    if (e.chunk &&
        (e.chunk->file_offset < e.file_offset || e.chunk->file_offset + e.chunk->bytes > end))
      broken("a chunk's data outside its frame");
  }
  if (!s.preamble && s.preamble_problem.empty()) broken("no preamble and no reason");
  const std::string text = json_text(damaged_json("fuzz.mdevmig", s, "fuzz"));
  if (text.empty()) broken("empty JSON");
  return 0;
}
