#include "tools/cli/inspect_damaged.h"

#include <xxhash.h>

#include <cstdio>
#include <cstring>
#include <memory>

#include "base/check.h"

namespace mdevmig::cli {
namespace {

// "1af4:1052", as the text output spells it.
std::string pci_pair(uint16_t vendor, uint16_t device) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%04x:%04x", vendor, device);
  return buf;
}

// The error text without the file name a scanner put in front of it.
std::string reason(const Error& e, const std::string& file) {
  std::string m = e.verdict ? e.context : e.message();
  for (const std::string& prefix : {file + ": ", std::string("save file: ")}) {
    if (m.starts_with(prefix)) m = m.substr(prefix.size());
  }
  return m.empty() ? e.message() : m;
}

using HashState = std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)>;

// Preamble and header into `s`, with their problems. The file offset of the first frame,
// or nothing when what follows the header cannot be trusted.
std::optional<uint64_t> salvage_header(std::span<const std::byte> file, const std::string& name,
                                       Salvage& s) {
  auto pre = schema::decode_preamble(file.first(std::min(file.size(), schema::kPreambleBytes)));
  if (!pre.ok()) {
    s.preamble_problem = reason(pre.error(), name);
    return std::nullopt;  // not our file, another format, or no usable header length: nothing more
                          // to trust
  }
  s.preamble = *pre;
  const auto rest = file.subspan(schema::kPreambleBytes);
  if (rest.size() < pre->header_bytes) {
    s.header_problem = "the file ends inside the header (truncated)";
    return std::nullopt;
  }
  const auto hbytes = rest.first(pre->header_bytes);
  const bool sum_ok = XXH3_64bits(hbytes.data(), hbytes.size()) == pre->header_xxh3;
  auto h = schema::decode_header(hbytes);
  if (h.ok()) s.header = std::move(*h);
  if (!sum_ok) {
    s.header_problem = h.ok() ? "the header's XXH3 does not match (its fields are shown as read)"
                              : "the header's XXH3 does not match and it does not decode (" +
                                    reason(h.error(), name) + ")";
  } else if (!h.ok()) {
    s.header_problem = reason(h.error(), name);
  }
  return schema::kPreambleBytes + pre->header_bytes;
}

// The walk over the frames, and what it keeps for the trailer's checks: the totals and
// hashes over the chunks as read (as FileScanner keeps them).
struct Walk {
  uint64_t pos = 0;  // file offset of the next frame
  uint64_t precopy = 0, stopcopy = 0;
  HashState stream{XXH3_createState(), XXH3_freeState};
  HashState frames{XXH3_createState(), XXH3_freeState};
};

