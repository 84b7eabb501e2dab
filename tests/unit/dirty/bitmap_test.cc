// Bitmap against a naive std::vector<bool> reference, on edge sizes and random inputs.
#include <gtest/gtest.h>

#include <random>

#include "dirty/bitmap.h"

namespace mdevmig::dirty {
namespace {

using Ref = std::vector<bool>;

constexpr uint64_t kSizes[] = {0, 1, 2, 63, 64, 65, 127, 128, 129, 191, 1000, 4097};

Ref random_ref(uint64_t n, double density, std::mt19937_64& rng) {
  std::bernoulli_distribution bit(density);
  Ref r(n);
  for (uint64_t i = 0; i < n; ++i) r[i] = bit(rng);
  return r;
}

Bitmap from_ref(const Ref& r) {
  Bitmap b(r.size());
  for (uint64_t i = 0; i < r.size(); ++i) {
    if (r[i]) b.set(i);
  }
  return b;
}

std::vector<uint64_t> ref_set_pages(const Ref& r) {
  std::vector<uint64_t> out;
  for (uint64_t i = 0; i < r.size(); ++i) {
    if (r[i]) out.push_back(i);
  }
  return out;
}

std::vector<PageRange> ref_ranges(const Ref& r) {
  std::vector<PageRange> out;
  for (uint64_t i = 0; i < r.size();) {
    if (!r[i]) {
      ++i;
      continue;
    }
    uint64_t j = i;
    while (j < r.size() && r[j]) ++j;
    out.push_back({i, j - i});
    i = j;
  }
  return out;
}

void expect_equal(const Bitmap& b, const Ref& r) {
  ASSERT_EQ(b.size(), r.size());
  for (uint64_t i = 0; i < r.size(); ++i) ASSERT_EQ(b.test(i), r[i]) << "page " << i;
  const auto want = ref_set_pages(r);
  EXPECT_EQ(b.count(), want.size());
  EXPECT_EQ(b.any(), !want.empty());
  // The invariant behind word-wide operations: nothing set past size().
  if (!b.words().empty() && b.size() % 64 != 0) {
    EXPECT_EQ(b.words().back() >> (b.size() % 64), 0u);
  }
}

// Each test below runs on every edge size at several densities.
template <typename Fn>
void for_each_case(Fn&& fn) {
  std::mt19937_64 rng(0xd1e7);
  for (uint64_t n : kSizes) {
    for (double d : {0.0, 0.01, 0.3, 0.9, 1.0}) {
      for (int rep = 0; rep < 3; ++rep) {
        SCOPED_TRACE(testing::Message() << "size " << n << " density " << d << " rep " << rep);
        fn(n, d, rng);
      }
    }
  }
}

TEST(Bitmap, EmptyByDefaultAndAfterConstruction) {
  Bitmap none;
  EXPECT_EQ(none.size(), 0u);
  EXPECT_TRUE(none.empty());
  EXPECT_EQ(none.count(), 0u);
  EXPECT_TRUE(none.ranges().empty());
  EXPECT_EQ(none.set_bits().begin(), none.set_bits().end());
  Bitmap b(65);
  EXPECT_EQ(b.words().size(), 2u);
  EXPECT_TRUE(b.none());
}

TEST(Bitmap, SetTestClearCount) {
  for_each_case([](uint64_t n, double d, std::mt19937_64& rng) {
    Ref r = random_ref(n, d, rng);
    Bitmap b = from_ref(r);
    expect_equal(b, r);
    for (uint64_t i = 0; i < n; i += 3) {
      b.clear(i);
      r[i] = false;
    }
    expect_equal(b, r);
  });
}

TEST(Bitmap, IterationMatchesReference) {
  for_each_case([](uint64_t n, double d, std::mt19937_64& rng) {
    const Ref r = random_ref(n, d, rng);
    const Bitmap b = from_ref(r);
    std::vector<uint64_t> via_callback;
    b.for_each_set([&](uint64_t p) { via_callback.push_back(p); });
    std::vector<uint64_t> via_iterator;
    for (uint64_t p : b.set_bits()) via_iterator.push_back(p);
    const auto want = ref_set_pages(r);
    EXPECT_EQ(via_callback, want);
    EXPECT_EQ(via_iterator, want);
  });
}

TEST(Bitmap, FindNextMatchesReference) {
  for_each_case([](uint64_t n, double d, std::mt19937_64& rng) {
    const Ref r = random_ref(n, d, rng);
    const Bitmap b = from_ref(r);
    for (uint64_t from = 0; from <= n + 1; ++from) {
      uint64_t want_set = n, want_clear = n;
      for (uint64_t i = from; i < n; ++i) {
        if (r[i]) {
          want_set = i;
          break;
        }
      }
      for (uint64_t i = from; i < n; ++i) {
        if (!r[i]) {
          want_clear = i;
          break;
        }
      }
      ASSERT_EQ(b.find_next_set(from), want_set) << from;
      ASSERT_EQ(b.find_next_clear(from), want_clear) << from;
    }
  });
}

TEST(Bitmap, RangesMatchReference) {
  for_each_case([](uint64_t n, double d, std::mt19937_64& rng) {
    const Ref r = random_ref(n, d, rng);
    EXPECT_EQ(from_ref(r).ranges(), ref_ranges(r));
  });
}

TEST(Bitmap, ForEachRangeAndCountRangesMatchReference) {
  for_each_case([](uint64_t n, double d, std::mt19937_64& rng) {
    const Ref r = random_ref(n, d, rng);
    const Bitmap b = from_ref(r);
    std::vector<PageRange> got;
    b.for_each_range([&](PageRange pr) { got.push_back(pr); });
    const auto want = ref_ranges(r);
    EXPECT_EQ(got, want);
    EXPECT_EQ(b.count_ranges(), want.size());
  });
}

TEST(Bitmap, RangesAcrossWordBoundaries) {
  Bitmap b(200);
  b.set_range(60, 10);   // crosses word 0/1
  b.set_range(127, 66);  // crosses words 1/2/3
  b.set(199);
  EXPECT_EQ(b.ranges(), (std::vector<PageRange>{{60, 10}, {127, 66}, {199, 1}}));
  b.set_all();
  EXPECT_EQ(b.ranges(), (std::vector<PageRange>{{0, 200}}));
}

TEST(Bitmap, SetAndClearRangeMatchReference) {
  for_each_case([](uint64_t n, double d, std::mt19937_64& rng) {
    Ref r = random_ref(n, d, rng);
    Bitmap b = from_ref(r);
    for (int op = 0; op < 20; ++op) {
      const uint64_t first = n == 0 ? 0 : rng() % (n + 1);
      const uint64_t count = (n - first) == 0 ? 0 : rng() % (n - first + 1);
      const bool value = rng() % 2 == 0;
      if (value) {
        b.set_range(first, count);
      } else {
        b.clear_range(first, count);
      }
      for (uint64_t i = first; i < first + count; ++i) r[i] = value;
    }
    expect_equal(b, r);
  });
}

TEST(Bitmap, SetAllClearAll) {
  for (uint64_t n : kSizes) {
    Bitmap b(n);
    b.set_all();
    expect_equal(b, Ref(n, true));
    b.clear_all();
    expect_equal(b, Ref(n, false));
  }
}

TEST(Bitmap, SetOperationsMatchReference) {
  for_each_case([](uint64_t n, double d, std::mt19937_64& rng) {
    const Ref a = random_ref(n, d, rng);
    const Ref c = random_ref(n, 0.5, rng);
    Ref want_or(n), want_and(n), want_sub(n);
    for (uint64_t i = 0; i < n; ++i) {
      want_or[i] = a[i] || c[i];
      want_and[i] = a[i] && c[i];
      want_sub[i] = a[i] && !c[i];
    }
    Bitmap x = from_ref(a);
    x |= from_ref(c);
    expect_equal(x, want_or);
    Bitmap y = from_ref(a);
    y &= from_ref(c);
    expect_equal(y, want_and);
    Bitmap z = from_ref(a);
    z.subtract(from_ref(c));
    expect_equal(z, want_sub);
  });
}

TEST(Bitmap, RawRoundTrip) {
  for_each_case([](uint64_t n, double d, std::mt19937_64& rng) {
    const Ref r = random_ref(n, d, rng);
    const Bitmap b = from_ref(r);
    const std::vector<std::byte> raw = b.to_raw();
    EXPECT_EQ(raw.size(), Bitmap::raw_bytes_for(n));
    EXPECT_EQ(raw.size() % 8, 0u);
    auto back = Bitmap::from_raw(raw, n);
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, b);
  });
}

TEST(Bitmap, RawLayoutIsLittleEndianWords) {
  // Page i is bit i % 8 of byte i / 8, as in the kernel's u64 bitmaps on x86.
  std::vector<std::byte> raw(16);
  raw[0] = std::byte{0x01};  // page 0
  raw[1] = std::byte{0x80};  // page 15
  raw[7] = std::byte{0x80};  // page 63
  raw[8] = std::byte{0x02};  // page 65
  auto b = Bitmap::from_raw(raw, 128);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->ranges(), (std::vector<PageRange>{{0, 1}, {15, 1}, {63, 1}, {65, 1}}));
  EXPECT_EQ(b->to_raw(), raw);
}

