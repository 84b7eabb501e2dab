// PageHasher: pages rewritten with identical bytes are dropped, real changes are kept.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "dirty/page_hasher.h"

namespace mdevmig::dirty {
namespace {

constexpr uint64_t kPage = 4096;

std::vector<std::byte> random_memory(std::size_t n, std::mt19937_64& rng) {
  std::vector<std::byte> m(n);
  for (auto& b : m) b = static_cast<std::byte>(rng());
  return m;
}

TEST(PageHasher, PageCountIncludesPartialTail) {
  EXPECT_EQ(PageHasher(kPage, 0).pages(), 0u);
  EXPECT_EQ(PageHasher(kPage, 1).pages(), 1u);
  EXPECT_EQ(PageHasher(kPage, kPage).pages(), 1u);
  EXPECT_EQ(PageHasher(kPage, kPage + 1).pages(), 2u);
}

TEST(PageHasher, WithoutBaselineEveryDirtyPageIsChanged) {
  std::mt19937_64 rng(1);
  auto mem = random_memory(10 * kPage, rng);
  PageHasher h(kPage, mem.size());
  Bitmap dirty(10);
  dirty.set(2);
  dirty.set(9);
  EXPECT_EQ(h.changed(mem, dirty), dirty);
  // Now known and unchanged.
  EXPECT_TRUE(h.changed(mem, dirty).none());
}

TEST(PageHasher, OnlyContentChangesAreReported) {
  std::mt19937_64 rng(2);
  for (uint64_t pages : {1u, 63u, 64u, 65u, 200u}) {
    SCOPED_TRACE(pages);
    auto mem = random_memory(pages * kPage, rng);
    PageHasher h(kPage, mem.size());
    h.baseline(mem);

    Bitmap dirty(pages), want(pages);
    for (uint64_t p = 0; p < pages; ++p) {
      switch (rng() % 4) {
        case 0:  // reported dirty, content really changed (one byte is enough)
          dirty.set(p);
          want.set(p);
          mem[p * kPage + rng() % kPage] ^= std::byte{0x40};
          break;
        case 1:  // reported dirty, rewritten with the same bytes
          dirty.set(p);
          break;
        case 2:  // changed but not reported: not our business this pass
          mem[p * kPage] ^= std::byte{1};
          break;
        default:
          break;
      }
    }
    EXPECT_EQ(h.changed(mem, dirty), want);
    EXPECT_TRUE(h.changed(mem, dirty).none());
  }
}

TEST(PageHasher, PartialLastPage) {
  std::mt19937_64 rng(3);
  auto mem = random_memory(2 * kPage + 100, rng);
  PageHasher h(kPage, mem.size());
  h.baseline(mem);
  mem.back() ^= std::byte{0xff};
  Bitmap dirty(3);
  dirty.set_all();
  Bitmap want(3);
  want.set(2);
  EXPECT_EQ(h.changed(mem, dirty), want);
}

TEST(PageHasher, ForgetReportsPagesAgain) {
  std::mt19937_64 rng(4);
  auto mem = random_memory(4 * kPage, rng);
  PageHasher h(kPage, mem.size());
  h.baseline(mem);
  Bitmap lost(4);
  lost.set(1);
  h.forget(lost);
  Bitmap all(4);
  all.set_all();
  EXPECT_EQ(h.changed(mem, all), lost);
}

TEST(PageHasher, HashIsXxh3OfThePage) {
  std::vector<std::byte> mem(2 * kPage, std::byte{0});
  PageHasher h(kPage, mem.size());
  EXPECT_EQ(h.hash_page(mem, 0), h.hash_page(mem, 1));
  mem[kPage] = std::byte{1};
  EXPECT_NE(h.hash_page(mem, 0), h.hash_page(mem, 1));
}

// update() hashes the bytes given (what was sent), so content that changes back to an
// older version after another was sent is a change.
TEST(PageHasher, UpdateComparesWithWhatWasLastStored) {
  std::vector<std::byte> a(kPage, std::byte{1}), b(kPage, std::byte{2});
  PageHasher h(kPage, 3 * kPage);
  EXPECT_TRUE(h.update(1, a)) << "nothing stored yet";
  EXPECT_FALSE(h.update(1, a));
  EXPECT_TRUE(h.update(1, b));
  EXPECT_TRUE(h.update(1, a)) << "back to the older content: the receiver holds b";
  EXPECT_FALSE(h.update(1, a));
  EXPECT_TRUE(h.update(2, a)) << "pages are separate";
  Bitmap one(3);
  one.set(1);
  h.forget(one);
  EXPECT_TRUE(h.update(1, a)) << "forgotten";
}

TEST(PageHasherDeathTest, SizeMismatchesAbort) {
  std::vector<std::byte> mem(kPage);
  PageHasher h(kPage, mem.size());
  std::vector<std::byte> wrong(kPage - 1);
  EXPECT_DEATH(h.baseline(wrong), "memory is 4095 bytes");
  EXPECT_DEATH((void)h.changed(mem, Bitmap(2)), "dirty bitmap of 2 pages");
  EXPECT_DEATH((void)h.update(1, mem), "page 1 of 1");
}

}  // namespace
}  // namespace mdevmig::dirty
