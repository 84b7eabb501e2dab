#include "migration/engine/savefile.h"

#include <unistd.h>
#include <xxhash.h>

#include <chrono>
#include <cstring>

#include "migration/engine/identity.h"

namespace mdevmig::engine {
namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

uint64_t unix_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

std::string hostname() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0) return {};
  return buf;
}

std::shared_ptr<void> new_xxh3() {
  XXH3_state_t* st = XXH3_createState();
  MDEVMIG_CHECK(st != nullptr);
  XXH3_64bits_reset(st);
  return std::shared_ptr<void>(st, [](void* p) { XXH3_freeState(static_cast<XXH3_state_t*>(p)); });
}

Error corrupt(std::string op, std::string what) {
  return Error::make(schema::kCorruptErrno, std::move(op), std::move(what));
}

}  // namespace

Result<SaveReport> save_to_file(Channel& ch, const schema::DeviceIdentity& id, int fd,
                                const SaveOptions& opt) {
  const auto t0 = Clock::now();
  SaveReport rep;
  rep.channel = ch.kind();
  schema::Encoder enc(opt.chunk_size);
  schema::FileHeader h;
  h.tool_version = kToolVersion;
  h.device = id;
  h.channel = ch.kind();
  h.chunk_size = static_cast<uint32_t>(opt.chunk_size);
  h.created_unix_ns = unix_ns();
  h.hostname = hostname();
  const auto hspan = enc.header(h);
  const std::vector<std::byte> header(hspan.begin(), hspan.end());
  schema::Preamble pre;
  pre.header_bytes = static_cast<uint32_t>(header.size());
  pre.header_xxh3 = XXH3_64bits(header.data(), header.size());

  io::IoOptions fio = opt.file_io;
  if (fio.name.empty()) fio.name = "save file";
  io::Writer out = MDEVMIG_TRY(io::Writer::create(fd, 0, fio));
  const auto preamble = schema::encode_preamble(pre);
  MDEVMIG_TRY(out.write(preamble));
  MDEVMIG_TRY(out.write(header));

  auto hash = new_xxh3();
  auto* st = static_cast<XXH3_state_t*>(hash.get());
  auto frames_hash = new_xxh3();
  auto* fst = static_cast<XXH3_state_t*>(frames_hash.get());
  auto body = [&]() -> Result<void> {
    MDEVMIG_TRY(ch.start_save(false));
    for (;;) {
      auto data = MDEVMIG_TRY(ch.read(opt.chunk_size));
      if (data.empty()) break;
      // The frame goes out as head, data, padding: the data is copied once, into the
      // writer's slot, as a plain copy would.
      const schema::ChunkHead head = schema::chunk_head(false, rep.chunks, rep.stream_bytes, schema::Phase::kStopCopy, data);
      const auto pad = schema::zero_pad(head.pad);
      schema::hash_chunk_identity(st, head.xxh3);
      XXH3_64bits_update(fst, head.bytes.data(), head.bytes.size());
      XXH3_64bits_update(fst, pad.data(), pad.size());
      MDEVMIG_TRY(out.write(head.bytes));
      MDEVMIG_TRY(out.write(data));
      MDEVMIG_TRY(out.write(pad));
      ++rep.chunks;
      rep.stream_bytes += data.size();
      if (opt.progress) opt.progress(rep.stream_bytes);
    }
    MDEVMIG_TRY(ch.finish_save(opt.leave_running));
    return ok();
  };
  if (auto r = body(); !r.ok()) {
    Error e = std::move(r).error();
    e.context += " (device state " + ch.state_name() + ")";
    return with_recovery(std::move(e), ch.recover());
  }
  rep.stream_xxh3 = XXH3_64bits_digest(st);
  schema::Trailer t;
  t.chunks = rep.chunks;
  t.stream_bytes = rep.stream_bytes;
  t.stream_xxh3 = rep.stream_xxh3;
  t.header_xxh3 = pre.header_xxh3;
  t.finished_unix_ns = unix_ns();
  t.stopcopy_bytes = rep.stream_bytes;
  t.frames_xxh3 = XXH3_64bits_digest(fst);
  MDEVMIG_TRY(out.write(enc.trailer_frame(t)));
  MDEVMIG_TRY(out.flush());
  rep.file_bytes = out.queued_bytes();
  rep.seconds = since(t0);
  return rep;
}

// ---- reading ----------------------------------------------------------------------------

FileScanner::FileScanner(io::Reader reader, std::string name)
    : reader_(std::make_unique<io::Reader>(std::move(reader))),
      frames_(std::make_unique<io::FrameReader>(*reader_, schema::kMaxFrameBytes)),
      name_(std::move(name)), hash_(new_xxh3()), frames_hash_(new_xxh3()) {}

Result<FileScanner> FileScanner::open(int fd, io::IoOptions io, ScanChecks checks) {
  if (io.name.empty()) io.name = "save file";
  FileScanner s(MDEVMIG_TRY(io::Reader::create(fd, 0, io)), io.name);
  s.checks_ = checks;
  std::byte pre[schema::kPreambleBytes];
  const std::size_t got = MDEVMIG_TRY(s.reader_->read_full(pre));
  s.preamble_ = MDEVMIG_TRY(schema::decode_preamble(std::span(pre, got)));
  std::vector<std::byte> header(s.preamble_.header_bytes);
  const std::size_t hgot = MDEVMIG_TRY(s.reader_->read_full(header));
  if (hgot != header.size()) return corrupt("read save-file header", "file ends inside the header (truncated)");
  if (XXH3_64bits(header.data(), header.size()) != s.preamble_.header_xxh3) {
    return corrupt("read save-file header", "header XXH3 mismatch");
  }
  s.header_ = MDEVMIG_TRY(schema::decode_header(header));
  s.file_bytes_ = schema::kPreambleBytes + header.size();
  return s;
}