TEST(Bitmap, FromRawIgnoresBitsPastSizeAndRejectsShortBuffers) {
  std::vector<std::byte> raw(8, std::byte{0xff});
  auto b = Bitmap::from_raw(raw, 5);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->count(), 5u);
  EXPECT_EQ(b->words()[0], 0x1fu);
  auto short_buf = Bitmap::from_raw(std::span(raw).first(7), 5);
  ASSERT_FALSE(short_buf.ok());
  EXPECT_EQ(short_buf.error().errnum, EINVAL);
  EXPECT_FALSE(Bitmap::from_raw(raw, 65).ok());
  EXPECT_TRUE(Bitmap::from_raw({}, 0).ok());
}

TEST(Bitmap, LoadRawReusesStorage) {
  Bitmap b(100);
  b.set_all();
  std::vector<std::byte> raw(16);
  raw[12] = std::byte{0xff};  // pages 96..103, of which 96..99 exist
  ASSERT_TRUE(b.load_raw(raw).ok());
  EXPECT_EQ(b.ranges(), (std::vector<PageRange>{{96, 4}}));
  EXPECT_EQ(b.load_raw(std::span(raw).first(8)).error().errnum, EINVAL);
}

TEST(Bitmap, MutableWordsThenTrim) {
  Bitmap b(70);
  for (uint64_t& w : b.mutable_words()) w = ~uint64_t{0};
  b.trim_tail();
  EXPECT_EQ(b.count(), 70u);
}

