// The save-file container and the wire protocol (mdevmig.capnp) as plain C++ values.
// Encoding is infallible; decoding treats its input as hostile: Cap'n Proto runs with
// explicit traversal and nesting limits, every enum and count is checked, and Cap'n
// Proto exceptions are caught here, at the decode boundary, and become an Error with
// errno EBADMSG (kCorruptErrno). Nothing outside this file sees a Cap'n Proto type.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace mdevmig::schema {

/// Errno of every "the input is malformed" error (file, stream or peer).
inline constexpr int kCorruptErrno = EBADMSG;
/// Errno of "well-formed but not for this device / this version".
inline constexpr int kIncompatibleErrno = EMEDIUMTYPE;

inline constexpr uint64_t kFileMagic = 0x45564153474d444dull;  // "MDMGSAVE" in memory order
inline constexpr uint64_t kWireMagic = 0x4552495747474d44ull;  // "DMGGWIRE" in memory order
/// The save file's format. 2: the trailer's streamXxh3 is the XXH3 of the chunks' xxh3
/// values and framesXxh3 leaves the chunk data out (1 hashed the bytes themselves).
/// Bump it whenever a reader of the previous format would misread a new file.
inline constexpr uint32_t kFormatVersion = 2;
/// The wire protocol's version. 2: Done's streamXxh3 as in the file's trailer (format 2).
inline constexpr uint32_t kProtocolVersion = 2;

/// Largest header message accepted (real ones are a few hundred bytes).
inline constexpr std::size_t kMaxHeaderBytes = 64u << 10;
/// Largest chunk payload a writer may use, and so the bound of every frame.
inline constexpr std::size_t kMaxChunkBytes = 16u << 20;
/// Largest frame (one Cap'n Proto message, framing included) accepted.
inline constexpr std::size_t kMaxFrameBytes = kMaxChunkBytes + (64u << 10);
/// Largest segment count accepted in a frame (writers produce one).
inline constexpr uint32_t kMaxSegments = 16;
/// Nesting limit for every decode (the deepest real structure is 3 levels).
inline constexpr int kNestingLimit = 8;
/// Region sizes listed in a DeviceIdentity, at most.
inline constexpr std::size_t kMaxRegions = 64;
/// Longest text field accepted.
inline constexpr std::size_t kMaxText = 4096;
/// Largest seconds figure a synced message may carry (an hour: more is not a measurement).
inline constexpr double kMaxSyncedSeconds = 3600;

enum class Channel : uint16_t { kInvalid = 0, kV2StopCopy = 1, kV2PreCopy = 2, kV1Region = 3 };
enum class Phase : uint16_t { kInvalid = 0, kPreCopy = 1, kStopCopy = 2 };
enum class Role : uint16_t { kInvalid = 0, kSource = 1, kDestination = 2 };
enum class ErrorCode : uint16_t {
  kInvalid = 0,
  kIncompatible = 1,
  kCorrupt = 2,
  kDevice = 3,
  kCancelled = 4,
  kInternal = 5,
};

[[nodiscard]] const char* channel_name(Channel c);
[[nodiscard]] const char* phase_name(Phase p);
[[nodiscard]] const char* error_code_name(ErrorCode c);

/// mdevmig's compatibility descriptor (struct mdevmig_rec_compat without reserved).
struct Compat {
  uint32_t stream_version = 0;
  uint32_t model_version = 0;
  uint32_t type_id = 0;
  uint32_t page_size = 0;
  uint64_t mem_size = 0;
  friend bool operator==(const Compat&, const Compat&) = default;
};

/// What a stream came from.
struct DeviceIdentity {
  std::string uuid;
  std::string sysfs_path;
  std::string device_api;
  uint32_t vfio_flags = 0;
  uint64_t migration_flags = 0;
  uint16_t pci_vendor = 0, pci_device = 0, pci_sub_vendor = 0, pci_sub_device = 0;
  std::vector<uint64_t> region_sizes;
  std::optional<Compat> compat;
  friend bool operator==(const DeviceIdentity&, const DeviceIdentity&) = default;
};

struct FileHeader {
  uint32_t format_version = kFormatVersion;
  std::string tool_version;
  DeviceIdentity device;
  Channel channel = Channel::kInvalid;
  uint32_t chunk_size = 0;
  uint64_t created_unix_ns = 0;
  std::string hostname;
  friend bool operator==(const FileHeader&, const FileHeader&) = default;
};

/// A decoded chunk; `data` points into the decoded buffer.
struct ChunkView {
  uint64_t seq = 0;
  uint64_t offset = 0;
  Phase phase = Phase::kInvalid;
  std::span<const std::byte> data;
  uint64_t xxh3 = 0;
};

