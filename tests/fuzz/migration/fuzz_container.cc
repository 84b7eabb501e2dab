// Fuzzes the save-file reader: the input is a whole file, mapped and read through
// FileScanner (the code restore and inspect use) from a memfd; every chunk that verifies goes
// through the device stream decoder. Nothing may crash, hang or leak; errors are values.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>

#include "migration/engine/savefile.h"
#include "tools/devstream/stream_decode.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const int fd = ::memfd_create("fuzz-save-file", MFD_CLOEXEC);
  if (fd < 0) return 0;
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, data, size, 0) != static_cast<ssize_t>(size))
    return 0;
  auto scanner = mdevmig::engine::FileScanner::open(fd);
  if (!scanner.ok()) return 0;
  mdevmig::devstream::StreamDecoder decoder;
  for (;;) {
    auto chunk = scanner->next_chunk();
    if (!chunk.ok() || !chunk->has_value()) break;
    decoder.feed((*chunk)->data, (*chunk)->phase);
  }
  (void)decoder.finish();
  return 0;
}