TEST(Bitmap, RawSizes) {
  EXPECT_EQ(Bitmap::raw_bytes_for(0), 0u);
  EXPECT_EQ(Bitmap::raw_bytes_for(1), 8u);
  EXPECT_EQ(Bitmap::raw_bytes_for(64), 8u);
  EXPECT_EQ(Bitmap::raw_bytes_for(65), 16u);
  EXPECT_EQ(Bitmap::raw_bytes_for(uint64_t{1} << 28), 32u << 20);
}

TEST(PagesIn, ValidatesPageSizeAndLength) {
  EXPECT_EQ(*pages_in(1 << 20, 4096, "op"), 256u);
  EXPECT_EQ(*pages_in(0, 4096, "op"), 0u);
  EXPECT_EQ(pages_in(4096, 0, "op").error().errnum, EINVAL);
  EXPECT_EQ(pages_in(4096, 3000, "op").error().errnum, EINVAL);
  auto r = pages_in(4097, 4096, "VFIO_IOMMU_DIRTY_PAGES");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().op, "VFIO_IOMMU_DIRTY_PAGES");
}

TEST(BitmapDeathTest, OutOfRangeAndSizeMismatchAbort) {
  Bitmap b(10);
  EXPECT_DEATH(b.set(10), "page 10 of 10");
  EXPECT_DEATH((void)b.test(11), "check failed");
  EXPECT_DEATH(b.set_range(5, 6), "range");
  Bitmap other(11);
  EXPECT_DEATH(b |= other, "size 10 vs 11");
}

}  // namespace
}  // namespace mdevmig::dirty