struct Trailer {
  uint64_t chunks = 0;
  uint64_t stream_bytes = 0;
  uint64_t stream_xxh3 = 0;
  uint64_t header_xxh3 = 0;
  uint64_t finished_unix_ns = 0;
  uint64_t precopy_bytes = 0;
  uint64_t stopcopy_bytes = 0;
  uint64_t frames_xxh3 = 0;  ///< XXH3 of the bytes of every frame before the trailer
  friend bool operator==(const Trailer&, const Trailer&) = default;
};

/// A frame after the header: a chunk or the trailer.
struct Frame {
  enum class Kind { kChunk, kTrailer } kind = Kind::kChunk;
  ChunkView chunk;
  Trailer trailer;
};

// ---- the save file: preamble ------------------------------------------------------------

/// The fixed 24 bytes a save file starts with: magic, format version, header length and
/// the XXH3 of the header bytes, so a wrong or damaged file is refused before any
/// Cap'n Proto decoding.
struct Preamble {
  uint32_t format_version = kFormatVersion;
  uint32_t header_bytes = 0;
  uint64_t header_xxh3 = 0;
};
inline constexpr std::size_t kPreambleBytes = 24;
[[nodiscard]] std::array<std::byte, kPreambleBytes> encode_preamble(const Preamble& p);
/// Fails with kCorruptErrno on a bad magic or header length, kIncompatibleErrno on
/// another format version.
[[nodiscard]] Result<Preamble> decode_preamble(std::span<const std::byte> bytes);

// ---- framing ------------------------------------------------------------------------------

/// Total bytes of the Cap'n Proto message (standard framing) that starts with `prefix`:
/// nullopt if more prefix bytes are needed to tell (at most 8 + 4 * kMaxSegments), an
/// error if the segment table is absurd or the message exceeds `max_bytes`.
[[nodiscard]] Result<std::optional<std::size_t>> frame_size(std::span<const std::byte> prefix,
                                                            std::size_t max_bytes);

/// Decodes a FileHeader message (exactly `bytes`; any alignment).
[[nodiscard]] Result<FileHeader> decode_header(std::span<const std::byte> bytes);
/// Decodes a Frame message (exactly `bytes`, 8-byte aligned); a chunk's data is checked
/// against its XXH3 here.
[[nodiscard]] Result<Frame> decode_frame(std::span<const std::byte> bytes);

// ---- the wire protocol ---------------------------------------------------------------------

struct WireHello {
  uint32_t protocol_version = kProtocolVersion;
  Role role = Role::kInvalid;
  std::string tool_version;
  DeviceIdentity device;
  Channel channel = Channel::kInvalid;
  uint64_t guest_mem_bytes = 0;
  uint64_t guest_iova = 0;
  uint32_t page_size = 0;
  bool precopy_sync = false;  ///< sends/answers sync (an older peer: false)
  friend bool operator==(const WireHello&, const WireHello&) = default;
};

struct PageRun {
  uint64_t first = 0;
  uint32_t count = 0;
  friend bool operator==(const PageRun&, const PageRun&) = default;
};

/// Guest pages: runs, and their bytes back to back in `data` (decoded: points into the
/// decoded buffer; checked against its XXH3 and the runs' total).
struct WireGuestPages {
  uint32_t iteration = 0;
  std::vector<PageRun> runs;
  std::span<const std::byte> data;
  uint64_t xxh3 = 0;
};

struct WireSwitchover {
  uint32_t iterations = 0;
  uint64_t precopy_bytes = 0;
  std::string reason;
};

struct WireDone {
  uint64_t chunks = 0;
  uint64_t stream_bytes = 0;
  uint64_t stream_xxh3 = 0;
  uint64_t guest_pages_sent = 0;
};

/// Source: everything before this has been sent; answer when it reached the device (the
/// source does not wait for the answer).
struct WireSync {
  uint64_t seq = 0;
};

/// Destination: the answer to a sync, with what it measured (seconds finite, >= 0).
struct WireSynced {
  uint64_t seq = 0;
  uint64_t loaded_bytes = 0;  ///< device stream and guest bytes loaded so far
  double load_s = 0;          ///< no longer measured: 0 (see mdevmig.capnp)
  double finish_s = 0;        ///< estimate of the destination's commit and start
};

struct WireError {
  ErrorCode code = ErrorCode::kInvalid;
  std::string message;
};

struct WireMessage {
  enum class Kind {
    kHello,
    kChunk,
    kGuestPages,
    kSwitchover,
    kDone,
    kError,
    kSync,
    kSynced
  } kind = Kind::kHello;
  WireHello hello;
  ChunkView chunk;
  WireGuestPages guest_pages;
  WireSwitchover switchover;
  WireDone done;
  WireError error;
  WireSync sync;
  WireSynced synced;
};

