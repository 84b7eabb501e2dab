// The save-file container and wire protocol codecs: round trips, and hostile input
// (truncation at every byte, bit flips, bad magic and versions, absurd framing,
// traversal-limit bombs). A decoder either fails with a corrupt/incompatible error or
// returns a value; it never crashes (this binary also runs under ASan+UBSan).
#include <cmath>
#include <cstring>
#include <vector>

#include <gtest/gtest.h>

#include "migration/schema/codec.h"

namespace mdevmig::schema {
namespace {

// Decoders need 8-byte aligned input, as the frame reader provides it.
class Aligned {
 public:
  explicit Aligned(std::span<const std::byte> b) : words_((b.size() + 7) / 8), size_(b.size()) {
    if (!b.empty()) std::memcpy(words_.data(), b.data(), b.size());
  }
  std::span<const std::byte> bytes() const {
    return {reinterpret_cast<const std::byte*>(words_.data()), size_};
  }
  std::byte* data() { return reinterpret_cast<std::byte*>(words_.data()); }

 private:
  std::vector<uint64_t> words_;
  std::size_t size_;
};

std::vector<std::byte> copy(std::span<const std::byte> s) { return {s.begin(), s.end()}; }

DeviceIdentity identity() {
  DeviceIdentity d;
  d.uuid = "0c9f4a1e-7d3b-4b8a-9e2f-5a6b7c8d9e0f";
  d.sysfs_path = "/sys/bus/mdev/devices/" + d.uuid;
  d.device_api = "vfio-pci";
  d.vfio_flags = 2;
  d.migration_flags = 3;
  d.pci_vendor = 0x1de7;
  d.pci_device = 0x6d67;
  d.pci_sub_vendor = 0x1de7;
  d.pci_sub_device = 1;
  d.region_sizes = {0x1000, 0, 1u << 26, 0, 0, 0, 0, 256, 0, 0x101000};
  d.compat = Compat{1, 1, 3, 4096, 1u << 26};
  return d;
}

FileHeader header() {
  FileHeader h;
  h.tool_version = "mdevmig test";
  h.device = identity();
  h.channel = Channel::kV1Region;
  h.chunk_size = 1u << 20;
  h.created_unix_ns = 1234567890123;
  h.hostname = "lab";
  return h;
}

std::vector<std::byte> payload(std::size_t n) {
  std::vector<std::byte> d(n);
  for (std::size_t i = 0; i < n; ++i) d[i] = static_cast<std::byte>(i * 7 + 3);
  return d;
}

bool failed_as_input_error(const Error& e) {
  return e.errnum == kCorruptErrno || e.errnum == kIncompatibleErrno;
}

TEST(Schema, HeaderRoundTrips) {
  Encoder enc;
  const FileHeader h = header();
  auto bytes = copy(enc.header(h));
  auto back = decode_header(bytes);
  ASSERT_TRUE(back.ok()) << back.error().message();
  EXPECT_EQ(*back, h);
  // Without the compat descriptor too (a device that is not ours).
  FileHeader h2 = h;
  h2.device.compat.reset();
  auto back2 = decode_header(copy(enc.header(h2)));
  ASSERT_TRUE(back2.ok());
  EXPECT_EQ(*back2, h2);
}

TEST(Schema, ChunkAndTrailerFramesRoundTrip) {
  Encoder enc(4096);
  const auto data = payload(10000);  // larger than the scratch: the multi-segment path
  Aligned a(enc.chunk_frame(7, 123456, Phase::kPreCopy, data));
  auto f = decode_frame(a.bytes());
  ASSERT_TRUE(f.ok()) << f.error().message();
  ASSERT_EQ(f->kind, Frame::Kind::kChunk);
  EXPECT_EQ(f->chunk.seq, 7u);
  EXPECT_EQ(f->chunk.offset, 123456u);
  EXPECT_EQ(f->chunk.phase, Phase::kPreCopy);
  ASSERT_EQ(f->chunk.data.size(), data.size());
  EXPECT_EQ(std::memcmp(f->chunk.data.data(), data.data(), data.size()), 0);

  const Trailer t{5, 99, 0xabc, 0xdef, 42, 10, 89, 7};
  Aligned b(enc.trailer_frame(t));
  auto g = decode_frame(b.bytes());
  ASSERT_TRUE(g.ok());
  ASSERT_EQ(g->kind, Frame::Kind::kTrailer);
  EXPECT_EQ(g->trailer, t);
}

TEST(Schema, HandWrittenChunkHeadsDecodeLikeEncodedChunks) {
  Encoder enc;
  for (std::size_t n : {1u, 7u, 8u, 9u, 4096u, 100001u}) {
    const auto data = payload(n);
    for (bool wire : {false, true}) {
      const ChunkHead h = chunk_head(wire, 5, 77, Phase::kPreCopy, data);
      std::vector<std::byte> msg(h.bytes.begin(), h.bytes.end());
      msg.insert(msg.end(), data.begin(), data.end());
      const auto pad = zero_pad(h.pad);
      msg.insert(msg.end(), pad.begin(), pad.end());
      auto size = frame_size(msg, kMaxFrameBytes);
      ASSERT_TRUE(size.ok() && size->has_value());
      EXPECT_EQ(**size, msg.size());
      Aligned a(msg);
      const ChunkView* c = nullptr;
      Result<Frame> f = Error::make(EIO, "");
      Result<WireMessage> w = Error::make(EIO, "");
      if (wire) {
        w = decode_wire(a.bytes(), 0);
        ASSERT_TRUE(w.ok()) << w.error().message();
        ASSERT_EQ(w->kind, WireMessage::Kind::kChunk);
        c = &w->chunk;
      } else {
        f = decode_frame(a.bytes());
        ASSERT_TRUE(f.ok()) << f.error().message();
        ASSERT_EQ(f->kind, Frame::Kind::kChunk);
        c = &f->chunk;
      }
      EXPECT_EQ(c->seq, 5u);
      EXPECT_EQ(c->offset, 77u);
      EXPECT_EQ(c->phase, Phase::kPreCopy);
      EXPECT_EQ(c->xxh3, h.xxh3);
      ASSERT_EQ(c->data.size(), n);
      EXPECT_EQ(std::memcmp(c->data.data(), data.data(), n), 0);
      // The same message as the builder makes.
      const auto built = wire ? enc.wire_chunk(5, 77, Phase::kPreCopy, data)
                              : enc.chunk_frame(5, 77, Phase::kPreCopy, data);
      EXPECT_TRUE(std::equal(built.begin(), built.end(), msg.begin(), msg.end()))
          << n << (wire ? " wire" : " file");
    }
  }
}

TEST(Schema, FrameSizeComesFromTheSegmentTable) {
  Encoder enc;
  const auto data = payload(100);
  auto bytes = copy(enc.chunk_frame(0, 0, Phase::kStopCopy, data));
  for (std::size_t n = 0; n < 8; ++n) {
    auto s = frame_size(std::span(bytes).first(n), kMaxFrameBytes);
    ASSERT_TRUE(s.ok());
    EXPECT_FALSE(s->has_value()) << n;
  }
  auto s = frame_size(bytes, kMaxFrameBytes);
  ASSERT_TRUE(s.ok() && s->has_value());
  EXPECT_EQ(**s, bytes.size());
  // Over the limit, too many segments, an empty message: corrupt.
  EXPECT_FALSE(frame_size(bytes, bytes.size() - 8).ok());
  std::byte bad[8] = {};
  bad[0] = std::byte{0xff};
  bad[1] = std::byte{0xff};
  bad[2] = std::byte{0xff};
  bad[3] = std::byte{0xff};
  EXPECT_EQ(frame_size(bad, kMaxFrameBytes).error().errnum, kCorruptErrno);
  std::byte empty[8] = {};
  EXPECT_FALSE(frame_size(empty, kMaxFrameBytes).ok());
}

TEST(Schema, PreambleChecksMagicVersionAndLength) {
  Preamble p;
  p.header_bytes = 512;
  p.header_xxh3 = 77;
  auto bytes = encode_preamble(p);
  auto back = decode_preamble(bytes);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->header_bytes, 512u);
  EXPECT_EQ(back->header_xxh3, 77u);
  for (std::size_t n = 0; n < kPreambleBytes; ++n) {
    EXPECT_EQ(decode_preamble(std::span(bytes).first(n)).error().errnum, kCorruptErrno);
  }
  auto magic = bytes;
  magic[3] ^= std::byte{1};
  EXPECT_EQ(decode_preamble(magic).error().errnum, kCorruptErrno);
  // Another format, older or newer: incompatible (exit 4), and the message says which
  // format the file has and which one this tool reads.
  for (uint32_t other : {kFormatVersion - 1, kFormatVersion + 1}) {
    Preamble v = p;
    v.format_version = other;
    const auto e = decode_preamble(encode_preamble(v));
    ASSERT_FALSE(e.ok());
    EXPECT_EQ(e.error().errnum, kIncompatibleErrno);
    EXPECT_NE(
        e.error().message().find("save file format " + std::to_string(other) +
                                 "; this mdevmig reads format " + std::to_string(kFormatVersion)),
        std::string::npos)
        << e.error().message();
  }
  for (uint32_t len : {0u, 7u, uint32_t(kMaxHeaderBytes + 8)}) {
    Preamble bad = p;
    bad.header_bytes = len;
    EXPECT_EQ(decode_preamble(encode_preamble(bad)).error().errnum, kCorruptErrno) << len;
  }
}

TEST(Schema, HeaderTruncatedAtEveryByteFails) {
  Encoder enc;
  auto bytes = copy(enc.header(header()));
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    auto r = decode_header(std::span(bytes).first(n));
    ASSERT_FALSE(r.ok()) << "accepted a header cut at " << n;
    EXPECT_TRUE(failed_as_input_error(r.error())) << r.error().message();
  }
}

