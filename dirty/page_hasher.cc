#include "dirty/page_hasher.h"

#include <xxhash.h>

#include <algorithm>

namespace mdevmig::dirty {

PageHasher::PageHasher(uint64_t page_size, uint64_t bytes) : page_size_(page_size), bytes_(bytes) {
  MDEVMIG_CHECK(page_size > 0, "page size 0");
  const uint64_t pages = bytes / page_size + (bytes % page_size != 0 ? 1 : 0);
  hashes_.assign(pages, 0);
  known_ = Bitmap(pages);
}

uint64_t PageHasher::hash_page(std::span<const std::byte> memory, uint64_t page) const {
  MDEVMIG_CHECK(memory.size() == bytes_, "memory is %zu bytes, hasher tracks %llu", memory.size(),
                static_cast<unsigned long long>(bytes_));
  MDEVMIG_CHECK(page < hashes_.size(), "page %llu of %zu", static_cast<unsigned long long>(page),
                hashes_.size());
  const uint64_t offset = page * page_size_;
  const uint64_t len = std::min(page_size_, bytes_ - offset);
  return XXH3_64bits(memory.data() + offset, len);
}

void PageHasher::baseline(std::span<const std::byte> memory) {
  for (uint64_t p = 0; p < hashes_.size(); ++p) hashes_[p] = hash_page(memory, p);
  known_.set_all();
}

Bitmap PageHasher::changed(std::span<const std::byte> memory, const Bitmap& dirty) {
  MDEVMIG_CHECK(dirty.size() == hashes_.size(), "dirty bitmap of %llu pages, hasher has %zu",
                static_cast<unsigned long long>(dirty.size()), hashes_.size());
  Bitmap out(dirty.size());
  dirty.for_each_set([&](uint64_t p) {
    const uint64_t h = hash_page(memory, p);
    if (!known_.test(p) || hashes_[p] != h) {
      out.set(p);
      hashes_[p] = h;
    }
  });
  known_ |= dirty;
  return out;
}

bool PageHasher::update(uint64_t page, std::span<const std::byte> content) {
  MDEVMIG_CHECK(page < hashes_.size(), "page %llu of %zu", static_cast<unsigned long long>(page),
                hashes_.size());
  const uint64_t h = XXH3_64bits(content.data(), content.size());
  const bool changed = !known_.test(page) || hashes_[page] != h;
  hashes_[page] = h;
  known_.set(page);
  return changed;
}

void PageHasher::forget(const Bitmap& pages) { known_.subtract(pages); }

}  // namespace mdevmig::dirty
