// Save/restore pipeline throughput on the host (BENCHMARKS.md, "Userspace migration").
// There is no device on the host, so a synthetic Channel plays one: it hands out a
// multi-GiB stream from a pre-filled buffer (no copy), and on restore takes the bytes and
// drops them. Each pipeline is measured against a plain copy of the same bytes between the
// same endpoints with the same liburing writer/reader:
//   save:    device stream -> save file   vs   device stream -> file (raw bytes)
//   restore: save file -> device          vs   raw file -> device
// (restore maps the save file; verify_ms and load_ms are its two passes as it timed them)
// MDEVMIG_BENCH_BYTES sets the stream size (default 2 GiB; the CTest smoke run uses 64 MiB);
// MDEVMIG_BENCH_KEEP=1 keeps the files, so restores can be re-run alone; MDEVMIG_BENCH_DIR
// puts them elsewhere (default /tmp; /dev/shm takes the disk out of the measurement).
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "migration/engine/channel.h"
#include "migration/engine/savefile.h"
#include "migration/io/uring.h"

namespace mdevmig::bench {
namespace {

uint64_t stream_bytes() {
  const char* env = std::getenv("MDEVMIG_BENCH_BYTES");
  return env ? std::strtoull(env, nullptr, 0) : (2ull << 30);
}

constexpr std::size_t kChunk = 1u << 20;

const std::vector<std::byte>& source_buffer() {
  // 64 MiB of pseudo-random bytes, repeated to make the stream (incompressible, and
  // larger than the caches so the hashes work on memory, as with a real device).
  static const std::vector<std::byte> buf = [] {
    std::vector<std::byte> b(64u << 20);
    uint64_t x = 88172645463325252ull;
    for (std::size_t i = 0; i < b.size(); i += 8) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      std::memcpy(b.data() + i, &x, 8);
    }
    return b;
  }();
  return buf;
}

// A device that is only a stream: read() hands out `total` bytes, write() drops them.
class SyntheticChannel final : public engine::Channel {
 public:
  explicit SyntheticChannel(uint64_t total) : total_(total) {}
  schema::Channel kind() const override { return schema::Channel::kV2StopCopy; }
  Result<void> start_save(bool) override { return ok(); }
  Result<void> stop_copy() override { return ok(); }
  Result<std::span<const std::byte>> read(std::size_t max) override {
    const auto& b = source_buffer();
    const std::size_t n =
        static_cast<std::size_t>(std::min<uint64_t>({max, total_ - pos_, kChunk}));
    std::span<const std::byte> s(b.data() + pos_ % b.size(), n);
    pos_ += n;
    return s;
  }
  Result<uint64_t> pending() override { return total_ - pos_; }
  Result<void> finish_save(bool) override { return ok(); }
  Result<void> start_resume() override { return ok(); }
  Result<void> write(std::span<const std::byte> d) override {
    written_ += d.size();
    benchmark::DoNotOptimize(d.data());
    return ok();
  }
  Result<void> finish_resume(bool) override { return ok(); }
  engine::Recovery recover() override { return {}; }
  std::string state_name() override { return "synthetic"; }
  uint64_t written() const { return written_; }

 private:
  uint64_t total_;
  uint64_t pos_ = 0;
  uint64_t written_ = 0;
};

std::string path(const char* name) {
  const char* dir = std::getenv("MDEVMIG_BENCH_DIR");
  return std::string(dir ? dir : "/tmp") + "/mdevmig-bench-" + name;
}

void check(const Result<void>& r, benchmark::State& st) {
  if (!r.ok()) st.SkipWithError(r.error().message().c_str());
}

schema::DeviceIdentity identity() {
  schema::DeviceIdentity id;
  id.device_api = "vfio-pci";
  return id;
}

void BM_SaveWithChecksums(benchmark::State& st) {
  const uint64_t total = stream_bytes();
  for (auto _ : st) {
    SyntheticChannel ch(total);
    UniqueFd fd(::open(path("save").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    engine::SaveOptions opt;
    opt.chunk_size = kChunk;
    auto r = engine::save_to_file(ch, identity(), fd.get(), opt);
    if (!r.ok()) st.SkipWithError(r.error().message().c_str());
  }
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations() * total));
}

void BM_SavePlainCopy(benchmark::State& st) {
  const uint64_t total = stream_bytes();
  for (auto _ : st) {
    SyntheticChannel ch(total);
    UniqueFd fd(::open(path("raw").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    auto w = io::Writer::create(fd.get(), 0, {8, 1u << 20, "raw"});
    for (;;) {
      auto d = ch.read(kChunk);
      if (d->empty()) break;
      check(w->write(*d), st);
    }
    check(w->flush(), st);
  }
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations() * total));
}

void BM_RestoreWithChecksums(benchmark::State& st) {
  const uint64_t total = stream_bytes();
  double verify_s = 0, load_s = 0;  // the passes, as restore_from_file timed them
  for (auto _ : st) {
    SyntheticChannel ch(0);
    UniqueFd fd(::open(path("save").c_str(), O_RDONLY | O_CLOEXEC));
    engine::RestoreOptions opt;
    opt.verify_first = st.range(0) != 0;
    auto file = engine::FileScanner::open(fd.get());
    if (!file.ok()) {
      st.SkipWithError(file.error().message().c_str());
      break;
    }
    auto r = engine::restore_from_file(ch, identity(), *file, opt);
    if (!r.ok()) {
      st.SkipWithError(r.error().message().c_str());
      break;
    }
    verify_s += r->verify_seconds;
    load_s += r->restore_seconds;
    if (ch.written() != total) st.SkipWithError("short restore (run the save benchmark first)");
  }
  st.counters["verify_ms"] =
      benchmark::Counter(verify_s * 1000, benchmark::Counter::kAvgIterations);
  st.counters["load_ms"] = benchmark::Counter(load_s * 1000, benchmark::Counter::kAvgIterations);
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations() * total));
}

void BM_RestorePlainCopy(benchmark::State& st) {
  const uint64_t total = stream_bytes();
  for (auto _ : st) {
    SyntheticChannel ch(0);
    UniqueFd fd(::open(path("raw").c_str(), O_RDONLY | O_CLOEXEC));
    auto r = io::Reader::create(fd.get(), 0, {8, 1u << 20, "raw"});
    for (;;) {
      auto d = r->next(kChunk);
      if (!d.ok() || d->empty()) break;
      check(ch.write(*d), st);
    }
    if (ch.written() != total) st.SkipWithError("short copy");
  }
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations() * total));
}

// Order matters: the restores read what the saves wrote.
BENCHMARK(BM_SavePlainCopy)->Iterations(3)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_SaveWithChecksums)->Iterations(3)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_RestorePlainCopy)->Iterations(3)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_RestoreWithChecksums)
    ->Arg(0)
    ->Arg(1)
    ->ArgName("verify_first")
    ->Iterations(3)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace mdevmig::bench

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  if (std::getenv("MDEVMIG_BENCH_KEEP") == nullptr) {
    ::unlink(mdevmig::bench::path("save").c_str());
    ::unlink(mdevmig::bench::path("raw").c_str());
  }
  return 0;
}