TEST(Schema, HeaderBitFlipsNeverCrash) {
  Encoder enc;
  auto bytes = copy(enc.header(header()));
  int rejected = 0;
  for (std::size_t bit = 0; bit < bytes.size() * 8; ++bit) {
    auto b = bytes;
    b[bit / 8] ^= std::byte(1u << (bit % 8));
    auto r = decode_header(b);
    if (!r.ok()) {
      EXPECT_TRUE(failed_as_input_error(r.error())) << r.error().message();
      ++rejected;
    }
  }
  // Flips in text or numbers decode to other values (the preamble's XXH3 catches those);
  // flips in pointers, magic, enums and framing are refused here.
  EXPECT_GT(rejected, 0);
}

TEST(Schema, FrameTruncationAndBitFlipsAreCorrupt) {
  Encoder enc;
  const auto data = payload(300);
  auto bytes = copy(enc.chunk_frame(3, 900, Phase::kStopCopy, data));
  for (std::size_t n = 0; n < bytes.size(); n += 1) {
    Aligned a{std::span(bytes).first(n)};
    auto r = decode_frame(a.bytes());
    ASSERT_FALSE(r.ok()) << n;
    EXPECT_EQ(r.error().errnum, kCorruptErrno);
  }
  // Every single-bit flip: refused, or (a flip in seq/offset) a chunk whose data still
  // matches its XXH3; never a chunk with other data.
  for (std::size_t bit = 0; bit < bytes.size() * 8; ++bit) {
    Aligned a(bytes);
    a.data()[bit / 8] ^= std::byte(1u << (bit % 8));
    auto r = decode_frame(a.bytes());
    if (!r.ok()) {
      EXPECT_EQ(r.error().errnum, kCorruptErrno);
      continue;
    }
    if (r->kind != Frame::Kind::kChunk) continue;
    ASSERT_EQ(r->chunk.data.size(), data.size()) << bit;
    EXPECT_EQ(std::memcmp(r->chunk.data.data(), data.data(), data.size()), 0) << bit;
  }
}

