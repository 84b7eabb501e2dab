// Throughput of the device model's state stream and DMA engine, in bytes of device
// memory per second:
//   Save: COMPAT + PAGES records of 256 pages into one reused record buffer (what the
//         module does per read() of the migration data) + state + END.
//   Load: a complete stream fed to the loader in chunks (64 KiB: a typical data_fd
//         write; 4 KiB: small writes), pages checksummed and copied into device memory.
//   Engine: COPY_TO_DEV / FILL / HASH descriptors through the simulator's fake IOMMU.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstring>
#include <random>

#include "sim.h"
#include "tools/guest/descriptors.h"
#include "tools/guest/sim_port.h"

namespace {

namespace guest = mdevmig::guest;
using mdevmig::vendor_sim::SimDevice;

void randomize(uint8_t* p, uint64_t n) {
  std::mt19937_64 rng(42);
  for (uint64_t i = 0; i + 8 <= n; i += 8) {
    uint64_t v = rng();
    std::memcpy(p + i, &v, 8);
  }
}

void BM_Save(benchmark::State& state) {
  const uint64_t mem = uint64_t(state.range(0)) << 20;
  SimDevice dev(mem);
  randomize(dev.mem(), mem);
  std::vector<uint8_t> rec(MDEVMIG_STREAM_PAGES_SIZE(MDEVMIG_REC_PAGES_MAX));
  const uint64_t npages = mem >> MDEVMIG_PAGE_SHIFT;
  for (auto _ : state) {
    uint64_t bytes = mdevmig_stream_put_compat(dev.model(), rec.data(), rec.size());
    for (uint64_t p = 0; p < npages; p += MDEVMIG_REC_PAGES_MAX)
      bytes +=
          mdevmig_stream_put_pages(dev.model(), p, MDEVMIG_REC_PAGES_MAX, rec.data(), rec.size());
    bytes += mdevmig_stream_put_state(dev.model(), rec.data(), rec.size());
    bytes += mdevmig_stream_put_end(rec.data(), rec.size());
    benchmark::DoNotOptimize(bytes);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(mem));
}
BENCHMARK(BM_Save)->Arg(16)->Arg(64)->Unit(benchmark::kMillisecond);

void BM_Load(benchmark::State& state) {
  const uint64_t mem = uint64_t(state.range(0)) << 20;
  const size_t chunk = size_t(state.range(1));
  SimDevice src(mem);
  randomize(src.mem(), mem);
  const std::vector<uint8_t> stream = src.save();
  SimDevice dst(mem);
  std::vector<uint8_t> recbuf(MDEVMIG_LOADER_BUF_SIZE);
  for (auto _ : state) {
    mdevmig_loader ld;
    mdevmig_loader_init(&ld, dst.model(), recbuf.data(), recbuf.size());
    for (size_t at = 0; at < stream.size(); at += chunk)
      mdevmig_loader_feed(&ld, stream.data() + at, std::min(chunk, stream.size() - at));
    if (mdevmig_loader_finish(&ld)) state.SkipWithError("load failed");
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(mem));
}
BENCHMARK(BM_Load)
    ->Args({16, 64 << 10})
    ->Args({64, 64 << 10})
    ->Args({64, 4 << 10})
    ->Unit(benchmark::kMillisecond);

void BM_Engine(benchmark::State& state) {
  const uint64_t mem = 16 << 20;
  const uint64_t buf = 0x40000000;
  SimDevice dev(mem);
  dev.iommu().map(buf, mem);
  randomize(dev.iommu().translate(buf, mem), mem);
  guest::SimRing drv(dev);
  mdevmig_dma_desc d;
  switch (state.range(0)) {
    case MDEVMIG_DMA_OP_COPY_TO_DEV:
      d = guest::copy_to_dev(buf, 0, mem);
      break;
    case MDEVMIG_DMA_OP_FILL:
      d = guest::fill(0, mem, 0x0123456789abcdefull);
      break;
    default:
      d = guest::hash(0, mem, buf);
      break;
  }
  for (auto _ : state) {
    drv.submit(d);
    dev.run_to_idle();
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(mem));
}
BENCHMARK(BM_Engine)
    ->ArgName("op")
    ->Arg(MDEVMIG_DMA_OP_COPY_TO_DEV)
    ->Arg(MDEVMIG_DMA_OP_FILL)
    ->Arg(MDEVMIG_DMA_OP_HASH)
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
