// Whole Cap'n Proto messages (standard framing) from a Reader: the save file's frames
// and the wire protocol's messages. Sizes come from the segment table and are bounded
// before anything is allocated; the bytes land 8-byte aligned, as decoders need.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "base/result.h"
#include "migration/io/uring.h"

namespace mdevmig::io {

class FrameReader {
 public:
  /// `max_bytes`: the largest message accepted (a larger one is corrupt input).
  FrameReader(Reader& reader, std::size_t max_bytes) : reader_(&reader), max_bytes_(max_bytes) {}

  /// The next message, valid until the next call; an empty span at a clean end of input
  /// (between messages). Input ending inside a message fails with kCorruptErrno.
  [[nodiscard]] Result<std::span<const std::byte>> next(
      std::optional<std::chrono::milliseconds> timeout = std::nullopt);
  /// Bytes of input consumed so far.
  [[nodiscard]] uint64_t consumed() const noexcept { return consumed_; }

 private:
  Reader* reader_;
  std::size_t max_bytes_;
  std::vector<uint64_t> buf_;  // words: aligned for the decoders
  uint64_t consumed_ = 0;
};

}  // namespace mdevmig::io