TEST(Schema, WireMessagesRoundTrip) {
  Encoder enc;
  WireHello h;
  h.role = Role::kSource;
  h.tool_version = "t";
  h.device = identity();
  h.channel = Channel::kV2PreCopy;
  h.guest_mem_bytes = 1u << 24;
  h.guest_iova = 1u << 30;
  h.page_size = 4096;
  h.precopy_sync = true;
  {
    Aligned a(enc.wire_hello(h));
    auto m = decode_wire(a.bytes(), 0);
    ASSERT_TRUE(m.ok()) << m.error().message();
    ASSERT_EQ(m->kind, WireMessage::Kind::kHello);
    EXPECT_EQ(m->hello, h);
  }
  {
    const auto data = payload(4096 * 3);
    WireGuestPages g;
    g.iteration = 4;
    g.runs = {{10, 2}, {100, 1}};
    g.data = data;
    Aligned a(enc.wire_guest_pages(g));
    auto m = decode_wire(a.bytes(), 4096);
    ASSERT_TRUE(m.ok()) << m.error().message();
    ASSERT_EQ(m->kind, WireMessage::Kind::kGuestPages);
    EXPECT_EQ(m->guest_pages.iteration, 4u);
    EXPECT_EQ(m->guest_pages.runs, g.runs);
    EXPECT_EQ(std::memcmp(m->guest_pages.data.data(), data.data(), data.size()), 0);
    // The same message against a different page size, or without guest memory: refused.
    EXPECT_EQ(decode_wire(a.bytes(), 8192).error().errnum, kCorruptErrno);
    EXPECT_EQ(decode_wire(a.bytes(), 0).error().errnum, kCorruptErrno);
  }
  {
    Aligned a(enc.wire_switchover({3, 999, "converged"}));
    auto m = decode_wire(a.bytes(), 0);
    ASSERT_TRUE(m.ok());
    EXPECT_EQ(m->switchover.iterations, 3u);
    EXPECT_EQ(m->switchover.reason, "converged");
  }
  {
    Aligned a(enc.wire_done({4, 5, 6, 7}));
    auto m = decode_wire(a.bytes(), 0);
    ASSERT_TRUE(m.ok());
    EXPECT_EQ(m->done.stream_xxh3, 6u);
    EXPECT_EQ(m->done.guest_pages_sent, 7u);
  }
  {
    Aligned a(enc.wire_sync({9}));
    auto m = decode_wire(a.bytes(), 0);
    ASSERT_TRUE(m.ok());
    ASSERT_EQ(m->kind, WireMessage::Kind::kSync);
    EXPECT_EQ(m->sync.seq, 9u);
  }
  {
    Aligned a(enc.wire_synced({9, 1u << 20, 0.004, 0.125}));
    auto m = decode_wire(a.bytes(), 0);
    ASSERT_TRUE(m.ok());
    ASSERT_EQ(m->kind, WireMessage::Kind::kSynced);
    EXPECT_EQ(m->synced.seq, 9u);
    EXPECT_EQ(m->synced.loaded_bytes, 1u << 20);
    EXPECT_DOUBLE_EQ(m->synced.load_s, 0.004);
    EXPECT_DOUBLE_EQ(m->synced.finish_s, 0.125);
  }
  {
    Aligned a(enc.wire_error(ErrorCode::kIncompatible, "type 3 vs 2"));
    auto m = decode_wire(a.bytes(), 0);
    ASSERT_TRUE(m.ok());
    EXPECT_EQ(m->error.code, ErrorCode::kIncompatible);
    EXPECT_EQ(m->error.message, "type 3 vs 2");
  }
  {
    const auto data = payload(64);
    Aligned a(enc.wire_chunk(1, 64, Phase::kPreCopy, data));
    auto m = decode_wire(a.bytes(), 0);
    ASSERT_TRUE(m.ok());
    EXPECT_EQ(m->chunk.offset, 64u);
  }
}

