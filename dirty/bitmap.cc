#include "dirty/bitmap.h"

#include <algorithm>
#include <cstring>
#include <string>

namespace mdevmig::dirty {
namespace {

constexpr uint64_t kAllOnes = ~uint64_t{0};

// Used only on big-endian hosts (the little-endian path copies whole words).
[[maybe_unused]] uint64_t load_le64(const std::byte* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof(v));
  if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap64(v);
  return v;
}

void store_le64(std::byte* p, uint64_t v) {
  if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap64(v);
  std::memcpy(p, &v, sizeof(v));
}

// Mask of bits [lo, hi) within one word, 0 <= lo < hi <= 64.
uint64_t bit_span(uint64_t lo, uint64_t hi) {
  const uint64_t upper = hi == 64 ? kAllOnes : (uint64_t{1} << hi) - 1;
  return upper & (kAllOnes << lo);
}

// Calls op(word, mask) for each word overlapping bits [first, first + count).
template <typename Op>
void for_each_word_span(std::vector<uint64_t>& words, uint64_t first, uint64_t count, Op op) {
  uint64_t pos = first;
  const uint64_t end = first + count;
  while (pos < end) {
    const uint64_t lo = pos % Bitmap::kBitsPerWord;
    const uint64_t hi = std::min<uint64_t>(Bitmap::kBitsPerWord, lo + (end - pos));
    op(words[pos / Bitmap::kBitsPerWord], bit_span(lo, hi));
    pos += hi - lo;
  }
}

// Without -mpopcnt, std::popcount is a bit-twiddling sequence several times slower than
// the instruction every x86-64 CPU of the last 15 years has; pick it at load time.
#if defined(__x86_64__) && defined(__GNUC__)
#define MDEVMIG_POPCNT_CLONES __attribute__((target_clones("popcnt", "default")))
#else
#define MDEVMIG_POPCNT_CLONES
#endif

MDEVMIG_POPCNT_CLONES uint64_t popcount_words(const uint64_t* w, uint64_t n) {
  // Four accumulators let the popcounts of independent words overlap in the pipeline.
  uint64_t c0 = 0, c1 = 0, c2 = 0, c3 = 0;
  uint64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    c0 += static_cast<uint64_t>(std::popcount(w[i]));
    c1 += static_cast<uint64_t>(std::popcount(w[i + 1]));
    c2 += static_cast<uint64_t>(std::popcount(w[i + 2]));
    c3 += static_cast<uint64_t>(std::popcount(w[i + 3]));
  }
  for (; i < n; ++i) c0 += static_cast<uint64_t>(std::popcount(w[i]));
  return c0 + c1 + c2 + c3;
}

// A run starts at every set bit whose lower neighbour (across words too) is clear.
MDEVMIG_POPCNT_CLONES uint64_t count_run_starts(const uint64_t* words, uint64_t n) {
  if (n == 0) return 0;
  uint64_t runs = static_cast<uint64_t>(std::popcount(words[0] & ~(words[0] << 1)));
  // The previous word is re-loaded rather than carried, so iterations stay independent.
  for (uint64_t i = 1; i < n; ++i) {
    const uint64_t w = words[i];
    runs += static_cast<uint64_t>(std::popcount(w & ~((w << 1) | (words[i - 1] >> 63))));
  }
  return runs;
}

}  // namespace

Bitmap::Bitmap(uint64_t pages) : pages_(pages), words_(words_for(pages), 0) {}

Result<Bitmap> Bitmap::from_raw(std::span<const std::byte> raw, uint64_t pages) {
  Bitmap out(pages);
  MDEVMIG_TRY(out.load_raw(raw));
  return out;
}

Result<void> Bitmap::load_raw(std::span<const std::byte> raw) {
  const uint64_t need = raw_bytes_for(pages_);
  if (raw.size() < need) {
    return Error::make(EINVAL, "decode dirty bitmap",
                       std::to_string(raw.size()) + " bytes for " + std::to_string(pages_) +
                           " pages (need " + std::to_string(need) + ")");
  }
  if constexpr (std::endian::native == std::endian::little) {
    if (need != 0) std::memcpy(words_.data(), raw.data(), need);
  } else {
    for (uint64_t w = 0; w < words_.size(); ++w) {
      words_[w] = load_le64(raw.data() + w * sizeof(uint64_t));
    }
  }
  trim_tail();
  return ok();
}

void Bitmap::to_raw(std::span<std::byte> out) const {
  MDEVMIG_CHECK(out.size() >= raw_bytes_for(pages_), "%zu bytes for %llu pages", out.size(),
                ull(pages_));
  for (uint64_t w = 0; w < words_.size(); ++w) {
    store_le64(out.data() + w * sizeof(uint64_t), words_[w]);
  }
}

