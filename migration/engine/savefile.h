// The save file (`mdevmig save` / `restore` / `inspect`): a preamble, a FileHeader,
// checksummed chunks of the raw device stream, a trailer (schema/mdevmig.capnp).
//
// Reading maps the file (it must be a regular file) and decodes every frame where it
// lies: hashes run on the mapped pages and a restore hands the mapped chunk data to the
// device's write, so the kernel's copy into the device is the only one.
//
// Restore validates before it touches the device. By default it makes two passes over
// the one mapping: the first verifies the whole file (preamble, header checksum, every
// chunk's XXH3, sequence and offsets, the trailer's totals, whole-stream and all-frames
// XXH3 (so damage even in unused bits is found), nothing after it) and checks the
// header's device identity against the target; only then does the second pass feed the
// device the verified chunks from the first pass's table, each hashed again right before
// it is written (the mapping shows the file as it is now), so only verified bytes reach
// the device. Without
// `verify_first` (a single pass) the header and compatibility are still checked first
// and each chunk before it is fed, but damage late in the file is found after earlier
// chunks went to the device: the device is then reset, and the error says so.
//
// Any of these stops on a Cancel (Ctrl-C): a save's device goes back to RUNNING, a
// restore's is reset, and the error is EINTR.
//
// TODO(security): a file truncated by another process while it is mapped raises SIGBUS
// at the next access to the lost pages; restore reads files the operator names, so this
// is not handled (a SIGBUS handler could turn it into a corrupt-input error).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "migration/engine/channel.h"
#include "migration/io/uring.h"
#include "migration/schema/codec.h"
#include "migration/vfio/mapping.h"

namespace mdevmig::engine {

#ifndef MDEVMIG_VERSION
#error "MDEVMIG_VERSION (CMake's project version) must be defined by the build"
#endif

/// The tool version written into headers and hellos: the project version.
inline constexpr const char* kToolVersion = "mdevmig " MDEVMIG_VERSION;

struct SaveOptions {
  std::size_t chunk_size = 1u << 20;
  bool leave_running = true;  ///< RUNNING after the save (else STOP)
  io::IoOptions file_io{8, 1u << 20, ""};
  std::function<void(uint64_t stream_bytes)> progress;
  const io::Cancel* cancel = nullptr;  ///< not owned; stops the save (device back to RUNNING)
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
[[nodiscard]] Result<SaveReport> save_to_file(Channel& ch, const schema::DeviceIdentity& id, int fd,
                                              const SaveOptions& opt);

struct ChunkInfo {
  uint64_t seq = 0, offset = 0, bytes = 0, xxh3 = 0;
  schema::Phase phase = schema::Phase::kInvalid;
  uint64_t file_offset = 0;  ///< where the chunk's data lies in the file
};

/// Reads a mapped save file in order, verifying everything as it goes: each chunk's own
/// XXH3, sequence and offset; at the trailer the totals, the stream XXH3 (end to end)
/// and the XXH3 of every frame's bytes (damage outside chunk data).
class FileScanner {
 public:
  /// Maps `fd` (a regular file; ESPIPE otherwise) and checks the preamble and the header.
  [[nodiscard]] static Result<FileScanner> open(int fd, std::string name = "save file");
  FileScanner(FileScanner&&) noexcept = default;

  [[nodiscard]] const schema::Preamble& preamble() const { return preamble_; }
  [[nodiscard]] const schema::FileHeader& header() const { return header_; }
  /// The next chunk, verified (its data points into the mapping, valid while the scanner
  /// lives), or nullopt once the trailer was read, matched against everything before
  /// it, and the file ended.
  [[nodiscard]] Result<std::optional<schema::ChunkView>> next_chunk();
  [[nodiscard]] const schema::Trailer& trailer() const { return trailer_; }
  /// Bytes of the file read so far (the whole file once next_chunk() returned nullopt).
  [[nodiscard]] uint64_t file_bytes() const { return pos_; }
  /// Whether this pass reached the end of the file without an error.
  [[nodiscard]] bool verified() const { return verified_; }
  /// The chunks read so far in this pass (all of them once verified()).
  [[nodiscard]] const std::vector<ChunkInfo>& chunks() const { return chunks_; }
  /// The data of a chunk of chunks(), checked against its XXH3 again (the file may have
  /// changed since): what a verified restore loads.
  [[nodiscard]] Result<std::span<const std::byte>> reread(const ChunkInfo& c) const;
  /// Starts a new pass at the first chunk.
  void rewind();

 private:
  FileScanner(vfio::Mapping map, std::string name);
  [[nodiscard]] Result<std::span<const std::byte>> next_frame(const std::string& at);

  vfio::Mapping map_;
  std::span<const std::byte> file_;  // the mapped bytes
  std::string name_;
  std::vector<uint64_t> unaligned_;  // a frame copied here when it is not 8-byte aligned
  schema::Preamble preamble_;
  schema::FileHeader header_;
  schema::Trailer trailer_;
  uint64_t first_frame_ = 0, pos_ = 0;
  uint64_t seq_ = 0, stream_bytes_ = 0, precopy_bytes_ = 0, stopcopy_bytes_ = 0;
  std::shared_ptr<void> hash_;         // XXH3 state of the whole stream
  std::shared_ptr<void> frames_hash_;  // XXH3 state of the frames' bytes
  std::vector<ChunkInfo> chunks_;
  bool done_ = false, verified_ = false;
};

struct FileSummary {
  schema::Preamble preamble;
  schema::FileHeader header;
  std::vector<ChunkInfo> chunks;
  schema::Trailer trailer;
  uint64_t file_bytes = 0;
};

/// Verifies the whole of `file` (from its first chunk, every check) without any device;
/// `on_chunk` sees each verified chunk (inspect decodes the device stream from it).
[[nodiscard]] Result<FileSummary> verify_file(
    FileScanner& file, const std::function<void(const schema::ChunkView&)>& on_chunk = {},
    const io::Cancel* cancel = nullptr);

struct RestoreOptions {
  /// Verify the whole file before the first device write (pass 1; skipped when `file`
  /// was verified already, e.g. before the device was opened); false: a single pass.
  bool verify_first = true;
  bool run = true;  ///< RUNNING after the restore (else STOP)
  std::function<void(uint64_t stream_bytes, uint64_t total)> progress;
  const io::Cancel* cancel = nullptr;  ///< not owned; stops the restore (device reset)
};

struct RestoreReport {
  schema::FileHeader header;
  uint64_t stream_bytes = 0;
  uint64_t chunks = 0;
  double verify_seconds = 0;
  double restore_seconds = 0;
};

/// Restores `file` into the device behind `ch`, whose identity is `target` (see the
/// file comment for the order of checks). Corrupt input fails with
/// schema::kCorruptErrno, a file for another device with schema::kIncompatibleErrno.
[[nodiscard]] Result<RestoreReport> restore_from_file(Channel& ch,
                                                      const schema::DeviceIdentity& target,
                                                      FileScanner& file, const RestoreOptions& opt);

}  // namespace mdevmig::engine