// The frames from w.pos on: each chunk with its problem into s.chunks, then s.trailer
// (w.pos just after it), or s.end_problem where the walk had to stop.
void salvage_frames(std::span<const std::byte> file, const std::string& name, Salvage& s, Walk& w) {
  uint64_t seq = 0, stream = 0;
  bool resync = false;  // after an undecodable chunk: take the next one's stream offset
  std::vector<uint64_t> aligned;
  while (w.pos < file.size()) {
    const auto at = file.subspan(w.pos);
    auto size =
        schema::frame_size(at.first(std::min<std::size_t>(at.size(), 8 + 4 * schema::kMaxSegments)),
                           schema::kMaxFrameBytes);
    if (!size.ok()) {
      s.end_problem = "file byte " + std::to_string(w.pos) + ": unreadable frame (" +
                      reason(size.error(), name) + "); the rest of the file cannot be walked";
      return;
    }
    if (!*size || **size > at.size()) {
      s.end_problem =
          "file byte " + std::to_string(w.pos) + ": the file ends inside a frame (truncated)";
      return;
    }
    aligned.assign(**size / 8 + 1, 0);
    std::memcpy(aligned.data(), at.data(), **size);
    const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(aligned.data()),
                                           **size);
    auto frame = schema::decode_frame(bytes);
    Salvage::Entry e{w.pos, **size, std::nullopt, {}};
    w.pos += **size;
    if (frame.ok() && frame->kind == schema::Frame::Kind::kTrailer) {
      s.trailer = frame->trailer;
      return;
    }
    if (!frame.ok()) {
      e.problem = reason(frame.error(), name);
      resync = true;
    } else {
      const schema::ChunkView& c = frame->chunk;
      e.chunk = engine::ChunkInfo{
          c.seq,
          c.offset,
          c.data.size(),
          c.xxh3,
          c.phase,
          e.file_offset + static_cast<uint64_t>(
                              c.data.data() - reinterpret_cast<const std::byte*>(aligned.data()))};
      if (c.seq != seq) {
        e.problem = "out of sequence (expected chunk " + std::to_string(seq) + ")";
      } else if (c.offset != stream && !resync) {
        e.problem =
            "stream offset " + std::to_string(c.offset) + ", expected " + std::to_string(stream);
      } else if (c.data.empty() || (s.header && c.data.size() > s.header->chunk_size)) {
        e.problem = std::to_string(c.data.size()) + " bytes of data (chunk size " +
                    (s.header ? std::to_string(s.header->chunk_size) : std::string("unknown")) +
                    ")";
      }
      schema::hash_chunk_identity(w.stream.get(), c.xxh3);
      schema::hash_frame_without_data(w.frames.get(), bytes, c.data);
      (c.phase == schema::Phase::kPreCopy ? w.precopy : w.stopcopy) += c.data.size();
      stream = c.offset + c.data.size();
      resync = false;
    }
    ++seq;
    s.chunks.push_back(std::move(e));
  }
}

// The trailer found, against the preamble and the chunks walked: its first disagreement.
std::string check_trailer(std::span<const std::byte> file, const Salvage& s, const Walk& w) {
  const auto& t = *s.trailer;
  const uint64_t precopy = w.precopy, stopcopy = w.stopcopy;
  if (t.chunks != s.chunks.size())
    return "says " + std::to_string(t.chunks) + " chunks, the file has " +
           std::to_string(s.chunks.size());
  if (t.header_xxh3 != s.preamble->header_xxh3) return "its header XXH3 is not the preamble's";
  if (w.pos != file.size()) return std::to_string(file.size() - w.pos) + " bytes after the trailer";
  // Its totals and hashes cover chunks that could not be read: nothing to compare.
  if (s.bad_chunks() > 0) return {};
  if (t.stream_bytes != precopy + stopcopy || t.precopy_bytes != precopy ||
      t.stopcopy_bytes != stopcopy) {
    auto totals = [](uint64_t all, uint64_t pre, uint64_t stop) {
      return std::to_string(all) + " bytes of stream, " + std::to_string(pre) + " pre-copy, " +
             std::to_string(stop) + " stop-copy";
    };
    return "its totals (" + totals(t.stream_bytes, t.precopy_bytes, t.stopcopy_bytes) +
           ") are not the chunks' (" + totals(precopy + stopcopy, precopy, stopcopy) + ")";
  }
  if (t.stream_xxh3 != XXH3_64bits_digest(w.stream.get()))
    return "its stream XXH3 does not match the chunks'";
  if (t.frames_xxh3 != XXH3_64bits_digest(w.frames.get()))
    return "its frame XXH3 does not match the frames (damage outside the chunk data)";
  return {};
}

}  // namespace

Salvage salvage(std::span<const std::byte> file, const std::string& name) {
  Salvage s;
  s.file_bytes = file.size();
  const auto first_frame = salvage_header(file, name, s);
  if (!first_frame) return s;
  Walk w;
  w.pos = *first_frame;
  MDEVMIG_CHECK(w.stream && w.frames, "XXH3_createState");
  XXH3_64bits_reset(w.stream.get());
  XXH3_64bits_reset(w.frames.get());
  salvage_frames(file, name, s, w);
  if (s.trailer) {
    s.trailer_problem = check_trailer(file, s, w);
  } else if (s.end_problem.empty()) {
    s.end_problem = "no trailer: the file ends after " + std::to_string(s.chunks.size()) +
                    " chunks (truncated)";
  }
  return s;
}