TEST(Schema, WireHelloVersionRoleAndEnumsAreChecked) {
  Encoder enc;
  WireHello h;
  h.role = Role::kDestination;
  h.device = identity();
  h.channel = Channel::kV1Region;
  for (uint32_t other : {kProtocolVersion - 1, kProtocolVersion + 1}) {
    h.protocol_version = other;
    Aligned v(enc.wire_hello(h));
    const auto e = decode_wire(v.bytes(), 0);
    ASSERT_FALSE(e.ok());
    EXPECT_EQ(e.error().errnum, kIncompatibleErrno);
    EXPECT_NE(e.error().message().find("the peer speaks protocol " + std::to_string(other) +
                                       "; this mdevmig speaks protocol " +
                                       std::to_string(kProtocolVersion)),
              std::string::npos)
        << e.error().message();
  }
  h.protocol_version = kProtocolVersion;
  h.role = Role::kInvalid;
  Aligned r(enc.wire_hello(h));
  EXPECT_EQ(decode_wire(r.bytes(), 0).error().errnum, kCorruptErrno);
  h.role = Role::kSource;
  h.channel = static_cast<Channel>(77);
  Aligned c(enc.wire_hello(h));
  EXPECT_EQ(decode_wire(c.bytes(), 0).error().errnum, kCorruptErrno);
  h.channel = Channel::kV1Region;
  h.guest_mem_bytes = 4097;
  h.page_size = 4096;
  Aligned g(enc.wire_hello(h));
  EXPECT_EQ(decode_wire(g.bytes(), 0).error().errnum, kCorruptErrno);
  Aligned e(enc.wire_error(ErrorCode::kInvalid, "x"));
  EXPECT_EQ(decode_wire(e.bytes(), 0).error().errnum, kCorruptErrno);
}

// The seconds of a synced message go into the source's downtime estimate: only finite,
// non-negative figures of at most an hour are accepted.
TEST(Schema, SyncedSecondsMustBeMeasurements) {
  Encoder enc;
  for (double bad :
       {-0.001, std::nan(""), double{INFINITY}, -double{INFINITY}, kMaxSyncedSeconds * 2}) {
    Aligned a(enc.wire_synced({1, 0, bad, 0.1}));
    auto r = decode_wire(a.bytes(), 0);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().errnum, kCorruptErrno);
    Aligned b(enc.wire_synced({1, 0, 0.1, bad}));
    EXPECT_EQ(decode_wire(b.bytes(), 0).error().errnum, kCorruptErrno) << bad;
  }
  Aligned ok(enc.wire_synced({1, 0, 0, kMaxSyncedSeconds}));
  EXPECT_TRUE(decode_wire(ok.bytes(), 0).ok());
}

