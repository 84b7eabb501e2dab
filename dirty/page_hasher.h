// Content hashing of pages, so that pages reported dirty but rewritten with the same
// bytes (a common pattern: zeroing, idempotent stores) need not be sent again.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "dirty/bitmap.h"

namespace mdevmig::dirty {

/// Keeps one XXH3-64 hash per page of a memory range. A page whose hash is unchanged is
/// treated as unchanged; a false "unchanged" needs a 64-bit collision (probability about
/// 2^-64 per page and pass), which DESIGN.md §5 accepts.
class PageHasher {
 public:
  /// Tracks `bytes` bytes in pages of `page_size` (> 0); a partial last page counts as a
  /// page. No page has a known hash until baseline() or changed() hashes it.
  PageHasher(uint64_t page_size, uint64_t bytes);

  [[nodiscard]] uint64_t page_size() const noexcept { return page_size_; }
  [[nodiscard]] uint64_t pages() const noexcept { return hashes_.size(); }
  [[nodiscard]] uint64_t bytes() const noexcept { return bytes_; }

  /// Hashes every page of `memory` (which must be bytes() long) as the reference content.
  void baseline(std::span<const std::byte> memory);

  /// Of the pages set in `dirty` (size pages()), returns those whose content differs from
  /// the stored hash or that have no stored hash yet, and stores their new hashes.
  [[nodiscard]] Bitmap changed(std::span<const std::byte> memory, const Bitmap& dirty);

  /// Stores the hash of `content` (one page's bytes, as sent) as page `page`'s; returns
  /// whether it differs from the stored hash or none was stored. Hashing the bytes that
  /// were sent, not the memory after the fact, keeps the hash true to what the receiver
  /// holds even when the page changes while it is sent.
  [[nodiscard]] bool update(uint64_t page, std::span<const std::byte> content);

  /// Forgets the hashes of the given pages (e.g. after a failed send), so the next
  /// changed() reports them again.
  void forget(const Bitmap& pages);

  /// The XXH3-64 hash of one page of `memory` (bytes() long).
  [[nodiscard]] uint64_t hash_page(std::span<const std::byte> memory, uint64_t page) const;

 private:
  uint64_t page_size_;
  uint64_t bytes_;
  std::vector<uint64_t> hashes_;
  Bitmap known_;  // pages whose hashes_ entry is valid
};

}  // namespace mdevmig::dirty