std::vector<std::byte> Bitmap::to_raw() const {
  std::vector<std::byte> out(raw_bytes_for(pages_));
  to_raw(out);
  return out;
}

void Bitmap::set_range(uint64_t first, uint64_t count) {
  MDEVMIG_CHECK(first <= pages_ && count <= pages_ - first, "range [%llu, +%llu) of %llu",
                ull(first), ull(count), ull(pages_));
  for_each_word_span(words_, first, count, [](uint64_t& w, uint64_t mask) { w |= mask; });
}

void Bitmap::clear_range(uint64_t first, uint64_t count) {
  MDEVMIG_CHECK(first <= pages_ && count <= pages_ - first, "range [%llu, +%llu) of %llu",
                ull(first), ull(count), ull(pages_));
  for_each_word_span(words_, first, count, [](uint64_t& w, uint64_t mask) { w &= ~mask; });
}

void Bitmap::set_all() {
  std::fill(words_.begin(), words_.end(), kAllOnes);
  trim_tail();
}

void Bitmap::clear_all() { std::fill(words_.begin(), words_.end(), 0); }

uint64_t Bitmap::count() const noexcept { return popcount_words(words_.data(), words_.size()); }

uint64_t Bitmap::count_ranges() const noexcept {
  return count_run_starts(words_.data(), words_.size());
}

bool Bitmap::any() const noexcept {
  return std::any_of(words_.begin(), words_.end(), [](uint64_t w) { return w != 0; });
}

uint64_t Bitmap::find_next_set(uint64_t from) const noexcept {
  if (from >= pages_) return pages_;
  uint64_t w = from / kBitsPerWord;
  uint64_t word = words_[w] & (kAllOnes << (from % kBitsPerWord));
  while (word == 0) {
    if (++w == words_.size()) return pages_;
    word = words_[w];
  }
  return w * kBitsPerWord + std::countr_zero(word);
}

uint64_t Bitmap::find_next_clear(uint64_t from) const noexcept {
  if (from >= pages_) return pages_;
  uint64_t w = from / kBitsPerWord;
  uint64_t word = ~words_[w] & (kAllOnes << (from % kBitsPerWord));
  while (word == 0) {
    if (++w == words_.size()) return pages_;
    word = ~words_[w];
  }
  // The zero tail past size() reads as "clear", so clamp to size().
  return std::min(pages_, w * kBitsPerWord + std::countr_zero(word));
}

Bitmap& Bitmap::operator|=(const Bitmap& other) {
  MDEVMIG_CHECK(pages_ == other.pages_, "size %llu vs %llu", ull(pages_), ull(other.pages_));
  for (uint64_t w = 0; w < words_.size(); ++w) words_[w] |= other.words_[w];
  return *this;
}

Bitmap& Bitmap::operator&=(const Bitmap& other) {
  MDEVMIG_CHECK(pages_ == other.pages_, "size %llu vs %llu", ull(pages_), ull(other.pages_));
  for (uint64_t w = 0; w < words_.size(); ++w) words_[w] &= other.words_[w];
  return *this;
}

Bitmap& Bitmap::subtract(const Bitmap& other) {
  MDEVMIG_CHECK(pages_ == other.pages_, "size %llu vs %llu", ull(pages_), ull(other.pages_));
  for (uint64_t w = 0; w < words_.size(); ++w) words_[w] &= ~other.words_[w];
  return *this;
}

std::vector<PageRange> Bitmap::ranges() const {
  // Sizing first avoids re-allocating (and faulting in) a vector that, for a fragmented
  // bitmap, can reach gigabytes.
  std::vector<PageRange> out;
  out.reserve(count_ranges());
  for_each_range([&](PageRange r) { out.push_back(r); });
  return out;
}

void Bitmap::trim_tail() noexcept {
  const uint64_t rem = pages_ % kBitsPerWord;
  if (rem != 0) words_.back() &= (uint64_t{1} << rem) - 1;
}

Result<uint64_t> pages_in(uint64_t length, uint64_t page_size, const char* op) {
  if (page_size == 0 || !std::has_single_bit(page_size)) {
    return Error::make(EINVAL, op,
                       "page size " + std::to_string(page_size) + " is not a power of two");
  }
  if (length % page_size != 0) {
    return Error::make(EINVAL, op,
                       "length " + std::to_string(length) + " is not a multiple of page size " +
                           std::to_string(page_size));
  }
  return length / page_size;
}

}  // namespace mdevmig::dirty