std::size_t Salvage::bad_chunks() const {
  std::size_t n = 0;
  for (const auto& c : chunks) n += !c.problem.empty();
  return n;
}

bool Salvage::clean() const {
  return preamble && preamble_problem.empty() && header && header_problem.empty() &&
         bad_chunks() == 0 && trailer && trailer_problem.empty() && end_problem.empty();
}

Json identity_json(const schema::DeviceIdentity& d) {
  Json j = {{"uuid", d.uuid},
            {"sysfs_path", d.sysfs_path},
            {"device_api", d.device_api},
            {"vfio_flags", d.vfio_flags},
            {"migration_flags", d.migration_flags},
            {"pci_id", pci_pair(d.pci_vendor, d.pci_device)},
            {"pci_subsystem", pci_pair(d.pci_sub_vendor, d.pci_sub_device)},
            {"region_sizes", d.region_sizes}};
  if (d.compat) {
    j["compat"] = {{"stream_version", d.compat->stream_version},
                   {"model_version", d.compat->model_version},
                   {"type_id", d.compat->type_id},
                   {"page_size", d.compat->page_size},
                   {"mem_size", d.compat->mem_size}};
  }
  return j;
}

Json damaged_json(const std::string& file, const Salvage& s, const std::string& verdict) {
  auto or_null = [](const std::string& p) { return p.empty() ? Json(nullptr) : Json(p); };
  Json chunks = Json::array();
  for (const auto& e : s.chunks) {
    Json c = {{"file_offset", e.file_offset}, {"frame_bytes", e.frame_bytes}};
    if (e.chunk) {
      c["seq"] = e.chunk->seq;
      c["offset"] = e.chunk->offset;
      c["bytes"] = e.chunk->bytes;
      c["phase"] = schema::phase_name(e.chunk->phase);
      c["xxh3"] = hash_text(e.chunk->xxh3);
    }
    c["ok"] = e.problem.empty();
    c["problem"] = or_null(e.problem);
    chunks.push_back(std::move(c));
  }
  Json j = json_document("inspect");
  j["file"] = file;
  j["verdict"] = "damaged";
  j["problem"] = verdict;
  j["file_bytes"] = s.file_bytes;
  j["preamble"] = s.preamble ? Json{{"format_version", s.preamble->format_version},
                                    {"header_bytes", s.preamble->header_bytes},
                                    {"header_xxh3", hash_text(s.preamble->header_xxh3)}}
                             : Json(nullptr);
  j["preamble_problem"] = or_null(s.preamble_problem);
  if (s.header) {
    j["header"] = {{"format_version", s.header->format_version},
                   {"tool_version", s.header->tool_version},
                   {"created", iso8601(s.header->created_unix_ns)},
                   {"hostname", s.header->hostname},
                   {"channel", schema::channel_name(s.header->channel)},
                   {"chunk_size", s.header->chunk_size},
                   {"device", identity_json(s.header->device)}};
  } else {
    j["header"] = nullptr;
  }
  j["header_problem"] = or_null(s.header_problem);
  j["chunks"] = chunks;
  j["bad_chunks"] = s.bad_chunks();
  j["walk_problem"] = or_null(s.end_problem);
  j["trailer"] = s.trailer ? Json{{"chunks", s.trailer->chunks},
                                  {"stream_bytes", s.trailer->stream_bytes},
                                  {"stream_xxh3", hash_text(s.trailer->stream_xxh3)}}
                           : Json(nullptr);
  j["trailer_problem"] = or_null(s.trailer_problem);
  j["checksums_verified"] = false;
  return j;
}

}  // namespace mdevmig::cli
