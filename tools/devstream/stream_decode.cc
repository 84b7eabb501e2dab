#include "tools/devstream/stream_decode.h"

#include <xxhash.h>

#include <algorithm>
#include <cstring>

#include "vendor/records.h"

namespace mdevmig::devstream {

struct StreamDecoder::Hash {
  XXH64_state_t* st = XXH64_createState();
  ~Hash() { XXH64_freeState(st); }
};

namespace {
// Device memory tracked for the unique-page count, at most (a 1 TiB instance).
constexpr uint64_t kMaxTrackedPages = MDEVMIG_MEM_MAX_SIZE / MDEVMIG_PAGE_SIZE;

// Exact payload length of a known fixed-length record (vendor/records.h); SIZE_MAX for
// PAGES, whose length is checked apart, and for unknown types.
std::size_t known_length(uint32_t tag) {
  const mdevmig_rec_info* info = mdevmig_rec_lookup(MDEVMIG_REC_TYPE(tag));
  return info && !info->per_page ? info->length : SIZE_MAX;
}

template <typename T>
T as(const std::vector<std::byte>& b) {
  T v;
  std::memcpy(&v, b.data(), sizeof(T));
  return v;
}
}  // namespace

StreamDecoder::StreamDecoder() : hash_(std::make_unique<Hash>()) {}
StreamDecoder::~StreamDecoder() = default;

void StreamDecoder::fail(std::string what) {
  if (s_.problem.empty()) {
    s_.problem = "record " + std::to_string(s_.records) + " at stream byte " +
                 std::to_string(s_.bytes) + ": " + std::move(what);
  }
}

void StreamDecoder::start_payload() {
  std::memcpy(&cur_, hdr_, sizeof(cur_));
  payload_fill_ = 0;
  small_.clear();
  if ((cur_.tag >> 16) != MDEVMIG_REC_MAGIC) return fail("bad record magic");
  if (s_.ended) return fail("data after END");
  if ((cur_.flags & ~MDEVMIG_REC_F_ALL) != 0) return fail("unknown flag bits");
  if (cur_.length > MDEVMIG_REC_MAX_PAYLOAD)
    return fail("length " + std::to_string(cur_.length) + " over the cap");
  if (s_.records == 0 && cur_.tag != MDEVMIG_REC_COMPAT) return fail("first record is not COMPAT");
  const std::size_t want = known_length(cur_.tag);
  if (cur_.tag == MDEVMIG_REC_PAGES) {
    // Whole pages after the fixed part; no page at all is the count check's to report.
    const uint32_t fixed = mdevmig_rec_lookup(MDEVMIG_REC_TYPE_PAGES)->length;
    if (cur_.length < fixed || (cur_.length - fixed) % MDEVMIG_PAGE_SIZE != 0) {
      return fail("PAGES length " + std::to_string(cur_.length));
    }
  } else if (want != SIZE_MAX && cur_.length != want) {
    return fail("type " + std::to_string(MDEVMIG_REC_TYPE(cur_.tag)) + " length " +
                std::to_string(cur_.length));
  } else if (want == SIZE_MAX && (cur_.flags & MDEVMIG_REC_F_MANDATORY) != 0) {
    return fail("unknown mandatory record type " + std::to_string(MDEVMIG_REC_TYPE(cur_.tag)));
  }
  XXH64_reset(hash_->st, 0);
}

void StreamDecoder::end_record() {
  if (XXH64_digest(hash_->st) != cur_.hash) return fail("payload XXH64 mismatch");
  ++s_.records;
  switch (cur_.tag) {
    case MDEVMIG_REC_COMPAT: {
      if (s_.compat) return fail("second COMPAT");
      s_.compat = as<mdevmig_rec_compat>(small_);
      const uint64_t pages = s_.compat->mem_size / MDEVMIG_PAGE_SIZE;
      if (pages > 0 && pages <= kMaxTrackedPages) seen_.emplace(pages);
      break;
    }
    case MDEVMIG_REC_CONFIG:
      s_.config = as<mdevmig_rec_config>(small_);
      break;
    case MDEVMIG_REC_REGS:
      s_.regs = as<mdevmig_rec_regs>(small_);
      break;
    case MDEVMIG_REC_ENGINE:
      s_.engine = as<mdevmig_rec_engine>(small_);
      break;
    case MDEVMIG_REC_IRQ:
      s_.irq = as<mdevmig_rec_irq>(small_);
      break;
    case MDEVMIG_REC_END:
      s_.ended = true;
      break;
    case MDEVMIG_REC_PAGES: {
      mdevmig_rec_pages p;
      std::memcpy(&p, pages_hdr_, sizeof(p));
      const uint64_t count = (cur_.length - sizeof(p)) / MDEVMIG_PAGE_SIZE;
      if (p.count != count || count == 0 || count > MDEVMIG_REC_PAGES_MAX)
        return fail("PAGES count");
      ++s_.page_records;
      (phase_ == schema::Phase::kStopCopy ? s_.pages_stopcopy : s_.pages_precopy) += count;
      if (seen_) {
        if (p.first_page >= seen_->size() || count > seen_->size() - p.first_page) {
          return fail("PAGES beyond device memory");
        }
        for (uint64_t i = 0; i < count; ++i) {
          if (!seen_->test(p.first_page + i)) {
            seen_->set(p.first_page + i);
            ++s_.unique_pages;
          }
        }
      }
      break;
    }
    default:
      ++s_.skipped_optional;
      break;
  }
}

void StreamDecoder::feed(std::span<const std::byte> data, schema::Phase phase) {
  phase_ = phase;
  while (!data.empty() && s_.problem.empty()) {
    if (hdr_fill_ < sizeof(hdr_)) {
      const std::size_t n = std::min(data.size(), sizeof(hdr_) - hdr_fill_);
      std::memcpy(hdr_ + hdr_fill_, data.data(), n);
      hdr_fill_ += n;
      data = data.subspan(n);
      s_.bytes += n;
      if (hdr_fill_ < sizeof(hdr_)) return;
      start_payload();
      if (!s_.problem.empty()) return;
    }
    const std::size_t n =
        static_cast<std::size_t>(std::min<uint64_t>(data.size(), cur_.length - payload_fill_));
    XXH64_update(hash_->st, data.data(), n);
    if (cur_.tag == MDEVMIG_REC_PAGES) {
      for (std::size_t i = 0; i < n && payload_fill_ + i < sizeof(pages_hdr_); ++i) {
        pages_hdr_[payload_fill_ + i] = data[i];
      }
    } else if (known_length(cur_.tag) != SIZE_MAX) {
      small_.insert(small_.end(), data.begin(), data.begin() + static_cast<std::ptrdiff_t>(n));
    }
    payload_fill_ += n;
    s_.bytes += n;
    data = data.subspan(n);
    if (payload_fill_ == cur_.length) {
      end_record();
      hdr_fill_ = 0;
    }
  }
}

StreamSummary StreamDecoder::finish() {
  if (s_.problem.empty() && (hdr_fill_ != 0 || !s_.ended)) {
    fail(s_.records == 0 && s_.bytes == 0 ? "empty stream" : "stream ends before END");
  }
  return s_;
}

std::vector<std::pair<std::string, uint64_t>> regs_fields(const mdevmig_rec_regs& r) {
  std::vector<std::pair<std::string, uint64_t>> out = {
      {"ctrl", r.ctrl},           {"int_status", r.int_status},
      {"int_mask", r.int_mask},   {"ring_base", r.ring_base},
      {"ring_size", r.ring_size}, {"ring_head", r.ring_head},
      {"ring_tail", r.ring_tail}, {"seq", r.seq},
      {"err_desc", r.err_desc},   {"err_dma", r.err_dma},
      {"err_ring", r.err_ring},
  };
  for (int i = 0; i < MDEVMIG_NR_SCRATCH; ++i)
    out.emplace_back("scratch" + std::to_string(i), r.scratch[i]);
  return out;
}

}  // namespace mdevmig::devstream
