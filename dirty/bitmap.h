// Page-granular dirty bitmaps: the currency between the kernel's dirty reports
// (VFIO_IOMMU_DIRTY_PAGES, device DMA logging), content hashing and the pre-copy loop.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <span>
#include <vector>

#include "base/check.h"
#include "base/result.h"

namespace mdevmig::dirty {

/// A run of consecutive set pages: [first, first + count).
struct PageRange {
  uint64_t first = 0;
  uint64_t count = 0;
  friend bool operator==(const PageRange&, const PageRange&) = default;
};

/// One bit per page, stored in 64-bit words (bit i of word w = page 64*w + i).
/// Invariant: bits past size() in the last word are zero, so word-wide operations
/// (count, union, iteration) need no tail masking.
class Bitmap {
 public:
  static constexpr uint64_t kBitsPerWord = 64;

  Bitmap() = default;
  /// A bitmap of `pages` pages, all clear.
  explicit Bitmap(uint64_t pages);

  /// Bytes of a raw bitmap covering `pages` pages as the kernel wants them: whole u64 words.
  [[nodiscard]] static constexpr uint64_t raw_bytes_for(uint64_t pages) {
    return words_for(pages) * sizeof(uint64_t);
  }
  /// Number of u64 words for `pages` pages.
  [[nodiscard]] static constexpr uint64_t words_for(uint64_t pages) {
    return pages / kBitsPerWord + (pages % kBitsPerWord != 0 ? 1 : 0);
  }

  /// Decodes a raw little-endian u64 bitmap (VFIO_IOMMU_DIRTY_PAGES, DMA logging
  /// report) covering `pages` pages. `raw` must hold at least raw_bytes_for(pages) bytes;
  /// bits past `pages` are ignored (the kernel may set them for a partial last page).
  [[nodiscard]] static Result<Bitmap> from_raw(std::span<const std::byte> raw, uint64_t pages);
  /// Like from_raw() into this bitmap's existing storage (size() pages), so a pre-copy
  /// loop that decodes every iteration does not fault in fresh memory each time.
  [[nodiscard]] Result<void> load_raw(std::span<const std::byte> raw);
  /// Encodes into a raw little-endian u64 buffer of at least raw_bytes_for(size()) bytes.
  void to_raw(std::span<std::byte> out) const;
  /// Encodes into a new buffer of exactly raw_bytes_for(size()) bytes.
  [[nodiscard]] std::vector<std::byte> to_raw() const;

  /// Number of pages covered (not the number set: see count()).
  [[nodiscard]] uint64_t size() const noexcept { return pages_; }
  /// Whether the bitmap covers no pages at all.
  [[nodiscard]] bool empty() const noexcept { return pages_ == 0; }

  /// Whether `page` (< size(), else abort) is set.
  [[nodiscard]] bool test(uint64_t page) const {
    MDEVMIG_CHECK(page < pages_, "page %llu of %llu", ull(page), ull(pages_));
    return (words_[page / kBitsPerWord] >> (page % kBitsPerWord)) & 1;
  }
  /// Marks `page` (< size()) dirty.
  void set(uint64_t page) {
    MDEVMIG_CHECK(page < pages_, "page %llu of %llu", ull(page), ull(pages_));
    words_[page / kBitsPerWord] |= uint64_t{1} << (page % kBitsPerWord);
  }
  /// Marks `page` (< size()) clean.
  void clear(uint64_t page) {
    MDEVMIG_CHECK(page < pages_, "page %llu of %llu", ull(page), ull(pages_));
    words_[page / kBitsPerWord] &= ~(uint64_t{1} << (page % kBitsPerWord));
  }
  /// Sets pages [first, first + count).
  void set_range(uint64_t first, uint64_t count);
  /// Clears pages [first, first + count).
  void clear_range(uint64_t first, uint64_t count);
  /// Sets every page (the tail past size() stays clear).
  void set_all();
  /// Clears every page.
  void clear_all();

  /// Number of set pages (popcount over the words).
  [[nodiscard]] uint64_t count() const noexcept;
  /// Whether any page is set.
  [[nodiscard]] bool any() const noexcept;
  /// Whether no page is set.
  [[nodiscard]] bool none() const noexcept { return !any(); }

  /// First set page at or after `from`, or size() if none.
  [[nodiscard]] uint64_t find_next_set(uint64_t from) const noexcept;
  /// First clear page at or after `from`, or size() if none.
  [[nodiscard]] uint64_t find_next_clear(uint64_t from) const noexcept;

