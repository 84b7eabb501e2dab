// Guest-memory pre-copy with and without leaving out unchanged pages (BENCHMARKS.md,
// "Skipping unchanged guest pages"): the engine's GuestPageSender sends the dirty pages
// of each pass as guestPages messages over a socketpair to a receiver thread that decodes
// them and applies them to its copy, as the destination does. Three workloads dirty the
// same share of pages per pass: "same" rewrites each page with the bytes it holds,
// "different" changes every dirtied page, "mix" does each to half. Per workload and mode:
// bytes on the wire, the sender's and the receiver's CPU time (thread clocks), wall time.
// After the last pass the receiver's copy must equal the source (else exit 1).
//
//   build/dev/tests/bench/migration/guest_skip_bench [MiB] [passes] [dirty%]
// (defaults 64 MiB, 10 passes, 10% of pages dirtied per pass; the first pass sends all)
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "migration/engine/guest_pages.h"
#include "migration/schema/codec.h"

namespace {

using namespace mdevmig;

constexpr uint64_t kPage = 4096;

double thread_cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

bool write_all(int fd, std::span<const std::byte> b) {
  while (!b.empty()) {
    const ssize_t n = ::write(fd, b.data(), b.size());
    if (n <= 0) return false;
    b = b.subspan(static_cast<std::size_t>(n));
  }
  return true;
}

bool read_all(int fd, std::byte* p, std::size_t n) {
  while (n > 0) {
    const ssize_t got = ::read(fd, p, n);
    if (got <= 0) return false;
    p += got;
    n -= static_cast<std::size_t>(got);
  }
  return true;
}

// The destination's side: whole messages, decoded (XXH3 checked) and applied.
struct Receiver {
  std::vector<std::byte>& mem;
  int fd;
  double cpu_s = 0;
  bool ok = true;

  void run() {
    const double c0 = thread_cpu_s();
    std::vector<uint64_t> words;
    for (;;) {
      std::vector<std::byte> head(8);
      if (!read_all(fd, head.data(), 8)) break;  // closed: done
      auto n = schema::frame_size(head, schema::kMaxFrameBytes);
      if (!n.ok()) {
        ok = false;
        break;
      }
      std::size_t have = 8;
      while (!n->has_value()) {  // a longer segment table
        head.resize(have + 8);
        if (!read_all(fd, head.data() + have, 8)) {
          ok = false;
          break;
        }
        have += 8;
        n = schema::frame_size(head, schema::kMaxFrameBytes);
      }
      if (!ok || !n.ok()) break;
      words.assign((**n + 7) / 8, 0);
      auto* bytes = reinterpret_cast<std::byte*>(words.data());
      std::memcpy(bytes, head.data(), have);
      if (!read_all(fd, bytes + have, **n - have)) {
        ok = false;
        break;
      }
      auto m = schema::decode_wire(std::span<const std::byte>(bytes, **n), kPage);
      if (!m.ok() || m->kind != schema::WireMessage::Kind::kGuestPages ||
          !engine::apply_guest_pages(mem, kPage, m->guest_pages).ok()) {
        ok = false;
        break;
      }
    }
    cpu_s = thread_cpu_s() - c0;
  }
};

enum class Kind { kSame, kDifferent, kMix };

struct Row {
  uint64_t dirtied = 0, sent = 0, skipped = 0, wire = 0;
  double send_cpu_s = 0, recv_cpu_s = 0, wall_s = 0;
  bool identical = false;
};

Row run(Kind kind, bool skip, uint64_t bytes, int passes, double dirty_share) {
  const uint64_t pages = bytes / kPage;
  std::mt19937_64 rng(42);
  std::vector<std::byte> src(bytes), dst(bytes);
  for (auto& w : std::span(reinterpret_cast<uint64_t*>(src.data()), bytes / 8)) w = rng();
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) std::abort();
  Receiver rx{dst, sv[1]};
  std::thread t([&] { rx.run(); });

  engine::GuestPageSender sender(src, kPage, skip);
  schema::Encoder enc;
  Row row;
  const auto sink = [&](std::span<const std::byte> m) -> Result<void> {
    row.wire += m.size();
    if (!write_all(sv[0], m)) return Error::make(EPIPE, "write", "receiver");
    return ok();
  };
  const auto t0 = std::chrono::steady_clock::now();
  const uint64_t per_pass = static_cast<uint64_t>(static_cast<double>(pages) * dirty_share);
  for (int pass = 0; pass <= passes; ++pass) {
    dirty::Bitmap dirty(pages);
    if (pass == 0) {
      dirty.set_all();
    } else {
      for (uint64_t i = 0; i < per_pass; ++i) {
        const uint64_t p = rng() % pages;
        dirty.set(p);
        std::byte* page = src.data() + p * kPage;
        const bool change = kind == Kind::kDifferent || (kind == Kind::kMix && (p & 1) != 0);
        // A store of the same bytes (what zeroing a zeroed page or an idempotent update
        // does), or a real change of one word.
        uint64_t w;
        std::memcpy(&w, page + (i % (kPage / 8)) * 8, 8);
        if (change) w = rng();
        std::memcpy(page + (i % (kPage / 8)) * 8, &w, 8);
      }
    }
    row.dirtied += dirty.count();
    const double c0 = thread_cpu_s();
    auto c = sender.send(dirty, static_cast<uint32_t>(pass + 1), 1u << 20, enc, sink);
    row.send_cpu_s += thread_cpu_s() - c0;
    if (!c.ok()) std::abort();
    row.sent += c->sent;
    row.skipped += c->skipped;
  }
  ::close(sv[0]);
  t.join();
  ::close(sv[1]);
  row.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  row.recv_cpu_s = rx.cpu_s;
  row.identical = rx.ok && std::memcmp(src.data(), dst.data(), bytes) == 0;
  return row;
}

}  // namespace

int main(int argc, char** argv) {
  const uint64_t mib = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 64;
  const int passes = argc > 2 ? std::atoi(argv[2]) : 10;
  const double share = (argc > 3 ? std::atof(argv[3]) : 10.0) / 100.0;
  if (mib == 0 || passes < 1 || share <= 0 || share > 1) {
    std::fprintf(stderr, "usage: %s [MiB] [passes] [dirty%%]\n", argv[0]);
    return 2;
  }
  std::printf("%llu MiB of guest memory, 1 full pass + %d passes of %.0f%% of pages dirtied\n",
              static_cast<unsigned long long>(mib), passes, share * 100);
  std::printf("%-9s %-4s %9s %9s %9s %10s %9s %9s %8s %s\n", "workload", "skip", "dirtied", "sent",
              "skipped", "wire_MiB", "send_cpu", "recv_cpu", "wall_s", "identical");
  int status = 0;
  for (auto [kind, name] :
       {std::pair{Kind::kSame, "same"}, std::pair{Kind::kDifferent, "different"},
        std::pair{Kind::kMix, "mix"}}) {
    for (bool skip : {false, true}) {
      const Row r = run(kind, skip, mib << 20, passes, share);
      std::printf(
          "%-9s %-4s %9llu %9llu %9llu %10.1f %8.3fs %8.3fs %8.3f %s\n", name, skip ? "on" : "off",
          static_cast<unsigned long long>(r.dirtied), static_cast<unsigned long long>(r.sent),
          static_cast<unsigned long long>(r.skipped), static_cast<double>(r.wire) / (1 << 20),
          r.send_cpu_s, r.recv_cpu_s, r.wall_s, r.identical ? "yes" : "NO");
      if (!r.identical) status = 1;
    }
  }
  return status;
}