Result<std::optional<schema::ChunkView>> FileScanner::next_chunk() {
  if (done_) return std::optional<schema::ChunkView>{};
  const std::string at = " (chunk " + std::to_string(seq_) + ", file byte " + std::to_string(file_bytes_) + ")";
  auto bytes = frames_->next();
  if (!bytes.ok()) return std::move(bytes.error()).add_context(name_ + at);
  if (bytes->empty()) return corrupt("read save file", "file ends before the trailer (truncated)" + at);
  auto frame = schema::decode_frame(*bytes);
  if (!frame.ok()) return std::move(frame.error()).add_context(name_ + at);
  file_bytes_ += bytes->size();
  auto* st = static_cast<XXH3_state_t*>(hash_.get());
  auto* fst = static_cast<XXH3_state_t*>(frames_hash_.get());
  if (frame->kind == schema::Frame::Kind::kChunk) {
    const schema::ChunkView& c = frame->chunk;
    if (c.seq != seq_) return corrupt("read save file", "chunk " + std::to_string(c.seq) + " out of sequence" + at);
    if (c.offset != stream_bytes_) return corrupt("read save file", "chunk offset " + std::to_string(c.offset) + at);
    if (c.data.empty() || c.data.size() > header_.chunk_size) {
      return corrupt("read save file", "chunk of " + std::to_string(c.data.size()) + " bytes" + at);
    }
    if (checks_.stream_xxh3) schema::hash_chunk_identity(st, c.xxh3);
    if (checks_.frames_xxh3) schema::hash_frame_without_data(fst, *bytes, c.data);
    ++seq_;
    stream_bytes_ += c.data.size();
    (c.phase == schema::Phase::kPreCopy ? precopy_bytes_ : stopcopy_bytes_) += c.data.size();
    return std::optional<schema::ChunkView>(c);
  }
  trailer_ = frame->trailer;
  const schema::Trailer& t = trailer_;
  if (t.chunks != seq_ || t.stream_bytes != stream_bytes_ || t.precopy_bytes != precopy_bytes_ ||
      t.stopcopy_bytes != stopcopy_bytes_) {
    return corrupt("read save-file trailer", "totals do not match the chunks read" + at);
  }
  if (checks_.stream_xxh3 && t.stream_xxh3 != XXH3_64bits_digest(st)) {
    return corrupt("read save-file trailer", "stream XXH3 mismatch");
  }
  if (t.header_xxh3 != preamble_.header_xxh3) return corrupt("read save-file trailer", "header XXH3 mismatch");
  if (checks_.frames_xxh3 && t.frames_xxh3 != XXH3_64bits_digest(fst)) {
    return corrupt("read save-file trailer", "frame bytes XXH3 mismatch (damage outside the chunk data)");
  }
  auto more = MDEVMIG_TRY(reader_->next(1));
  if (!more.empty()) return corrupt("read save file", "data after the trailer");
  done_ = true;
  return std::optional<schema::ChunkView>{};
}

Result<FileSummary> verify_file(int fd, const std::function<void(const schema::ChunkView&)>& on_chunk) {
  FileScanner s = MDEVMIG_TRY(FileScanner::open(fd));
  FileSummary sum;
  sum.preamble = s.preamble();
  sum.header = s.header();
  for (;;) {
    auto c = MDEVMIG_TRY(s.next_chunk());
    if (!c) break;
    sum.chunks.push_back({c->seq, c->offset, c->data.size(), c->xxh3, c->phase});
    if (on_chunk) on_chunk(*c);
  }
  sum.trailer = s.trailer();
  sum.file_bytes = s.file_bytes();
  return sum;
}

Result<RestoreReport> restore_from_file(Channel& ch, const schema::DeviceIdentity& target, int fd,
                                        const RestoreOptions& opt) {
  RestoreReport rep;
  uint64_t total = 0;
  auto t0 = Clock::now();
  if (opt.verify_first) {
    // Pass 1: the whole file, no device.
    FileSummary sum = MDEVMIG_TRY(verify_file(fd));
    total = sum.trailer.stream_bytes;
    rep.verify_seconds = since(t0);
  }
  // After a verified pass 1 the second pass checks each chunk (enough to load only what
  // was verified); a single pass also checks every frame's bytes.
  ScanChecks checks;
  checks.frames_xxh3 = !opt.verify_first;
  FileScanner s = MDEVMIG_TRY(FileScanner::open(fd, {4, 4u << 20, ""}, checks));
  rep.header = s.header();
  MDEVMIG_TRY(check_compatible(s.header().device, target));
  t0 = Clock::now();
  auto body = [&]() -> Result<void> {
    MDEVMIG_TRY(ch.start_resume());
    for (;;) {
      auto c = MDEVMIG_TRY(s.next_chunk());
      if (!c) break;
      MDEVMIG_TRY(ch.write(c->data));
      ++rep.chunks;
      rep.stream_bytes += c->data.size();
      if (opt.progress) opt.progress(rep.stream_bytes, total);
    }
    MDEVMIG_TRY(ch.finish_resume(opt.run));
    return ok();
  };
  if (auto r = body(); !r.ok()) {
    Error e = std::move(r).error();
    e.context += " (device state " + ch.state_name() + ")";
    return with_recovery(std::move(e), ch.recover());
  }
  rep.restore_seconds = since(t0);
  return rep;
}

}  // namespace mdevmig::engine