/// Builds messages in reusable scratch memory; each returned span is valid until the next
/// call on the same encoder.
class Encoder {
 public:
  /// `max_payload`: the largest chunk or page payload expected; larger ones still work
  /// (in more segments, through a copy).
  explicit Encoder(std::size_t max_payload = 1u << 20);
  ~Encoder();
  Encoder(Encoder&&) noexcept;
  Encoder& operator=(Encoder&&) noexcept;

  [[nodiscard]] std::span<const std::byte> header(const FileHeader& h);
  /// A Frame holding a chunk of `data` (its XXH3 computed here).
  [[nodiscard]] std::span<const std::byte> chunk_frame(uint64_t seq, uint64_t offset, Phase phase,
                                                       std::span<const std::byte> data);
  [[nodiscard]] std::span<const std::byte> trailer_frame(const Trailer& t);

  // Wire messages.
  [[nodiscard]] std::span<const std::byte> wire_hello(const WireHello& h);
  [[nodiscard]] std::span<const std::byte> wire_chunk(uint64_t seq, uint64_t offset, Phase phase,
                                                      std::span<const std::byte> data);
  [[nodiscard]] std::span<const std::byte> wire_guest_pages(const WireGuestPages& g);
  [[nodiscard]] std::span<const std::byte> wire_switchover(const WireSwitchover& s);
  [[nodiscard]] std::span<const std::byte> wire_done(const WireDone& d);
  [[nodiscard]] std::span<const std::byte> wire_error(ErrorCode code, std::string_view message);
  [[nodiscard]] std::span<const std::byte> wire_sync(const WireSync& s);
  [[nodiscard]] std::span<const std::byte> wire_synced(const WireSynced& s);

  /// After chunk_frame() or wire_chunk(): where the chunk's data lies within the bytes
  /// returned, and its XXH3 (computed there).
  [[nodiscard]] std::span<const std::byte> last_chunk_data() const { return last_data_; }
  [[nodiscard]] uint64_t last_chunk_xxh3() const { return last_xxh3_; }

 private:
  void note_chunk(std::span<const std::byte> frame, bool wire);

  std::span<const std::byte> last_data_;
  uint64_t last_xxh3_ = 0;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Decodes one wire message (8-byte aligned). `page_size` bounds guest pages (their data
/// must be sum(count) * page_size bytes); 0 when there is no guest memory (guest pages
/// then fail).
[[nodiscard]] Result<WireMessage> decode_wire(std::span<const std::byte> bytes, uint32_t page_size);

/// The head of a chunk message (a save-file Frame or a WireMessage), written without a
/// builder for the data path: it is followed on the wire or in the file by the data
/// itself and `pad` zero bytes, and the three together are the same Cap'n Proto message
/// the Encoder would build (one segment: root, union struct, Chunk struct, Data list),
/// without copying the data into a builder first.
struct ChunkHead {
  static constexpr std::size_t kBytes = 72;  ///< segment table + 8 words
  std::array<std::byte, kBytes> bytes{};
  std::size_t pad = 0;  ///< zero bytes after the data (to a whole word)
  uint64_t xxh3 = 0;    ///< of the data
};
[[nodiscard]] ChunkHead chunk_head(bool wire, uint64_t seq, uint64_t offset, Phase phase,
                                   std::span<const std::byte> data);
/// `pad` zero bytes, for after a chunk head's data.
[[nodiscard]] std::span<const std::byte> zero_pad(std::size_t pad);

/// XXH3-64 of bulk data with the widest vector unit the CPU has (libxxhash's x86
/// dispatcher: AVX2/AVX-512 where present); the same value as XXH3_64bits.
[[nodiscard]] uint64_t bulk_xxh3(std::span<const std::byte> data);

/// Adds a frame to a running XXH3 of frames (the trailer's framesXxh3), leaving out the
/// chunk data inside it (`data`, a subspan of `frame`, already covered by the chunk's own
/// XXH3): every other byte, unused bits and padding included, is covered once.
void hash_frame_without_data(void* xxh3_state, std::span<const std::byte> frame,
                             std::span<const std::byte> data);

/// Adds one chunk to a stream identity: XXH3 over the chunks' XXH3 values in order (the
/// trailer's and the wire's streamXxh3), so the whole stream is identified without
/// another pass over its bytes.
void hash_chunk_identity(void* xxh3_state, uint64_t chunk_xxh3);

/// Name of a wire message kind ("hello", "chunk", ...).
[[nodiscard]] const char* wire_kind_name(WireMessage::Kind kind);

}  // namespace mdevmig::schema
