// Dirty-tracking throughput: bitmap scans of a 1 TiB guest's bitmap (2^28 pages of 4 KiB
// = 32 MiB of bitmap) at several densities, and XXH3 page hashing against memcpy.
#include <benchmark/benchmark.h>
#include <xxhash.h>

#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <vector>

#include "dirty/bitmap.h"
#include "dirty/page_hasher.h"

namespace mdevmig::dirty {
namespace {

constexpr uint64_t kGuestPages = uint64_t{1} << 28;  // 1 TiB / 4 KiB
constexpr uint64_t kBitmapBytes = kGuestPages / 8;   // 32 MiB
constexpr uint64_t kPage = 4096;
constexpr std::size_t kHashBytes = 64u << 20;  // 64 MiB of "guest memory"

// Density arguments are in parts per 10000 (Google Benchmark takes integer args).
const Bitmap& bitmap_at(int64_t per_10k) {
  static std::map<int64_t, std::unique_ptr<Bitmap>> cache;
  auto& slot = cache[per_10k];
  if (slot) return *slot;
  slot = std::make_unique<Bitmap>(kGuestPages);
  std::mt19937_64 rng(static_cast<uint64_t>(per_10k) * 7919 + 1);
  if (per_10k >= 10000) {
    slot->set_all();
  } else if (per_10k == 5000) {
    for (uint64_t& w : slot->mutable_words()) w = rng();
  } else {
    const uint64_t n = kGuestPages * static_cast<uint64_t>(per_10k) / 10000;
    for (uint64_t i = 0; i < n; ++i) slot->set(rng() & (kGuestPages - 1));
  }
  return *slot;
}

void density_args(benchmark::internal::Benchmark* b) {
  for (int64_t d : {0, 10, 100, 1000, 5000, 10000}) b->Arg(d);
  b->Unit(benchmark::kMillisecond);
}

void label(benchmark::State& state, const Bitmap& b) {
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kBitmapBytes));
  state.counters["set_pages"] = static_cast<double>(b.count());
}

void BM_BitmapCount(benchmark::State& state) {
  const Bitmap& b = bitmap_at(state.range(0));
  for (auto _ : state) benchmark::DoNotOptimize(b.count());
  label(state, b);
}
BENCHMARK(BM_BitmapCount)->Apply(density_args);

void BM_BitmapCountRanges(benchmark::State& state) {
  const Bitmap& b = bitmap_at(state.range(0));
  for (auto _ : state) benchmark::DoNotOptimize(b.count_ranges());
  label(state, b);
}
BENCHMARK(BM_BitmapCountRanges)->Apply(density_args);

void BM_BitmapForEachSet(benchmark::State& state) {
  const Bitmap& b = bitmap_at(state.range(0));
  for (auto _ : state) {
    uint64_t sum = 0;
    b.for_each_set([&](uint64_t p) { sum += p; });
    benchmark::DoNotOptimize(sum);
  }
  label(state, b);
}
BENCHMARK(BM_BitmapForEachSet)->Apply(density_args);

void BM_BitmapIterator(benchmark::State& state) {
  const Bitmap& b = bitmap_at(state.range(0));
  for (auto _ : state) {
    uint64_t sum = 0;
    for (uint64_t p : b.set_bits()) sum += p;
    benchmark::DoNotOptimize(sum);
  }
  label(state, b);
}
BENCHMARK(BM_BitmapIterator)->Apply(density_args);

void BM_BitmapRanges(benchmark::State& state) {
  const Bitmap& b = bitmap_at(state.range(0));
  for (auto _ : state) benchmark::DoNotOptimize(b.ranges());
  label(state, b);
}
BENCHMARK(BM_BitmapRanges)->Apply(density_args);

void BM_BitmapForEachRange(benchmark::State& state) {
  const Bitmap& b = bitmap_at(state.range(0));
  for (auto _ : state) {
    uint64_t sum = 0;
    b.for_each_range([&](PageRange r) { sum += r.count; });
    benchmark::DoNotOptimize(sum);
  }
  label(state, b);
}
BENCHMARK(BM_BitmapForEachRange)->Apply(density_args);

// Decoding a kernel bitmap into a new Bitmap (allocates and faults in 32 MiB)...
void BM_BitmapFromRaw(benchmark::State& state) {
  const std::vector<std::byte> raw = bitmap_at(100).to_raw();
  for (auto _ : state) benchmark::DoNotOptimize(Bitmap::from_raw(raw, kGuestPages));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kBitmapBytes));
}
BENCHMARK(BM_BitmapFromRaw)->Unit(benchmark::kMillisecond);

// ...and into a reused one, as a pre-copy loop does.
void BM_BitmapLoadRaw(benchmark::State& state) {
  const std::vector<std::byte> raw = bitmap_at(100).to_raw();
  Bitmap b(kGuestPages);
  for (auto _ : state) {
    benchmark::DoNotOptimize(b.load_raw(raw));
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kBitmapBytes));
}
BENCHMARK(BM_BitmapLoadRaw)->Unit(benchmark::kMillisecond);

void BM_BitmapUnion(benchmark::State& state) {
  Bitmap a = bitmap_at(100);
  const Bitmap& b = bitmap_at(1000);
  for (auto _ : state) {
    a |= b;
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kBitmapBytes));
}
BENCHMARK(BM_BitmapUnion)->Unit(benchmark::kMillisecond);

std::vector<std::byte>& guest_memory() {
  static std::vector<std::byte> mem = [] {
    std::vector<std::byte> m(kHashBytes);
    std::mt19937_64 rng(42);
    for (std::size_t i = 0; i < m.size(); i += 8) {
      const uint64_t v = rng();
      std::memcpy(m.data() + i, &v, 8);
    }
    return m;
  }();
  return mem;
}

void BM_Memcpy(benchmark::State& state) {
  const auto& src = guest_memory();
  std::vector<std::byte> dst(src.size());
  for (auto _ : state) {
    std::memcpy(dst.data(), src.data(), src.size());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * src.size()));
}
BENCHMARK(BM_Memcpy)->Unit(benchmark::kMillisecond);

void BM_Xxh3Pages(benchmark::State& state) {
  const auto& mem = guest_memory();
  for (auto _ : state) {
    uint64_t acc = 0;
    for (std::size_t off = 0; off < mem.size(); off += kPage)
      acc ^= XXH3_64bits(mem.data() + off, kPage);
    benchmark::DoNotOptimize(acc);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * mem.size()));
}
BENCHMARK(BM_Xxh3Pages)->Unit(benchmark::kMillisecond);

void BM_Xxh64Pages(benchmark::State& state) {
  const auto& mem = guest_memory();
  for (auto _ : state) {
    uint64_t acc = 0;
    for (std::size_t off = 0; off < mem.size(); off += kPage)
      acc ^= XXH64(mem.data() + off, kPage, 0);
    benchmark::DoNotOptimize(acc);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * mem.size()));
}
BENCHMARK(BM_Xxh64Pages)->Unit(benchmark::kMillisecond);

// PageHasher::changed() with every page reported dirty and none changed: the whole
// cost of deciding to skip, per byte of guest memory.
void BM_PageHasherChanged(benchmark::State& state) {
  const auto& mem = guest_memory();
  PageHasher hasher(kPage, mem.size());
  hasher.baseline(mem);
  Bitmap dirty(hasher.pages());
  dirty.set_all();
  for (auto _ : state) benchmark::DoNotOptimize(hasher.changed(mem, dirty));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * mem.size()));
}
BENCHMARK(BM_PageHasherChanged)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace mdevmig::dirty

BENCHMARK_MAIN();
