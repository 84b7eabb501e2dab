// inspect's reader of a damaged save file: everything that can still be read (preamble,
// header, each chunk good or bad and why, trailer), from the file's bytes alone. Kept
// apart from the rest of inspect so the fuzzer (tests/fuzz/cli) drives exactly this code.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "migration/engine/savefile.h"
#include "migration/schema/codec.h"
#include "tools/cli/json_out.h"

namespace mdevmig::cli {

/// What could be read of a file that does not verify: the preamble, the header (decoded
/// even when its checksum is wrong, flagged so), and every frame that the segment tables
/// let us find, each chunk good or bad with the reason. Walking stops only where the
/// framing itself is unreadable or the file ends.
struct Salvage {
  std::optional<schema::Preamble> preamble;
  std::string preamble_problem;  ///< "" if the preamble is good
  std::optional<schema::FileHeader> header;
  std::string header_problem;
  struct Entry {
    uint64_t file_offset = 0, frame_bytes = 0;
    std::optional<engine::ChunkInfo> chunk;  ///< decoded (its own checksum right)
    std::string problem;                     ///< "" if the chunk is good
  };
  std::vector<Entry> chunks;
  std::optional<schema::Trailer> trailer;
  std::string trailer_problem;
  std::string end_problem;  ///< where and why walking the frames stopped early
  uint64_t file_bytes = 0;

  [[nodiscard]] std::size_t bad_chunks() const;
  /// Whether nothing at all is wrong (the reader found no problem anywhere).
  [[nodiscard]] bool clean() const;
};

/// Reads `file` (all of a save file's bytes; `name` is stripped from the decoders' error
/// texts). Never fails: what cannot be read is a problem in the result. Memory beyond the
/// result is one frame's copy, at most schema::kMaxFrameBytes.
[[nodiscard]] Salvage salvage(std::span<const std::byte> file, const std::string& name);

/// A device identity as inspect's JSON shows it.
[[nodiscard]] Json identity_json(const schema::DeviceIdentity& d);

/// inspect --json's document for a damaged file: the salvage, and `verdict` (the error
/// that made the file damaged).
[[nodiscard]] Json damaged_json(const std::string& file, const Salvage& s,
                                const std::string& verdict);

}  // namespace mdevmig::cli
