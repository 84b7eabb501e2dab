#include "migration/schema/codec.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>
#include <xxhash.h>
#if defined(__x86_64__) && __has_include(<xxh_x86dispatch.h>)
#define XXH_DISPATCH_DISABLE_REPLACE
#include <xxh_x86dispatch.h>
#define MDEVMIG_XXH3_DISPATCH 1
#endif

#include <algorithm>
#include <bit>
#include <cstring>

#include "migration/schema/mdevmig.capnp.h"

namespace mdevmig::schema {
namespace cp = ::mdevmig::schema::capnp;

namespace {

static_assert(std::endian::native == std::endian::little, "the formats are little-endian");

Error corrupt(std::string op, std::string what) {
  return Error::make_verdict(kCorruptErrno, std::move(op), std::move(what));
}

uint64_t xxh3(std::span<const std::byte> d) { return bulk_xxh3(d); }

#ifdef MDEVMIG_XXH3_DISPATCH
__attribute__((target("avx"))) void zero_upper() { __builtin_ia32_vzeroupper(); }
bool has_avx() {
  static const bool avx = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx") != 0;
  }();
  return avx;
}
#endif

kj::ArrayPtr<const kj::byte> kj_bytes(std::span<const std::byte> d) {
  return {reinterpret_cast<const kj::byte*>(d.data()), d.size()};
}
std::span<const std::byte> std_bytes(::capnp::Data::Reader d) {
  return {reinterpret_cast<const std::byte*>(d.begin()), d.size()};
}

template <typename E>
bool enum_in(E v, E last) {
  const auto raw = static_cast<uint16_t>(v);
  return raw >= 1 && raw <= static_cast<uint16_t>(last);
}

Result<std::string> text(::capnp::Text::Reader t, const char* field) {
  if (t.size() > kMaxText) return corrupt("decode", std::string(field) + ": text too long");
  return std::string(t.cStr(), t.size());
}

::capnp::ReaderOptions options_for(std::size_t bytes) {
  ::capnp::ReaderOptions o;
  // Every field is read once: the message's own size bounds an honest traversal, so
  // anything beyond it is amplification (shared or zero-sized list elements).
  o.traversalLimitInWords = bytes / sizeof(::capnp::word) + 256;
  o.nestingLimit = kNestingLimit;
  return o;
}

// Runs `fn(reader)` on the message in `bytes` (8-byte aligned), turning every Cap'n
// Proto exception into a corrupt-input Error. The message must fill `bytes`.
template <typename Root, typename Fn>
auto with_root(std::span<const std::byte> bytes, const char* op, Fn&& fn)
    -> decltype(fn(std::declval<typename Root::Reader>())) {
  MDEVMIG_CHECK(reinterpret_cast<uintptr_t>(bytes.data()) % sizeof(::capnp::word) == 0,
                "%s: unaligned input", op);
  if (bytes.empty() || bytes.size() % sizeof(::capnp::word) != 0) {
    return corrupt(op, "message of " + std::to_string(bytes.size()) + " bytes is not whole words");
  }
  try {
    kj::ArrayPtr<const ::capnp::word> words(reinterpret_cast<const ::capnp::word*>(bytes.data()),
                                            bytes.size() / sizeof(::capnp::word));
    ::capnp::FlatArrayMessageReader reader(words, options_for(bytes.size()));
    if (reader.getEnd() != words.end()) return corrupt(op, "bytes after the message");
    return fn(reader.getRoot<Root>());
  } catch (const kj::Exception& e) {
    return corrupt(op, std::string("malformed message: ") + e.getDescription().cStr());
  }
}

void set_identity(cp::DeviceIdentity::Builder b, const DeviceIdentity& d) {
  b.setUuid(d.uuid);
  b.setSysfsPath(d.sysfs_path);
  b.setDeviceApi(d.device_api);
  b.setVfioFlags(d.vfio_flags);
  b.setMigrationFlags(d.migration_flags);
  b.setPciVendor(d.pci_vendor);
  b.setPciDevice(d.pci_device);
  b.setPciSubVendor(d.pci_sub_vendor);
  b.setPciSubDevice(d.pci_sub_device);
  auto sizes = b.initRegionSizes(static_cast<unsigned>(d.region_sizes.size()));
  for (unsigned i = 0; i < d.region_sizes.size(); ++i) sizes.set(i, d.region_sizes[i]);
  if (d.compat) {
    auto c = b.initCompat();
    c.setStreamVersion(d.compat->stream_version);
    c.setModelVersion(d.compat->model_version);
    c.setTypeId(d.compat->type_id);
    c.setPageSize(d.compat->page_size);
    c.setMemSize(d.compat->mem_size);
  }
}

Result<DeviceIdentity> get_identity(cp::DeviceIdentity::Reader r) {
  DeviceIdentity d;
  d.uuid = MDEVMIG_TRY(text(r.getUuid(), "uuid"));
  d.sysfs_path = MDEVMIG_TRY(text(r.getSysfsPath(), "sysfsPath"));
  d.device_api = MDEVMIG_TRY(text(r.getDeviceApi(), "deviceApi"));
  d.vfio_flags = r.getVfioFlags();
  d.migration_flags = r.getMigrationFlags();
  d.pci_vendor = r.getPciVendor();
  d.pci_device = r.getPciDevice();
  d.pci_sub_vendor = r.getPciSubVendor();
  d.pci_sub_device = r.getPciSubDevice();
  auto sizes = r.getRegionSizes();
  if (sizes.size() > kMaxRegions) return corrupt("decode", "too many regions");
  for (uint64_t v : sizes) d.region_sizes.push_back(v);
  if (r.hasCompat()) {
    auto c = r.getCompat();
    d.compat = Compat{c.getStreamVersion(), c.getModelVersion(), c.getTypeId(), c.getPageSize(),
                      c.getMemSize()};
  }
  return d;
}

void set_chunk(cp::Chunk::Builder b, uint64_t seq, uint64_t offset, Phase phase,
               std::span<const std::byte> data) {
  b.setSeq(seq);
  b.setOffset(offset);
  b.setPhase(static_cast<cp::Phase>(phase));
  b.setData(kj_bytes(data));
  b.setXxh3(xxh3(data));
}

Result<ChunkView> get_chunk(cp::Chunk::Reader r) {
  ChunkView c;
  c.seq = r.getSeq();
  c.offset = r.getOffset();
  c.phase = static_cast<Phase>(r.getPhase());
  if (!enum_in(c.phase, Phase::kStopCopy)) {
    return corrupt("decode chunk", "invalid phase " + std::to_string(static_cast<int>(c.phase)));
  }
  c.data = std_bytes(r.getData());
  c.xxh3 = r.getXxh3();
  if (c.data.size() > kMaxChunkBytes) return corrupt("decode chunk", "chunk too large");
  if (xxh3(c.data) != c.xxh3) {
    return corrupt("verify chunk", "chunk " + std::to_string(c.seq) + " at stream offset " +
                                       std::to_string(c.offset) + ": XXH3 mismatch");
  }
  return c;
}

void set_trailer(cp::Trailer::Builder b, const Trailer& t) {
  b.setChunks(t.chunks);
  b.setStreamBytes(t.stream_bytes);
  b.setStreamXxh3(t.stream_xxh3);
  b.setHeaderXxh3(t.header_xxh3);
  b.setFinishedUnixNs(t.finished_unix_ns);
  b.setPrecopyBytes(t.precopy_bytes);
  b.setStopcopyBytes(t.stopcopy_bytes);
  b.setFramesXxh3(t.frames_xxh3);
}

uint32_t le32(const std::byte* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
uint64_t le64(const std::byte* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

}  // namespace

uint64_t bulk_xxh3(std::span<const std::byte> data) {
#ifdef MDEVMIG_XXH3_DISPATCH
  const uint64_t h = XXH3_64bits_dispatch(data.data(), data.size());
  // The dispatched AVX2/AVX-512 code leaves the upper vector state dirty, which makes
  // every later SSE instruction of the process slow (measured: the SSE2 XXH3 of the
  // verify pass at a third of its speed): clear it.
  if (has_avx()) zero_upper();
  return h;
#else
  return XXH3_64bits(data.data(), data.size());
#endif
}

const char* channel_name(Channel c) {
  switch (c) {
    case Channel::kV2StopCopy:
      return "v2-stop-copy";
    case Channel::kV2PreCopy:
      return "v2-pre-copy";
    case Channel::kV1Region:
      return "v1-region";
    case Channel::kInvalid:
      break;
  }
  return "invalid";
}

const char* phase_name(Phase p) {
  switch (p) {
    case Phase::kPreCopy:
      return "pre-copy";
    case Phase::kStopCopy:
      return "stop-copy";
    case Phase::kInvalid:
      break;
  }
  return "invalid";
}

const char* error_code_name(ErrorCode c) {
  switch (c) {
    case ErrorCode::kIncompatible:
      return "incompatible";
    case ErrorCode::kCorrupt:
      return "corrupt";
    case ErrorCode::kDevice:
      return "device";
    case ErrorCode::kCancelled:
      return "cancelled";
    case ErrorCode::kInternal:
      return "internal";
    case ErrorCode::kInvalid:
      break;
  }
  return "invalid";
}

const char* wire_kind_name(WireMessage::Kind kind) {
  switch (kind) {
    case WireMessage::Kind::kHello:
      return "hello";
    case WireMessage::Kind::kChunk:
      return "chunk";
    case WireMessage::Kind::kGuestPages:
      return "guest-pages";
    case WireMessage::Kind::kSwitchover:
      return "switchover";
    case WireMessage::Kind::kDone:
      return "done";
    case WireMessage::Kind::kError:
      return "error";
    case WireMessage::Kind::kSync:
      return "sync";
    case WireMessage::Kind::kSynced:
      return "synced";
  }
  return "?";
}

// ---- preamble and framing -----------------------------------------------------------------

namespace {

// "save file format 1; this mdevmig reads format 2 (...)": what a file of another format
// is, and what to do about it.
std::string format_mismatch(uint32_t theirs) {
  return "save file format " + std::to_string(theirs) + "; this mdevmig reads format " +
         std::to_string(kFormatVersion) +
         (theirs < kFormatVersion
              ? " (an older mdevmig wrote it: restore it with that version)"
              : " (a newer mdevmig wrote it: restore it with that version or later)");
}

}  // namespace

std::array<std::byte, kPreambleBytes> encode_preamble(const Preamble& p) {
  std::array<std::byte, kPreambleBytes> out{};
  std::memcpy(out.data(), &kFileMagic, 8);
  std::memcpy(out.data() + 8, &p.format_version, 4);
  std::memcpy(out.data() + 12, &p.header_bytes, 4);
  std::memcpy(out.data() + 16, &p.header_xxh3, 8);
  return out;
}

Result<Preamble> decode_preamble(std::span<const std::byte> bytes) {
  constexpr const char* kOp = "read save-file preamble";
  if (bytes.size() < kPreambleBytes) {
    return corrupt(kOp, "file too short (" + std::to_string(bytes.size()) + " bytes)");
  }
  if (le64(bytes.data()) != kFileMagic) return corrupt(kOp, "not an mdevmig save file (bad magic)");
  Preamble p;
  p.format_version = le32(bytes.data() + 8);
  p.header_bytes = le32(bytes.data() + 12);
  p.header_xxh3 = le64(bytes.data() + 16);
  if (p.format_version != kFormatVersion)
    return Error::make_verdict(kIncompatibleErrno, kOp, format_mismatch(p.format_version));
  if (p.header_bytes == 0 || p.header_bytes > kMaxHeaderBytes || p.header_bytes % 8 != 0) {
    return corrupt(kOp, "header length " + std::to_string(p.header_bytes));
  }
  return p;
}

Result<std::optional<std::size_t>> frame_size(std::span<const std::byte> prefix,
                                              std::size_t max_bytes) {
  if (prefix.size() < 4) return std::optional<std::size_t>{};
  const uint64_t segments = uint64_t{le32(prefix.data())} + 1;
  if (segments > kMaxSegments) {
    return corrupt("read frame", std::to_string(segments) + " segments");
  }
  const std::size_t table = ((4 + 4 * segments) + 7) / 8 * 8;
  if (prefix.size() < table) return std::optional<std::size_t>{};
  uint64_t words = 0;
  for (uint64_t i = 0; i < segments; ++i) words += le32(prefix.data() + 4 + 4 * i);
  const uint64_t total = table + words * 8;
  if (words == 0 || total > max_bytes) {
    return corrupt("read frame", "message of " + std::to_string(total) + " bytes (limit " +
                                     std::to_string(max_bytes) + ")");
  }
  return std::optional<std::size_t>{static_cast<std::size_t>(total)};
}

// ---- encoder ---------------------------------------------------------------------------------

struct Encoder::Impl {
  // The first word is left for the segment table, the rest is the builder's first
  // segment; it must be zero before a builder uses it, and the builder's destructor
  // zeroes what it used.
  std::vector<::capnp::word> scratch;
  std::optional<::capnp::MallocMessageBuilder> builder;
  kj::Array<::capnp::word> fallback;

  explicit Impl(std::size_t bytes) : scratch(bytes / sizeof(::capnp::word) + 2) {}

  ::capnp::MallocMessageBuilder& fresh() {
    builder.reset();
    builder.emplace(kj::arrayPtr(scratch.data() + 1, scratch.size() - 1));
    return *builder;
  }

  std::span<const std::byte> finish() {
    auto segments = builder->getSegmentsForOutput();
    if (segments.size() == 1 && segments[0].begin() == scratch.data() + 1) {
      const uint32_t table[2] = {0, static_cast<uint32_t>(segments[0].size())};
      std::memcpy(scratch.data(), table, sizeof(table));
      return {reinterpret_cast<const std::byte*>(scratch.data()),
              (segments[0].size() + 1) * sizeof(::capnp::word)};
    }
    fallback = ::capnp::messageToFlatArray(segments);
    return {reinterpret_cast<const std::byte*>(fallback.begin()),
            fallback.size() * sizeof(::capnp::word)};
  }
};

Encoder::Encoder(std::size_t max_payload)
    : impl_(std::make_unique<Impl>(std::min(max_payload, kMaxChunkBytes) + (64u << 10))) {}
Encoder::~Encoder() = default;
Encoder::Encoder(Encoder&&) noexcept = default;
Encoder& Encoder::operator=(Encoder&&) noexcept = default;

std::span<const std::byte> Encoder::header(const FileHeader& h) {
  auto b = impl_->fresh().initRoot<cp::FileHeader>();
  b.setMagic(kFileMagic);
  b.setFormatVersion(h.format_version);
  b.setToolVersion(h.tool_version);
  set_identity(b.initDevice(), h.device);
  b.setChannel(static_cast<cp::Channel>(h.channel));
  b.setChunkSize(h.chunk_size);
  b.setCreatedUnixNs(h.created_unix_ns);
  b.setHostname(h.hostname);
  return impl_->finish();
}

void Encoder::note_chunk(std::span<const std::byte> frame, bool wire) {
  // Read the message back to find the data (no traversal of the data itself).
  kj::ArrayPtr<const ::capnp::word> words(reinterpret_cast<const ::capnp::word*>(frame.data()),
                                          frame.size() / sizeof(::capnp::word));
  ::capnp::FlatArrayMessageReader reader(words, options_for(frame.size()));
  auto chunk =
      wire ? reader.getRoot<cp::WireMessage>().getChunk() : reader.getRoot<cp::Frame>().getChunk();
  last_data_ = std_bytes(chunk.getData());
  last_xxh3_ = chunk.getXxh3();
}

std::span<const std::byte> Encoder::chunk_frame(uint64_t seq, uint64_t offset, Phase phase,
                                                std::span<const std::byte> data) {
  MDEVMIG_CHECK(data.size() <= kMaxChunkBytes);
  set_chunk(impl_->fresh().initRoot<cp::Frame>().initChunk(), seq, offset, phase, data);
  const auto out = impl_->finish();
  note_chunk(out, false);
  return out;
}

ChunkHead chunk_head(bool wire, uint64_t seq, uint64_t offset, Phase phase,
                     std::span<const std::byte> data) {
  MDEVMIG_CHECK(data.size() <= kMaxChunkBytes);
  ChunkHead h;
  h.xxh3 = xxh3(data);
  const uint64_t data_words = (data.size() + 7) / 8;
  h.pad = data_words * 8 - data.size();
  // Struct pointer: offset 0 (the struct follows), then data and pointer section sizes.
  auto struct_ptr = [](uint64_t data_sz, uint64_t ptrs) { return (data_sz << 32) | (ptrs << 48); };
  const uint64_t words[9] = {
      uint64_t{8 + data_words} << 32,  // segment table: 1 segment of N words
      struct_ptr(1, 1),                // root -> Frame / WireMessage
      uint64_t{wire ? 2u : 1u},        // union tag: chunk
      struct_ptr(4, 1),                // -> Chunk
      seq,
      offset,
      static_cast<uint64_t>(phase),
      h.xxh3,
      1u | (uint64_t{2} << 32) | (uint64_t{data.size()} << 35),  // -> Data: list of bytes
  };
  static_assert(sizeof(words) == ChunkHead::kBytes);
  std::memcpy(h.bytes.data(), words, sizeof(words));
  return h;
}

std::span<const std::byte> zero_pad(std::size_t pad) {
  static constexpr std::byte kZeros[8] = {};
  MDEVMIG_CHECK(pad < 8);
  return {kZeros, pad};
}

void hash_frame_without_data(void* state, std::span<const std::byte> frame,
                             std::span<const std::byte> data) {
  auto* st = static_cast<XXH3_state_t*>(state);
  const std::byte* b = frame.data();
  const std::byte* e = frame.data() + frame.size();
  if (data.empty() || data.data() < b || data.data() + data.size() > e) {
    XXH3_64bits_update(st, b, frame.size());
    return;
  }
  XXH3_64bits_update(st, b, static_cast<std::size_t>(data.data() - b));
  XXH3_64bits_update(st, data.data() + data.size(),
                     static_cast<std::size_t>(e - (data.data() + data.size())));
}

void hash_chunk_identity(void* state, uint64_t chunk_xxh3) {
  XXH3_64bits_update(static_cast<XXH3_state_t*>(state), &chunk_xxh3, sizeof(chunk_xxh3));
}

std::span<const std::byte> Encoder::trailer_frame(const Trailer& t) {
  set_trailer(impl_->fresh().initRoot<cp::Frame>().initTrailer(), t);
  return impl_->finish();
}

std::span<const std::byte> Encoder::wire_hello(const WireHello& h) {
  auto b = impl_->fresh().initRoot<cp::WireMessage>().initHello();
  b.setMagic(kWireMagic);
  b.setProtocolVersion(h.protocol_version);
  b.setRole(static_cast<cp::Role>(h.role));
  b.setToolVersion(h.tool_version);
  set_identity(b.initDevice(), h.device);
  b.setChannel(static_cast<cp::Channel>(h.channel));
  b.setGuestMemBytes(h.guest_mem_bytes);
  b.setGuestIova(h.guest_iova);
  b.setPageSize(h.page_size);
  b.setPrecopySync(h.precopy_sync);
  return impl_->finish();
}

std::span<const std::byte> Encoder::wire_chunk(uint64_t seq, uint64_t offset, Phase phase,
                                               std::span<const std::byte> data) {
  MDEVMIG_CHECK(data.size() <= kMaxChunkBytes);
  set_chunk(impl_->fresh().initRoot<cp::WireMessage>().initChunk(), seq, offset, phase, data);
  const auto out = impl_->finish();
  note_chunk(out, true);
  return out;
}

std::span<const std::byte> Encoder::wire_guest_pages(const WireGuestPages& g) {
  MDEVMIG_CHECK(g.data.size() <= kMaxChunkBytes);
  auto b = impl_->fresh().initRoot<cp::WireMessage>().initGuestPages();
  b.setIteration(g.iteration);
  auto runs = b.initRuns(static_cast<unsigned>(g.runs.size()));
  for (unsigned i = 0; i < g.runs.size(); ++i) {
    runs[i].setFirst(g.runs[i].first);
    runs[i].setCount(g.runs[i].count);
  }
  b.setData(kj_bytes(g.data));
  b.setXxh3(xxh3(g.data));
  return impl_->finish();
}

std::span<const std::byte> Encoder::wire_switchover(const WireSwitchover& s) {
  auto b = impl_->fresh().initRoot<cp::WireMessage>().initSwitchover();
  b.setIterations(s.iterations);
  b.setPrecopyBytes(s.precopy_bytes);
  b.setReason(s.reason);
  return impl_->finish();
}

std::span<const std::byte> Encoder::wire_done(const WireDone& d) {
  auto b = impl_->fresh().initRoot<cp::WireMessage>().initDone();
  b.setChunks(d.chunks);
  b.setStreamBytes(d.stream_bytes);
  b.setStreamXxh3(d.stream_xxh3);
  b.setGuestPagesSent(d.guest_pages_sent);
  return impl_->finish();
}

std::span<const std::byte> Encoder::wire_error(ErrorCode code, std::string_view message) {
  auto b = impl_->fresh().initRoot<cp::WireMessage>().initError();
  b.setCode(static_cast<cp::ErrorCode>(code));
  b.setMessage(std::string(message.substr(0, kMaxText)));
  return impl_->finish();
}

std::span<const std::byte> Encoder::wire_sync(const WireSync& s) {
  auto b = impl_->fresh().initRoot<cp::WireMessage>().initSync();
  b.setSeq(s.seq);
  return impl_->finish();
}

std::span<const std::byte> Encoder::wire_synced(const WireSynced& s) {
  auto b = impl_->fresh().initRoot<cp::WireMessage>().initSynced();
  b.setSeq(s.seq);
  b.setLoadedBytes(s.loaded_bytes);
  b.setLoadSeconds(s.load_s);
  b.setFinishSeconds(s.finish_s);
  return impl_->finish();
}

// ---- decoders ----------------------------------------------------------------------------------

Result<FileHeader> decode_header(std::span<const std::byte> bytes) {
  // The header is small and its values are copied out: an aligned copy is cheap.
  std::vector<::capnp::word> aligned((bytes.size() + 7) / 8);
  if (!bytes.empty()) std::memcpy(aligned.data(), bytes.data(), bytes.size());
  std::span<const std::byte> in(reinterpret_cast<const std::byte*>(aligned.data()), bytes.size());
  constexpr const char* kOp = "decode save-file header";
  return with_root<cp::FileHeader>(in, kOp, [](cp::FileHeader::Reader r) -> Result<FileHeader> {
    if (r.getMagic() != kFileMagic) return corrupt(kOp, "bad magic");
    FileHeader h;
    h.format_version = r.getFormatVersion();
    if (h.format_version != kFormatVersion) {
      return Error::make_verdict(kIncompatibleErrno, kOp, format_mismatch(h.format_version));
    }
    h.tool_version = MDEVMIG_TRY(text(r.getToolVersion(), "toolVersion"));
    if (!r.hasDevice()) return corrupt(kOp, "no device identity");
    h.device = MDEVMIG_TRY(get_identity(r.getDevice()));
    h.channel = static_cast<Channel>(r.getChannel());
    if (!enum_in(h.channel, Channel::kV1Region)) {
      return corrupt(kOp, "invalid channel " + std::to_string(static_cast<int>(h.channel)));
    }
    h.chunk_size = r.getChunkSize();
    if (h.chunk_size == 0 || h.chunk_size > kMaxChunkBytes) {
      return corrupt(kOp, "chunk size " + std::to_string(h.chunk_size));
    }
    h.created_unix_ns = r.getCreatedUnixNs();
    h.hostname = MDEVMIG_TRY(text(r.getHostname(), "hostname"));
    return h;
  });
}

Result<Frame> decode_frame(std::span<const std::byte> bytes) {
  constexpr const char* kOp = "decode save-file frame";
  return with_root<cp::Frame>(bytes, kOp, [](cp::Frame::Reader r) -> Result<Frame> {
    Frame f;
    switch (r.which()) {
      case cp::Frame::CHUNK:
        f.kind = Frame::Kind::kChunk;
        f.chunk = MDEVMIG_TRY(get_chunk(r.getChunk()));
        return f;
      case cp::Frame::TRAILER: {
        auto t = r.getTrailer();
        f.kind = Frame::Kind::kTrailer;
        f.trailer = Trailer{t.getChunks(),        t.getStreamBytes(),    t.getStreamXxh3(),
                            t.getHeaderXxh3(),    t.getFinishedUnixNs(), t.getPrecopyBytes(),
                            t.getStopcopyBytes(), t.getFramesXxh3()};
        return f;
      }
      default:
        return corrupt(kOp, "neither chunk nor trailer");
    }
  });
}

Result<WireMessage> decode_wire(std::span<const std::byte> bytes, uint32_t page_size) {
  constexpr const char* kOp = "decode wire message";
  return with_root<cp::WireMessage>(
      bytes, kOp, [&](cp::WireMessage::Reader r) -> Result<WireMessage> {
        WireMessage m;
        switch (r.which()) {
          case cp::WireMessage::HELLO: {
            auto h = r.getHello();
            m.kind = WireMessage::Kind::kHello;
            if (h.getMagic() != kWireMagic)
              return corrupt(kOp, "hello: bad magic (not an mdevmig peer)");
            m.hello.protocol_version = h.getProtocolVersion();
            if (m.hello.protocol_version != kProtocolVersion) {
              return Error::make_verdict(
                  kIncompatibleErrno, kOp,
                  "hello: the peer speaks protocol " + std::to_string(m.hello.protocol_version) +
                      "; this mdevmig speaks protocol " + std::to_string(kProtocolVersion) +
                      " (the peer's mdevmig is " +
                      (m.hello.protocol_version < kProtocolVersion ? "older" : "newer") +
                      ": run the same version on both ends)");
            }
            m.hello.role = static_cast<Role>(h.getRole());
            if (!enum_in(m.hello.role, Role::kDestination))
              return corrupt(kOp, "hello: invalid role");
            m.hello.tool_version = MDEVMIG_TRY(text(h.getToolVersion(), "toolVersion"));
            if (!h.hasDevice()) return corrupt(kOp, "hello: no device identity");
            m.hello.device = MDEVMIG_TRY(get_identity(h.getDevice()));
            m.hello.channel = static_cast<Channel>(h.getChannel());
            if (!enum_in(m.hello.channel, Channel::kV1Region))
              return corrupt(kOp, "hello: invalid channel");
            m.hello.guest_mem_bytes = h.getGuestMemBytes();
            m.hello.guest_iova = h.getGuestIova();
            m.hello.page_size = h.getPageSize();
            m.hello.precopy_sync = h.getPrecopySync();
            if (m.hello.guest_mem_bytes != 0 &&
                (m.hello.page_size == 0 || (m.hello.page_size & (m.hello.page_size - 1)) != 0 ||
                 m.hello.guest_mem_bytes % m.hello.page_size != 0)) {
              return corrupt(kOp, "hello: guest memory not in whole pages");
            }
            return m;
          }
          case cp::WireMessage::CHUNK:
            m.kind = WireMessage::Kind::kChunk;
            m.chunk = MDEVMIG_TRY(get_chunk(r.getChunk()));
            return m;
          case cp::WireMessage::GUEST_PAGES: {
            auto g = r.getGuestPages();
            m.kind = WireMessage::Kind::kGuestPages;
            if (page_size == 0) return corrupt(kOp, "guest pages without guest memory");
            m.guest_pages.iteration = g.getIteration();
            m.guest_pages.data = std_bytes(g.getData());
            m.guest_pages.xxh3 = g.getXxh3();
            const uint64_t max_pages = m.guest_pages.data.size() / page_size;
            auto runs = g.getRuns();
            if (runs.size() > max_pages) return corrupt(kOp, "guest pages: more runs than pages");
            uint64_t pages = 0;
            for (auto run : runs) {
              const PageRun pr{run.getFirst(), run.getCount()};
              if (pr.count == 0 || pr.first + pr.count < pr.first) {
                return corrupt(kOp, "guest pages: invalid run");
              }
              pages += pr.count;
              if (pages > max_pages) return corrupt(kOp, "guest pages: runs exceed data");
              m.guest_pages.runs.push_back(pr);
            }
            if (pages * page_size != m.guest_pages.data.size()) {
              return corrupt(kOp, "guest pages: data length does not match the runs");
            }
            if (xxh3(m.guest_pages.data) != m.guest_pages.xxh3) {
              return corrupt(kOp, "guest pages: XXH3 mismatch");
            }
            return m;
          }
          case cp::WireMessage::SWITCHOVER: {
            auto s = r.getSwitchover();
            m.kind = WireMessage::Kind::kSwitchover;
            m.switchover.iterations = s.getIterations();
            m.switchover.precopy_bytes = s.getPrecopyBytes();
            m.switchover.reason = MDEVMIG_TRY(text(s.getReason(), "reason"));
            return m;
          }
          case cp::WireMessage::DONE: {
            auto d = r.getDone();
            m.kind = WireMessage::Kind::kDone;
            m.done = WireDone{d.getChunks(), d.getStreamBytes(), d.getStreamXxh3(),
                              d.getGuestPagesSent()};
            return m;
          }
          case cp::WireMessage::ERROR: {
            auto e = r.getError();
            m.kind = WireMessage::Kind::kError;
            m.error.code = static_cast<ErrorCode>(e.getCode());
            if (!enum_in(m.error.code, ErrorCode::kInternal))
              return corrupt(kOp, "error: invalid code");
            m.error.message = MDEVMIG_TRY(text(e.getMessage(), "message"));
            return m;
          }
          case cp::WireMessage::SYNC:
            m.kind = WireMessage::Kind::kSync;
            m.sync.seq = r.getSync().getSeq();
            return m;
          case cp::WireMessage::SYNCED: {
            auto s = r.getSynced();
            m.kind = WireMessage::Kind::kSynced;
            m.synced = WireSynced{s.getSeq(), s.getLoadedBytes(), s.getLoadSeconds(),
                                  s.getFinishSeconds()};
            // Seconds feed the source's downtime estimate: a NaN, infinity, negative or
            // absurd figure is a corrupt message, not a number to plan with.
            for (double v : {m.synced.load_s, m.synced.finish_s}) {
              if (!(v >= 0 && v <= kMaxSyncedSeconds)) return corrupt(kOp, "synced: bad seconds");
            }
            return m;
          }
          default:
            return corrupt(kOp, "unknown message kind");
        }
      });
}

}  // namespace mdevmig::schema