// An older peer's hello has no precopySync (it never sends or answers syncs) and is
// read as false; the new field does not change the bytes of a hello without it.
TEST(Schema, AHelloWithoutPrecopySyncIsAnOlderPeer) {
  Encoder enc;
  WireHello h;
  h.role = Role::kDestination;
  h.device = identity();
  h.channel = Channel::kV1Region;
  const auto old_bytes = copy(enc.wire_hello(h));
  Aligned a(old_bytes);
  auto m = decode_wire(a.bytes(), 0);
  ASSERT_TRUE(m.ok());
  EXPECT_FALSE(m->hello.precopy_sync);
  h.precopy_sync = true;
  const auto new_bytes = copy(enc.wire_hello(h));
  EXPECT_EQ(new_bytes.size(), old_bytes.size()) << "the flag fits in the data section";
}

TEST(Schema, WireTruncationAndBitFlipsNeverCrash) {
  Encoder enc;
  WireHello h;
  h.role = Role::kSource;
  h.device = identity();
  h.channel = Channel::kV1Region;
  auto hello = copy(enc.wire_hello(h));
  const auto data = payload(4096 * 2);
  WireGuestPages gp;
  gp.runs = {{1, 1}, {5, 1}};
  gp.data = data;
  auto pages = copy(enc.wire_guest_pages(gp));
  for (const auto* msg : {&hello, &pages}) {
    for (std::size_t n = 0; n < msg->size(); ++n) {
      Aligned a{std::span(*msg).first(n)};
      auto r = decode_wire(a.bytes(), 4096);
      ASSERT_FALSE(r.ok()) << n;
      EXPECT_TRUE(failed_as_input_error(r.error()));
    }
    for (std::size_t bit = 0; bit < msg->size() * 8; bit += 3) {
      Aligned a(*msg);
      a.data()[bit / 8] ^= std::byte(1u << (bit % 8));
      auto r = decode_wire(a.bytes(), 4096);
      if (!r.ok()) {
        EXPECT_TRUE(failed_as_input_error(r.error()));
      }
      if (r.ok() && r->kind == WireMessage::Kind::kGuestPages) {
        EXPECT_EQ(std::memcmp(r->guest_pages.data.data(), data.data(), data.size()), 0) << bit;
      }
    }
  }
}

// A list of zero-sized structs claiming 2^28 elements costs no bytes but, read naively,
// 2^28 iterations: the traversal limit (message size + a little) stops it.
TEST(Schema, TraversalLimitStopsZeroSizedListBombs) {
  Encoder enc;
  const auto data = payload(4096);
  WireGuestPages gp;
  gp.runs = {{1, 1}};
  gp.data = data;
  Aligned a(enc.wire_guest_pages(gp));
  auto* words = reinterpret_cast<uint64_t*>(a.data());
  const std::size_t n = a.bytes().size() / 8;
  // The runs list: an inline-composite list pointer of 2 words, and its tag (1 element
  // of 2 data words, no pointers).
  const uint64_t tag = (1ull << 2) | (2ull << 32);
  std::size_t tag_at = 0, ptr_at = 0;
  for (std::size_t i = 1; i < n; ++i) {
    if (words[i] == tag) tag_at = i;
  }
  ASSERT_NE(tag_at, 0u);
  for (std::size_t i = 1; i < tag_at; ++i) {
    if ((words[i] & 0xffffffff00000003ull) == (1ull | (7ull << 32) | (2ull << 35))) ptr_at = i;
  }
  ASSERT_NE(ptr_at, 0u);
  words[ptr_at] &= ~(~0ull << 35);           // word count 0
  words[tag_at] = (uint64_t{1} << 28) << 2;  // 2^28 elements of 0 words
  auto r = decode_wire(a.bytes(), 4096);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().errnum, kCorruptErrno) << r.error().message();
}

TEST(Schema, EnumNamesIncludeInvalid) {
  EXPECT_STREQ(channel_name(Channel::kInvalid), "invalid");
  EXPECT_STREQ(channel_name(static_cast<Channel>(9)), "invalid");
  EXPECT_STREQ(phase_name(Phase::kStopCopy), "stop-copy");
  EXPECT_STREQ(error_code_name(ErrorCode::kCorrupt), "corrupt");
}

}  // namespace
}  // namespace mdevmig::schema
