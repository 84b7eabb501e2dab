// Kernel-side figures, run inside the lab:
//   BAR2 sequential write/read through each access mode, against memcpy on ordinary
//   memory in the same guest; DMA engine throughput (copy, checksum); save and resume
//   throughput through the v2 data_fd and the v1 region, against memcpy of the same
//   bytes, and the parts of a save (its copies, XXH64) timed apart; CPU writes on BAR2
//   sustained over a pre-copy pass in a hot set, tracked against passthrough and memory;
//   STOP_COPY bytes after pre-copy for a given dirty fraction.
// Run: tools/lab/lab.sh --kmod-dir build/dev/kmod -- tests/lab/run-group.sh
//        build/dev/tests/bench/lab/kernel_bench --benchmark_min_time=0.5
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <linux/mdevmig.h>
#include <linux/vfio.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <vector>

#include <benchmark/benchmark.h>
#include <xxhash.h>

#include "common/dma.h"
#include "common/sysfs.h"
#include "migration/vfio/mapping.h"
#include "migration/vfio/mdev.h"

namespace mdevmig::lab {
namespace {

using vfio::MigState;

constexpr uint64_t kSize = 16u << 20;  // a quarter of the default sim parent
constexpr uint32_t kV1 = VFIO_PCI_NUM_REGIONS;

struct Bench {
  std::string uuid[2];
  std::optional<vfio::OpenMdev> dev[2];
  std::optional<vfio::Mapping> bar2[2];
  std::optional<vfio::Mapping> guest;
};
Bench* g = nullptr;

void fail(benchmark::State& state, const std::string& what) { state.SkipWithError(what.c_str()); }

int set_mode(int i, const char* mode) {
  return write_file("/sys/bus/mdev/devices/" + g->uuid[i] + "/mdevmig/mode", mode);
}

// ---- BAR2 bandwidth --------------------------------------------------------------------

void BM_Memcpy(benchmark::State& state) {
  std::vector<uint8_t> src(kSize, 1), dst(kSize);
  const bool write = state.range(0);
  for (auto _ : state) {
    write ? std::memcpy(dst.data(), src.data(), kSize) : std::memcpy(src.data(), dst.data(), kSize);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * kSize);
}
BENCHMARK(BM_Memcpy)->ArgName("write")->Arg(1)->Arg(0)->UseRealTime();

// Minor faults this thread has taken (each BAR2 fault that maps counts as one).
long minor_faults() {
  rusage ru{};
  getrusage(RUSAGE_THREAD, &ru);
  return ru.ru_minflt;
}

int clear_dirty(int i) {
  return write_file("/sys/bus/mdev/devices/" + g->uuid[i] + "/mdevmig/dirty_pages", "clear");
}

// mode: 0 passthrough, 1 tracked first pass (just switched), 2 tracked re-armed pass,
// 3 passthrough first touch (mappings dropped before each pass by a mode switch).
void BM_Bar2Mmap(benchmark::State& state) {
  const int mode = state.range(0);
  const bool write = state.range(1);
  std::vector<uint8_t> buf(kSize, 7);
  auto* mem = static_cast<uint8_t*>(g->bar2[0]->data());
  set_mode(0, mode == 0 || mode == 3 ? "passthrough" : "tracked");
  std::memcpy(mem, buf.data(), kSize);  // populate mappings
  for (auto _ : state) {
    state.PauseTiming();
    if (mode == 1) set_mode(0, "passthrough"), set_mode(0, "tracked");
    if (mode == 2) clear_dirty(0);
    if (mode == 3) set_mode(0, "tracked"), set_mode(0, "passthrough");
    state.ResumeTiming();
    write ? std::memcpy(mem, buf.data(), kSize) : std::memcpy(buf.data(), mem, kSize);
    benchmark::ClobberMemory();
  }
  set_mode(0, "passthrough");
  state.SetBytesProcessed(state.iterations() * kSize);
}
BENCHMARK(BM_Bar2Mmap)
    ->ArgNames({"mode", "write"})
    ->Args({0, 1})
    ->Args({0, 0})
    ->Args({1, 1})
    ->Args({1, 0})
    ->Args({2, 1})
    ->Args({3, 1})
    ->Args({3, 0})
    ->UseRealTime();

// Steady state between two harvests: a pass rewrites `pct`% of the pages (whole pages,
// spread evenly) and, if `sweep`, first reads all of BAR2. Tracked passes start from a
// re-arm (dirty_pages=clear, untimed; its cost is the counter rearm_us); passthrough
// passes run the same accesses with nothing re-armed. Bytes are the bytes accessed.
void BM_Bar2Steady(benchmark::State& state) {
  const bool tracked = state.range(0);
  const int pct = state.range(1);
  const bool sweep = state.range(2);
  const uint64_t pages = kSize / 4096, step = 100 / pct;
  std::vector<uint8_t> buf(kSize, 5);
  auto* mem = static_cast<uint8_t*>(g->bar2[0]->data());
  set_mode(0, tracked ? "tracked" : "passthrough");
  std::memcpy(mem, buf.data(), kSize);  // populate mappings
  double rearm_s = 0;
  long faults = 0;
  uint8_t v = 0;
  for (auto _ : state) {
    state.PauseTiming();
    if (tracked) {
      auto t0 = std::chrono::steady_clock::now();
      clear_dirty(0);
      rearm_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    std::memset(buf.data(), ++v, 4096);
    faults -= minor_faults();
    state.ResumeTiming();
    if (sweep) std::memcpy(buf.data() + 4096, mem, kSize - 4096);
    for (uint64_t p = 0; p < pages; p += step) std::memcpy(mem + p * 4096, buf.data(), 4096);
    benchmark::ClobberMemory();
    faults += minor_faults();
  }
  if (tracked) {
    auto dirty = read_file("/sys/bus/mdev/devices/" + g->uuid[0] + "/mdevmig/dirty_pages");
    state.counters["dirty_pages"] = dirty ? std::stod(*dirty) : -1;  // the last pass's
  }
  set_mode(0, "passthrough");
  state.counters["rearm_us"] = state.iterations() ? rearm_s * 1e6 / state.iterations() : 0;
  state.counters["faults"] = state.iterations() ? double(faults) / state.iterations() : 0;
  state.SetBytesProcessed(state.iterations() *
                          ((sweep ? kSize - 4096 : 0) + (pages + step - 1) / step * 4096));
}
BENCHMARK(BM_Bar2Steady)
    ->ArgNames({"tracked", "pct", "sweep"})
    ->ArgsProduct({{0, 1}, {1, 10}, {0, 1}})
    ->UseRealTime();

// A workload writing at full speed over a whole pre-copy pass: for `ms` milliseconds the
// CPU writes 64-byte lines at random offsets within a hot set of `pct`% of the pages
// (spread evenly, as in BM_Bar2Steady), then the pass ends with a harvest (untimed:
// dirty_pages=clear in tracked mode, nothing otherwise). mode 0: BAR2 in passthrough,
// 1: BAR2 tracked, 2: ordinary memory of the same size (the guest's own speed). Bytes
// are the bytes written; "faults" and "dirty_pages" are per pass.
void BM_Bar2Sustained(benchmark::State& state) {
  const int mode = state.range(0);
  const int pct = state.range(1);
  const auto interval = std::chrono::milliseconds(state.range(2));
  const uint64_t pages = kSize / 4096, step = 100 / pct, hot = (pages + step - 1) / step;
  std::vector<uint8_t> ram(mode == 2 ? kSize : 0, 1);
  std::vector<uint8_t> buf(kSize, 9);
  auto* mem = mode == 2 ? ram.data() : static_cast<uint8_t*>(g->bar2[0]->data());
  if (mode != 2) set_mode(0, mode == 1 ? "tracked" : "passthrough");
  std::memcpy(mem, buf.data(), kSize);  // populate mappings
  alignas(64) uint8_t line[64];
  std::memset(line, 0x3c, sizeof line);
  uint64_t x = 0x9e3779b97f4a7c15ull;
  auto pass = [&] {
    uint64_t writes = 0;
    const auto end = std::chrono::steady_clock::now() + interval;
    do {
      for (int i = 0; i < 1024; ++i) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;  // xorshift64
        const uint64_t off = (x % hot) * step * 4096 + (x >> 40) % 64 * 64;
        line[0] = static_cast<uint8_t>(x);
        std::memcpy(mem + off, line, sizeof line);
      }
      writes += 1024;
      benchmark::ClobberMemory();
    } while (std::chrono::steady_clock::now() < end);
    return writes;
  };
  // Every pass boundary flushes this CPU's TLB in every mode, as the harvest does in
  // tracked mode (an mprotect of 64 pages is a full flush on x86): under TCG the
  // emulated TLB is resized only at a flush, so without this the modes would run with
  // differently sized TLBs and the one that flushes would win.
  const size_t scratch_len = 64 * 4096;
  void* scratch =
      ::mmap(nullptr, scratch_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (scratch == MAP_FAILED) return fail(state, "mmap scratch");
  std::memset(scratch, 1, scratch_len);
  double rearm_s = 0;
  auto boundary = [&] {
    if (mode == 1) {
      auto t0 = std::chrono::steady_clock::now();
      clear_dirty(0);
      rearm_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    ::mprotect(scratch, scratch_len, PROT_READ);
    ::mprotect(scratch, scratch_len, PROT_READ | PROT_WRITE);
  };
  for (int warm = 0; warm < 2; ++warm) boundary(), pass();  // the TLB settles
  rearm_s = 0;
  uint64_t writes = 0;
  long faults = 0;
  for (auto _ : state) {
    state.PauseTiming();
    boundary();
    faults -= minor_faults();
    state.ResumeTiming();
    writes += pass();
    faults += minor_faults();
  }
  ::munmap(scratch, scratch_len);
  if (mode == 1) {
    auto dirty = read_file("/sys/bus/mdev/devices/" + g->uuid[0] + "/mdevmig/dirty_pages");
    state.counters["dirty_pages"] = dirty ? std::stod(*dirty) : -1;  // the last pass's
    state.counters["rearm_us"] = state.iterations() ? rearm_s * 1e6 / state.iterations() : 0;
  }
  if (mode != 2) set_mode(0, "passthrough");
  state.counters["faults"] = state.iterations() ? double(faults) / state.iterations() : 0;
  state.SetBytesProcessed(static_cast<int64_t>(writes * sizeof line));
}
BENCHMARK(BM_Bar2Sustained)
    ->ArgNames({"mode", "pct", "ms"})
    ->ArgsProduct({{2, 0, 1}, {1, 10}, {100}})
    ->Iterations(10)
    ->UseRealTime();
BENCHMARK(BM_Bar2Sustained)
    ->ArgNames({"mode", "pct", "ms"})
    ->ArgsProduct({{2, 0, 1}, {1, 10}, {1000}})
    ->Iterations(3)
    ->UseRealTime();

void BM_Bar2Trapped(benchmark::State& state) {
  const bool write = state.range(0);
  std::vector<uint8_t> buf(1u << 20, 3);
  const auto& dev = g->dev[0]->device;
  for (auto _ : state) {
    for (uint64_t off = 0; off < kSize; off += buf.size()) {
      auto r = write ? dev.write(kBar2, off, std::as_bytes(std::span(buf)))
                     : dev.read(kBar2, off, std::as_writable_bytes(std::span(buf)));
      if (!r.ok()) return fail(state, r.error().message());
    }
  }
  state.SetBytesProcessed(state.iterations() * kSize);
}
BENCHMARK(BM_Bar2Trapped)->ArgName("write")->Arg(1)->Arg(0)->UseRealTime();

// ---- DMA engine --------------------------------------------------------------------------

void BM_DmaEngine(benchmark::State& state) {
  const uint32_t op = state.range(0);
  const uint64_t len = 2u << 20;
  auto* guest = static_cast<uint8_t*>(g->guest->data());
  DmaRig rig(g->dev[0]->device, guest);
  rig.program(false);
  for (auto _ : state) {
    uint32_t slot = op == MDEVMIG_DMA_OP_HASH ? rig.submit(desc(op, 0, kIova + kDataOff, len))
                                              : rig.submit(desc(op, kIova + kDataOff, 0, len));
    if (rig.wait(slot) != MDEVMIG_DMA_ST_OK) return fail(state, "descriptor failed");
  }
  state.SetBytesProcessed(state.iterations() * len);
  (void)g->dev[0]->device.reset();
}
BENCHMARK(BM_DmaEngine)
    ->ArgName("op")
    ->Arg(MDEVMIG_DMA_OP_COPY_TO_DEV)
    ->Arg(MDEVMIG_DMA_OP_HASH)
    ->UseRealTime();

// ---- save / resume -------------------------------------------------------------------------

std::vector<uint8_t> g_stream;

// keep 1: the stream is appended to g_stream (BM_ResumeV2 loads it); keep 0: each 1 MiB
// read lands in the same buffer, so only the module's work and the syscalls are timed.
void BM_SaveV2(benchmark::State& state) {
  const bool keep = state.range(0);
  const auto& dev = g->dev[0]->device;
  std::vector<uint8_t> buf(1u << 20);
  uint64_t bytes = 0;
  for (auto _ : state) {
    if (keep) g_stream.clear();
    bytes = 0;
    if (!dev.set_mig_state(MigState::kStop).ok()) return fail(state, "STOP");
    auto fd = dev.set_mig_state(MigState::kStopCopy);
    if (!fd.ok()) return fail(state, fd.error().message());
    ssize_t n;
    while ((n = ::read(fd.value().get(), buf.data(), buf.size())) > 0) {
      if (keep) g_stream.insert(g_stream.end(), buf.begin(), buf.begin() + n);
      bytes += n;
    }
    (void)dev.set_mig_state(MigState::kRunning);
  }
  state.SetBytesProcessed(state.iterations() * bytes);
  state.counters["stream_bytes"] = bytes;
}
BENCHMARK(BM_SaveV2)->ArgName("keep")->Arg(1)->Arg(0)->UseRealTime();

// The module's save work done in userspace on the same bytes, one 256 KiB record at a
// time (MDEVMIG_SAVE_PAGES pages): part 1 copies device memory into the record buffer,
// 2 hashes the record (XXH64, the libxxhash the tools link), 4 copies the record into
// a 1 MiB read buffer (the copy_to_user). The arg is a mask of the parts.
void BM_SaveParts(benchmark::State& state) {
  const int parts = state.range(0);
  constexpr uint64_t kRecord = 64 * 4096;
  std::vector<uint8_t> mem(kSize, 0x5a), rec(kRecord + 64), out(1u << 20);
  uint64_t h = 0;
  for (auto _ : state) {
    for (uint64_t off = 0; off < kSize; off += kRecord) {
      if (parts & 1) std::memcpy(rec.data() + 64, mem.data() + off, kRecord);
      const uint8_t* payload = parts & 1 ? rec.data() + 64 : mem.data() + off;
      if (parts & 2) h ^= XXH64(payload, kRecord, 0);
      if (parts & 4) std::memcpy(out.data() + off % out.size(), payload, kRecord);
    }
    benchmark::DoNotOptimize(h);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * kSize);
}
BENCHMARK(BM_SaveParts)->ArgName("parts")->Arg(1)->Arg(4)->Arg(5)->Arg(2)->Arg(7)->UseRealTime();

// What a copy of 16 MiB in 256 KiB pieces costs in this guest by how it is done: 0 glibc
// memcpy, 1 `rep movsb` (what the kernel's memcpy and copy_to_user use on a CPU with
// ERMS/FSRM), 2 `rep movsq`, 3 glibc memcpy of the 16 MiB in one call.
void BM_CopyKinds(benchmark::State& state) {
  const int kind = state.range(0);
  constexpr uint64_t kPiece = 64 * 4096;
  std::vector<uint8_t> src(kSize, 0x5a), dst(kind == 3 ? kSize : kPiece);
  for (auto _ : state) {
    if (kind == 3) {
      std::memcpy(dst.data(), src.data(), kSize);
    } else {
      for (uint64_t off = 0; off < kSize; off += kPiece) {
        void* d = dst.data();
        const void* s = src.data() + off;
        size_t n = kind == 2 ? kPiece / 8 : kPiece;
        if (kind == 0) std::memcpy(d, s, kPiece);
        if (kind == 1) asm volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
        if (kind == 2) asm volatile("rep movsq" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
      }
    }
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * kSize);
}
BENCHMARK(BM_CopyKinds)->ArgName("kind")->DenseRange(0, 3)->UseRealTime();

void BM_ResumeV2(benchmark::State& state) {
  const auto& dev = g->dev[1]->device;
  for (auto _ : state) {
    (void)dev.set_mig_state(MigState::kStop);
    auto fd = dev.set_mig_state(MigState::kResuming);
    if (!fd.ok()) return fail(state, fd.error().message());
    for (size_t off = 0; off < g_stream.size(); off += 1u << 20) {
      size_t n = std::min<size_t>(1u << 20, g_stream.size() - off);
      if (::write(fd.value().get(), g_stream.data() + off, n) != static_cast<ssize_t>(n))
        return fail(state, "write");
    }
    if (!dev.set_mig_state(MigState::kRunning).ok()) return fail(state, "commit");
  }
  state.SetBytesProcessed(state.iterations() * g_stream.size());
}
BENCHMARK(BM_ResumeV2)->UseRealTime();

template <typename T>
T v1_get(const vfio::Device& d, uint64_t off) {
  auto r = d.read_as<T>(kV1, off);
  return r.ok() ? r.value() : T{};
}

// Saves through the v1 region (optionally after pre-copy with `dirty_pct` of the pages
// rewritten before stop-and-copy); returns {total bytes, stop-and-copy bytes}.
std::pair<uint64_t, uint64_t> save_v1(const vfio::Device& d, uint8_t* bar2, int dirty_pct,
                                      bool precopy, std::vector<uint8_t>* out) {
  auto data = d.mmap_region(kV1, 0);
  if (!data.ok()) return {0, 0};
  auto* p = static_cast<uint8_t*>(data.value().data());
  auto chunk = [&] {
    v1_get<uint64_t>(d, offsetof(vfio_device_migration_info, data_offset));
    uint64_t n = v1_get<uint64_t>(d, offsetof(vfio_device_migration_info, data_size));
    if (out) out->insert(out->end(), p, p + n);
    return n;
  };
  uint64_t total = 0;
  auto state = [&](uint32_t s) {
    (void)d.write_as(kV1, offsetof(vfio_device_migration_info, device_state), s);
  };
  if (precopy) {
    state(VFIO_DEVICE_STATE_V1_RUNNING | VFIO_DEVICE_STATE_V1_SAVING);
    while (v1_get<uint64_t>(d, offsetof(vfio_device_migration_info, pending_bytes)) > 0) {
      uint64_t n = chunk();
      total += n;
      if (!n) break;
    }
    const uint64_t pages = kSize / 4096;
    for (uint64_t i = 0; i < pages * dirty_pct / 100; ++i)
      bar2[(i * 100 / dirty_pct) % pages * 4096] ^= 1;
  }
  state(VFIO_DEVICE_STATE_V1_SAVING);
  uint64_t stopcopy = 0;
  while (v1_get<uint64_t>(d, offsetof(vfio_device_migration_info, pending_bytes)) > 0) {
    uint64_t n = chunk();
    if (!n) break;
    stopcopy += n;
  }
  state(0);
  state(VFIO_DEVICE_STATE_V1_RUNNING);
  return {total + stopcopy, stopcopy};
}

void BM_SaveV1(benchmark::State& state) {
  uint64_t bytes = 0;
  std::vector<uint8_t> out;
  for (auto _ : state) {
    out.clear();
    bytes = save_v1(g->dev[0]->device, nullptr, 0, false, &out).first;
    if (!bytes) return fail(state, "v1 save");
  }
  state.SetBytesProcessed(state.iterations() * bytes);
}
BENCHMARK(BM_SaveV1)->UseRealTime();

void BM_ResumeV1(benchmark::State& state) {
  const auto& d = g->dev[1]->device;
  auto data = d.mmap_region(kV1, 0);
  if (!data.ok()) return fail(state, "mmap v1 data");
  auto* p = static_cast<uint8_t*>(data.value().data());
  for (auto _ : state) {
    (void)d.write_as(kV1, offsetof(vfio_device_migration_info, device_state),
                     uint32_t{VFIO_DEVICE_STATE_V1_RESUMING});
    for (size_t off = 0; off < g_stream.size(); off += 512u << 10) {
      size_t n = std::min<size_t>(512u << 10, g_stream.size() - off);
      v1_get<uint64_t>(d, offsetof(vfio_device_migration_info, data_offset));
      std::memcpy(p, g_stream.data() + off, n);
      if (!d.write_as(kV1, offsetof(vfio_device_migration_info, data_size), uint64_t{n}).ok())
        return fail(state, "data_size");
    }
    if (!d.write_as(kV1, offsetof(vfio_device_migration_info, device_state),
                    uint32_t{VFIO_DEVICE_STATE_V1_RUNNING})
             .ok())
      return fail(state, "commit");
  }
  state.SetBytesProcessed(state.iterations() * g_stream.size());
}
BENCHMARK(BM_ResumeV1)->UseRealTime();

// Not a timing: STOP_COPY bytes after a full pre-copy pass with `dirty %` of pages
// rewritten, against a save without pre-copy (dirty = -1).
void BM_StopCopyBytes(benchmark::State& state) {
  const int pct = state.range(0);
  std::pair<uint64_t, uint64_t> r{};
  auto* mem = static_cast<uint8_t*>(g->bar2[0]->data());
  for (auto _ : state) r = save_v1(g->dev[0]->device, mem, pct < 0 ? 0 : pct, pct >= 0, nullptr);
  state.counters["stopcopy_bytes"] = r.second;
  state.counters["total_bytes"] = r.first;
}
BENCHMARK(BM_StopCopyBytes)
    ->ArgName("dirty_pct")
    ->Arg(-1)
    ->Arg(1)
    ->Arg(10)
    ->Arg(50)
    ->Iterations(1)
    ->UseRealTime();

}  // namespace
}  // namespace mdevmig::lab

int main(int argc, char** argv) {
  using namespace mdevmig::lab;
  if (!in_lab()) {
    std::fprintf(stderr, "kernel_bench: needs the lab (tools/lab/lab.sh)\n");
    return 1;
  }
  Bench b;
  g = &b;
  for (int i = 0; i < 2; ++i) {
    b.uuid[i] = random_uuid();
    if (write_file(type_dir("mdevmig_sim0", "quarter") + "/create", b.uuid[i]) != 0) return 1;
    auto m = mdevmig::vfio::open_mdev(b.uuid[i]);
    if (!m.ok()) {
      std::fprintf(stderr, "%s\n", m.error().message().c_str());
      return 1;
    }
    b.dev[i].emplace(std::move(m.value()));
    auto map = b.dev[i]->device.mmap_region(kBar2, 0);
    if (!map.ok()) return 1;
    b.bar2[i].emplace(std::move(map.value()));
    std::memset(b.bar2[i]->data(), 0x5a, kSize);
  }
  auto guest = mdevmig::vfio::Mapping::anonymous(kGuestSize);
  if (!guest.ok() ||
      !b.dev[0]
           ->container
           .map_dma(kIova, guest.value().data(), kGuestSize, mdevmig::vfio::DmaAccess::kReadWrite)
           .ok())
    return 1;
  b.guest.emplace(std::move(guest.value()));
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  b.bar2[0].reset();
  b.bar2[1].reset();
  b.dev[0].reset();
  b.dev[1].reset();
  for (auto& u : b.uuid) write_file("/sys/bus/mdev/devices/" + u + "/remove", "1");
  return 0;
}
