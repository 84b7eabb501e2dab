// The save file (`mdevmig save` / `restore` / `inspect`): a preamble, a FileHeader,
// checksummed chunks of the raw device stream, a trailer (schema/mdevmig.capnp).
//
// Restore validates before it touches the device. By default it makes two passes: the
// first reads and verifies the whole file (preamble, header checksum, every chunk's
// XXH3, sequence and offsets, the trailer's totals, whole-stream and all-frames XXH3
// (so damage even in unused bits is found), nothing after
// it) and checks the header's device identity against the target; only then does the
// second pass feed the device, verifying each chunk (its XXH3, sequence, offset and the
// totals) again before it is written. Without
// `verify_first` (a single streaming pass) the header and compatibility are still checked first and each chunk
// before it is fed, but damage late in the file is found after earlier chunks went to
// the device: the device is then reset, and the error says so.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "migration/base/result.h"
#include "migration/engine/channel.h"
#include "migration/io/framed.h"
#include "migration/io/uring.h"
#include "migration/schema/codec.h"

namespace mdevmig::engine {

/// The tool version written into headers and hellos.
inline constexpr const char* kToolVersion = "mdevmig 0.1.0";

struct SaveOptions {
  std::size_t chunk_size = 1u << 20;
  bool leave_running = true;  ///< RUNNING after the save (else STOP)
  io::IoOptions file_io{8, 1u << 20, ""};
  std::function<void(uint64_t stream_bytes)> progress;
};

struct SaveReport {
  schema::Channel channel = schema::Channel::kInvalid;
  uint64_t stream_bytes = 0;
  uint64_t chunks = 0;
  uint64_t file_bytes = 0;
  uint64_t stream_xxh3 = 0;
  double seconds = 0;
};

/// Saves the device behind `ch` (STOP, STOP_COPY, read to the end, then STOP or
/// RUNNING) into `fd` (written from offset 0). On failure the device is recovered to
/// RUNNING and the error says so.
[[nodiscard]] Result<SaveReport> save_to_file(Channel& ch, const schema::DeviceIdentity& id,
                                              int fd, const SaveOptions& opt);

struct ChunkInfo {
  uint64_t seq = 0, offset = 0, bytes = 0, xxh3 = 0;
  schema::Phase phase = schema::Phase::kInvalid;
};

/// What FileScanner checks beyond each chunk's own XXH3, sequence and offset and the
/// trailer's totals (always checked).
struct ScanChecks {
  bool frames_xxh3 = true;  ///< every frame's bytes (damage outside chunk data)
  bool stream_xxh3 = true;  ///< the whole stream again (end to end)
};

/// Reads a save file in order, verifying everything as it goes.
class FileScanner {
 public:
  /// Reads and checks the preamble and the header.
  /// The default slots (4 MiB) hold most 1 MiB frames whole, so they need no copy.
  [[nodiscard]] static Result<FileScanner> open(int fd, io::IoOptions io = {4, 4u << 20, ""},
                                                ScanChecks checks = ScanChecks());
  FileScanner(FileScanner&&) noexcept = default;

  [[nodiscard]] const schema::Preamble& preamble() const { return preamble_; }
  [[nodiscard]] const schema::FileHeader& header() const { return header_; }
  /// The next chunk, verified (its data valid until the next call), or nullopt once the
  /// trailer was read, matched against everything before it, and the file ended.
  [[nodiscard]] Result<std::optional<schema::ChunkView>> next_chunk();
  [[nodiscard]] const schema::Trailer& trailer() const { return trailer_; }
  [[nodiscard]] uint64_t file_bytes() const { return file_bytes_; }

 private:
  FileScanner(io::Reader reader, std::string name);

  std::unique_ptr<io::Reader> reader_;
  std::unique_ptr<io::FrameReader> frames_;
  std::string name_;
  schema::Preamble preamble_;
  schema::FileHeader header_;
  schema::Trailer trailer_;
  uint64_t file_bytes_ = 0;
  uint64_t seq_ = 0, stream_bytes_ = 0, precopy_bytes_ = 0, stopcopy_bytes_ = 0;
  std::shared_ptr<void> hash_;         // XXH3 state of the whole stream
  std::shared_ptr<void> frames_hash_;  // XXH3 state of the frames' bytes
  bool done_ = false;
  ScanChecks checks_;
};

struct FileSummary {
  schema::Preamble preamble;
  schema::FileHeader header;
  std::vector<ChunkInfo> chunks;
  schema::Trailer trailer;
  uint64_t file_bytes = 0;
};

/// Reads and verifies a whole file without any device; `on_chunk` sees each verified
/// chunk (inspect decodes the device stream from it).
[[nodiscard]] Result<FileSummary> verify_file(
    int fd, const std::function<void(const schema::ChunkView&)>& on_chunk = {});

struct RestoreOptions {
  /// Verify the whole file before the first device write (pass 1); false when the caller
  /// did so itself (verify_file) or wants a single streaming pass.
  bool verify_first = true;
  bool run = true;  ///< RUNNING after the restore (else STOP)
  std::function<void(uint64_t stream_bytes, uint64_t total)> progress;
};

struct RestoreReport {
  schema::FileHeader header;
  uint64_t stream_bytes = 0;
  uint64_t chunks = 0;
  double verify_seconds = 0;
  double restore_seconds = 0;
};

/// Restores `fd` into the device behind `ch`, whose identity is `target` (see the file
/// comment for the order of checks). Corrupt input fails with schema::kCorruptErrno,
/// a file for another device with schema::kIncompatibleErrno.
[[nodiscard]] Result<RestoreReport> restore_from_file(Channel& ch,
                                                      const schema::DeviceIdentity& target,
                                                      int fd, const RestoreOptions& opt);

}  // namespace mdevmig::engine