  /// Calls f(page) for every set page in ascending order, a word at a time (ctz, then
  /// clear the lowest bit). Zero words cost one load and compare each.
  // TODO(perf): at 1-10% density the "while (word)" branch mispredicts about once per
  // non-empty word; a batched branch-free decode measured slower here without popcnt in
  // the baseline ISA (BENCHMARKS.md), so it waits for an ISA-dispatched version.
  template <typename F>
  void for_each_set(F&& f) const {
    const uint64_t n = words_.size();
    for (uint64_t w = 0; w < n; ++w) {
      uint64_t word = words_[w];
      while (word != 0) {
        f(w * kBitsPerWord + static_cast<uint64_t>(std::countr_zero(word)));
        word &= word - 1;
      }
    }
  }

  /// Forward iterator over set pages (same order as for_each_set).
  class SetBitIterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = uint64_t;
    using difference_type = std::ptrdiff_t;
    using pointer = const uint64_t*;
    using reference = uint64_t;

    SetBitIterator() = default;
    uint64_t operator*() const { return index_ * kBitsPerWord + std::countr_zero(word_); }
    SetBitIterator& operator++() {
      word_ &= word_ - 1;
      skip_empty();
      return *this;
    }
    SetBitIterator operator++(int) {
      SetBitIterator old = *this;
      ++*this;
      return old;
    }
    friend bool operator==(const SetBitIterator& a, const SetBitIterator& b) {
      return a.index_ == b.index_ && a.word_ == b.word_;
    }

   private:
    friend class Bitmap;
    SetBitIterator(const uint64_t* words, uint64_t nwords, uint64_t index)
        : words_(words), nwords_(nwords), index_(index), word_(index < nwords ? words[index] : 0) {
      skip_empty();
    }
    void skip_empty() {
      while (word_ == 0 && index_ < nwords_) {
        if (++index_ < nwords_) word_ = words_[index_];
      }
    }

    const uint64_t* words_ = nullptr;
    uint64_t nwords_ = 0;
    uint64_t index_ = 0;  // current word; == nwords_ at the end
    uint64_t word_ = 0;   // remaining set bits of the current word
  };

  /// A range over the set pages, for range-for loops.
  struct SetBits {
    SetBitIterator b, e;
    [[nodiscard]] SetBitIterator begin() const { return b; }
    [[nodiscard]] SetBitIterator end() const { return e; }
  };
  [[nodiscard]] SetBits set_bits() const {
    return {SetBitIterator(words_.data(), words_.size(), 0),
            SetBitIterator(words_.data(), words_.size(), words_.size())};
  }

  /// This |= other. Sizes must match.
  Bitmap& operator|=(const Bitmap& other);
  /// This &= other. Sizes must match.
  Bitmap& operator&=(const Bitmap& other);
  /// This &= ~other (pages set here and not in other). Sizes must match.
  Bitmap& subtract(const Bitmap& other);

  /// Calls f(PageRange) for every maximal run of set pages, ascending, a word at a time
  /// and without allocating.
  template <typename F>
  void for_each_range(F&& f) const {
    const uint64_t n = words_.size();
    bool in_run = false;
    uint64_t start = 0;
    for (uint64_t i = 0; i < n; ++i) {
      const uint64_t base = i * kBitsPerWord;
      // While in a run we look for its end: the first clear bit, i.e. a set bit of ~word.
      uint64_t w = in_run ? ~words_[i] : words_[i];
      while (w != 0) {
        const auto bit = static_cast<uint64_t>(std::countr_zero(w));
        if (in_run) {
          f(PageRange{start, base + bit - start});
        } else {
          start = base + bit;
        }
        in_run = !in_run;
        // Flip to look for the opposite kind of bit from `bit` on.
        w = ~w & (~uint64_t{0} << bit);
      }
    }
    // Bits past size() are clear, so only a run reaching a word-aligned end is open here.
    if (in_run) f(PageRange{start, pages_ - start});
  }

  /// Number of maximal runs of set pages (what ranges() returns), in one popcount pass.
  [[nodiscard]] uint64_t count_ranges() const noexcept;

  /// The set pages as maximal runs, ascending.
  [[nodiscard]] std::vector<PageRange> ranges() const;

  /// The words, for callers (ioctls) that fill or read the native layout directly.
  [[nodiscard]] std::span<const uint64_t> words() const noexcept { return words_; }
  /// Mutable words; call trim_tail() after writing them from outside.
  [[nodiscard]] std::span<uint64_t> mutable_words() noexcept { return words_; }
  /// Re-establishes the invariant that bits past size() are zero.
  void trim_tail() noexcept;

  friend bool operator==(const Bitmap&, const Bitmap&) = default;

 private:
  static unsigned long long ull(uint64_t v) { return v; }

  uint64_t pages_ = 0;
  std::vector<uint64_t> words_;
};

/// Number of pages of `page_size` bytes in `length` bytes. Fails with EINVAL unless
/// page_size is a power of two and length a multiple of it (what the kernel requires
/// of dirty-bitmap and DMA-logging requests); `op` names the request for the error.
[[nodiscard]] Result<uint64_t> pages_in(uint64_t length, uint64_t page_size, const char* op);

}  // namespace mdevmig::dirty
