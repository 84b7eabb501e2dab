// The generator (seed -> sequence) and the case-file text format.
#include <linux/vfio.h>

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "fuzz/fuzz.h"

namespace mdevmig::fuzz {
namespace {

struct Weighted {
  Kind kind;
  unsigned weight;
};

// Heavier weights on the paths with the most kernel state behind them.
constexpr Weighted kWeights[] = {
    {Kind::kGetInfo, 2},   {Kind::kRegionInfo, 4}, {Kind::kIrqInfo, 2},    {Kind::kSetIrqs, 8},
    {Kind::kReset, 3},     {Kind::kFeature, 5},    {Kind::kMigState, 10},  {Kind::kLogStart, 4},
    {Kind::kLogReport, 5}, {Kind::kLogStop, 2},    {Kind::kDataRead, 8},   {Kind::kDataWrite, 8},
    {Kind::kDataClose, 3}, {Kind::kDataIoctl, 3},  {Kind::kRegionRead, 6}, {Kind::kRegionWrite, 6},
    {Kind::kV1, 10},       {Kind::kMmap, 4},       {Kind::kTouch, 8},      {Kind::kMprotect, 2},
    {Kind::kMunmap, 2},    {Kind::kRwViaMap, 3},   {Kind::kSysfs, 4},      {Kind::kBar0, 6},
    {Kind::kConfig, 3},    {Kind::kRing, 4},       {Kind::kDescs, 8},      {Kind::kDmaRemap, 2},
    {Kind::kBadIoctl, 1},
};
static_assert(std::size(kWeights) == static_cast<size_t>(Kind::kCount),
              "every Kind needs a weight");

constexpr const char* kKindNames[] = {
    "get_info",   "region_info", "irq_info",    "set_irqs",     "reset",     "feature",
    "mig_state",  "log_start",   "log_report",  "log_stop",     "data_read", "data_write",
    "data_close", "data_ioctl",  "region_read", "region_write", "v1",        "mmap",
    "touch",      "mprotect",    "munmap",      "rw_via_map",   "sysfs",     "bar0",
    "config",     "ring",        "descs",       "dma_remap",    "bad_ioctl",
};
static_assert(std::size(kKindNames) == static_cast<size_t>(Kind::kCount));

constexpr const char* kGlobalNames[] = {
    "reopen", "second_fd", "remove_open", "sim_add", "sim_remove", "create", "remove",
};
static_assert(std::size(kGlobalNames) == static_cast<size_t>(GlobalKind::kCount));

Kind pick_kind(Rng& r) {
  unsigned total = 0;
  for (const auto& w : kWeights) total += w.weight;
  uint64_t x = r.below(total);
  for (const auto& w : kWeights) {
    if (x < w.weight) return w.kind;
    x -= w.weight;
  }
  return Kind::kGetInfo;
}

// An argsz: 0..3 select "exact", "header only", "exact - 1", "exact + 4 KiB" in the
// executor; anything else is used as it is.
uint64_t argsz_sel(Rng& r) {
  if (r.chance(55)) return 0;
  if (r.chance(50)) return r.below(4);
  return interesting(r);
}

// A length biased to small values, sometimes huge.
uint64_t length(Rng& r, uint64_t typical) {
  if (r.chance(60)) return r.below(typical + 1);
  if (r.chance(60)) return interesting(r) & 0x3fffff;
  return interesting(r);
}

Op make_op(Rng& r) {
  Op op;
  op.kind = pick_kind(r);
  auto& a = op.a;
  for (auto& v : a) v = r.next();  // defaults: raw randomness, narrowed below
  switch (op.kind) {
    case Kind::kGetInfo:
      a[0] = argsz_sel(r);
      break;
    case Kind::kRegionInfo:
    case Kind::kIrqInfo:
      a[0] = r.chance(85) ? r.below(12) : interesting(r);
      a[1] = argsz_sel(r);
      break;
    case Kind::kSetIrqs: {
      a[0] = r.chance(90) ? r.below(6) : interesting(r);
      static constexpr uint32_t kData[] = {VFIO_IRQ_SET_DATA_NONE, VFIO_IRQ_SET_DATA_BOOL,
                                           VFIO_IRQ_SET_DATA_EVENTFD};
      static constexpr uint32_t kAction[] = {VFIO_IRQ_SET_ACTION_MASK, VFIO_IRQ_SET_ACTION_UNMASK,
                                             VFIO_IRQ_SET_ACTION_TRIGGER};
      a[1] = kData[r.below(3)] | kAction[r.below(3)];
      if (r.chance(10)) a[1] = r.chance(50) ? interesting(r) : (a[1] | (1u << r.below(32)));
      a[2] = r.chance(80) ? r.below(5) : interesting(r);
      a[3] = r.chance(80) ? r.below(6) : interesting(r);
      a[4] = argsz_sel(r);
      break;
    }
    case Kind::kReset:
      break;
    case Kind::kFeature:
      a[0] = r.chance(85) ? r.below(12) : interesting(r);
      a[1] = (r.below(8) << 16) | (r.chance(15) ? interesting(r) & 0xffff : a[0] & 0xffff);
      if (r.chance(10)) a[1] = interesting(r);
      a[2] = argsz_sel(r);
      break;
    case Kind::kMigState:
      // Valid states (1..7 on 6.2+, 1..5 on 6.1) most of the time; ERROR and junk too.
      a[0] = r.chance(90) ? r.below(8) : interesting(r);
      a[1] = r.chance(85) ? 0 : argsz_sel(r);
      break;
    case Kind::kLogStart:
      a[0] = r.chance(70) ? (r.chance(50) ? 4096 : (1ull << (12 + r.below(10)))) : interesting(r);
      a[1] = r.chance(85) ? 1 + r.below(3) : interesting(r);
      a[3] = r.chance(85) ? 0 : argsz_sel(r);
      break;
    case Kind::kLogReport:
      a[0] = r.chance(60) ? r.below(8) : interesting(r);  // <8: an offset in pages into the guest
      a[1] = length(r, 4u << 20);
      a[2] = r.chance(70) ? (1ull << (12 + r.below(10))) : interesting(r);
      a[3] = r.below(16);  // bitmap placement
      a[4] = r.chance(85) ? 0 : argsz_sel(r);
      break;
    case Kind::kLogStop:
      a[0] = r.below(4);
      break;
    case Kind::kDataRead:
      a[1] = length(r, 300u << 10);
      a[2] = r.below(10);
      break;
    case Kind::kDataWrite:
      a[1] = r.below(8);
      a[3] = length(r, 300u << 10);
      break;
    case Kind::kDataClose:
      break;
    case Kind::kDataIoctl:
      a[1] = r.below(4);
      a[2] = argsz_sel(r);
      break;
    case Kind::kRegionRead:
    case Kind::kRegionWrite:
      a[0] = r.chance(90) ? r.below(11) : interesting(r);
      a[1] = r.chance(50) ? r.below(0x1000) : interesting(r);
      a[2] = r.chance(50) ? 1u << r.below(4) : length(r, 8192);
      a[4] = r.chance(85) ? 0 : r.below(4);
      a[5] = r.chance(90) ? 0 : r.below(4);
      break;
    case Kind::kV1:
      a[0] = r.below(9);
      a[1] = r.chance(80) ? r.below(8) : interesting(r);
      a[2] = r.chance(70) ? r.below(0x101000) : interesting(r);
      a[3] = length(r, 64u << 10);
      break;
    case Kind::kMmap:
      a[0] = r.chance(85) ? (r.chance(55) ? 2 : 9) : r.below(11);
      a[1] = r.chance(70) ? r.below(4) : (r.chance(50) ? r.below(0x1000) : interesting(r));
      a[2] = r.chance(75) ? 1 + r.below(64) : interesting(r);
      a[3] = r.below(8);
      a[4] = r.chance(90) ? 0 : 1;
      break;
    case Kind::kTouch:
      a[2] = r.below(3);
      break;
    case Kind::kMprotect:
    case Kind::kMunmap:
      a[2] = 1 + r.below(8);
      a[3] = r.below(8);
      break;
    case Kind::kRwViaMap:
      a[0] = r.chance(70) ? 2 : r.below(10);
      a[2] = length(r, 16384);
      a[4] = r.below(2);
      break;
    case Kind::kSysfs:
      a[0] = r.below(7);
      a[1] = r.below(8);
      break;
    case Kind::kBar0:
      a[0] = r.chance(70) ? (r.below(0x48) & ~3ull)
                          : (r.chance(50) ? 0x100 + (r.below(9) << 2) : interesting(r) & 0x1fff);
      a[1] = 1u << r.below(4);
      a[2] = r.chance(60) ? interesting(r) : r.next();
      break;
    case Kind::kConfig:
      a[0] = r.chance(70) ? (r.chance(50) ? r.below(0x40) : 0x40 + r.below(0x18))
                          : interesting(r) & 0x1ff;
      a[1] = 1 + r.below(4);
      a[2] = r.chance(50) ? interesting(r) : r.next();
      break;
    case Kind::kRing:
      a[0] = r.chance(80) ? r.below(64) : interesting(r);  // <64: 64 KiB steps into the guest
      a[1] = r.chance(80) ? 1u << r.below(13) : interesting(r);
      a[2] = r.chance(80) ? 1 : interesting(r) & 3;
      a[3] = r.chance(85);
      a[4] = r.chance(50);
      break;
    case Kind::kDescs:
      a[0] = 1 + (r.chance(80) ? r.below(8) : r.below(300));
      a[2] = r.below(6);
      break;
    case Kind::kDmaRemap:
      a[0] = r.below(5);
      a[1] = r.below(1024) << 12;
      a[2] = (1 + r.below(256)) << 12;
      break;
    case Kind::kBadIoctl:
      a[1] = r.below(3);
      break;
    case Kind::kCount:
      break;
  }
  return op;
}

GlobalOp make_global(Rng& r) {
  static constexpr struct {
    GlobalKind kind;
    unsigned weight;
  } kG[] = {{GlobalKind::kReopen, 10}, {GlobalKind::kSecondFd, 3},  {GlobalKind::kRemoveOpen, 1},
            {GlobalKind::kSimAdd, 2},  {GlobalKind::kSimRemove, 2}, {GlobalKind::kCreate, 3},
            {GlobalKind::kRemove, 2}};
  static_assert(std::size(kG) == static_cast<size_t>(GlobalKind::kCount));
  unsigned total = 0;
  for (const auto& g : kG) total += g.weight;
  uint64_t x = r.below(total);
  GlobalOp op;
  for (const auto& g : kG) {
    if (x < g.weight) {
      op.kind = g.kind;
      break;
    }
    x -= g.weight;
  }
  for (auto& v : op.a) v = r.next();
  op.a[0] = r.below(16);
  op.a[1] = r.below(16);
  return op;
}

}  // namespace

uint64_t interesting(Rng& r) {
  static constexpr uint64_t kTable[] = {0,
                                        1,
                                        2,
                                        3,
                                        4,
                                        7,
                                        8,
                                        15,
                                        16,
                                        31,
                                        32,
                                        63,
                                        64,
                                        127,
                                        128,
                                        255,
                                        256,
                                        511,
                                        4095,
                                        4096,
                                        4097,
                                        8191,
                                        8192,
                                        0x7fff,
                                        0xffff,
                                        0x10000,
                                        0x3ffff,
                                        0x40000,
                                        0xfffff,
                                        0x100000,
                                        0x101000,
                                        0x1fffff,
                                        0x200000,
                                        1u << 30,
                                        0x7fffffff,
                                        0x80000000,
                                        0xfffff000,
                                        0xfffffffe,
                                        0xffffffff,
                                        0x100000000ULL,
                                        1ULL << 40,
                                        1ULL << 44,
                                        1ULL << 48,
                                        1ULL << 52,
                                        0x7fffffffffffffffULL,
                                        0x8000000000000000ULL,
                                        0xfffffffffffff000ULL,
                                        0xfffffffffffffffeULL,
                                        ~0ULL};
  switch (r.below(4)) {
    case 0:
      return r.below(17);
    case 1:
      return kTable[r.below(std::size(kTable))];
    case 2: {
      uint64_t v = 1ULL << r.below(64);
      return v + static_cast<uint64_t>(static_cast<int64_t>(r.below(3)) - 1);
    }
    default:
      return r.next() >> r.below(64);
  }
}

Sequence generate(uint64_t seed, int max_threads) {
  Rng r(seed);
  Sequence s;
  s.seed = seed;
  static constexpr const char* kTypes[] = {"quarter", "eighth", "eighth", "half"};
  s.type = kTypes[r.below(std::size(kTypes))];
  const unsigned nphases = 1 + static_cast<unsigned>(r.below(4));
  for (unsigned p = 0; p < nphases; ++p) {
    Phase ph;
    unsigned nthreads = 1;
    if (max_threads > 1 && r.chance(40))
      nthreads = 2 + static_cast<unsigned>(r.below(max_threads - 1));
    ph.threads.resize(nthreads);
    for (auto& ops : ph.threads) {
      const unsigned n = 10 + static_cast<unsigned>(r.below(90));
      for (unsigned i = 0; i < n; ++i) ops.push_back(make_op(r));
    }
    if (p + 1 < nphases || r.chance(30)) ph.after = make_global(r);
    s.phases.push_back(std::move(ph));
  }
  return s;
}

const char* kind_name(Kind k) { return kKindNames[static_cast<size_t>(k)]; }
const char* global_kind_name(GlobalKind k) { return kGlobalNames[static_cast<size_t>(k)]; }

namespace {
std::string args_text(const std::array<uint64_t, 6>& a) {
  std::string out;
  char buf[24];
  for (uint64_t v : a) {
    std::snprintf(buf, sizeof buf, " %" PRIx64, v);
    out += buf;
  }
  return out;
}
}  // namespace

std::string op_text(int thread, const Op& op) {
  return "t" + std::to_string(thread) + " " + kind_name(op.kind) + args_text(op.a);
}

std::string global_op_text(const GlobalOp& op) {
  return std::string("g ") + global_kind_name(op.kind) + args_text(op.a);
}

std::string to_text(const Sequence& s) {
  std::ostringstream o;
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%016" PRIx64, s.seed);
  o << "seed " << buf << "\ntype " << s.type << "\n";
  for (const auto& ph : s.phases) {
    o << "phase\n";
    for (size_t t = 0; t < ph.threads.size(); ++t)
      for (const auto& op : ph.threads[t]) o << op_text(static_cast<int>(t), op) << "\n";
    if (ph.after) o << global_op_text(*ph.after) << "\n";
  }
  return o.str();
}

std::optional<Sequence> parse(const std::string& text, std::string* err) {
  Sequence s;
  std::istringstream in(text);
  std::string line;
  int lineno = 0;
  auto fail = [&](const std::string& why) {
    if (err) *err = "line " + std::to_string(lineno) + ": " + why;
    return std::nullopt;
  };
  while (std::getline(in, line)) {
    ++lineno;
    if (auto h = line.find('#'); h != std::string::npos) line.resize(h);
    std::istringstream l(line);
    std::string word;
    if (!(l >> word)) continue;
    if (word == "seed") {
      std::string v;
      l >> v;
      s.seed = std::strtoull(v.c_str(), nullptr, 0);
    } else if (word == "type") {
      l >> s.type;
    } else if (word == "phase") {
      s.phases.emplace_back();
    } else if (word[0] == 't' || word == "g") {
      if (s.phases.empty()) return fail("op before the first 'phase'");
      std::string name;
      l >> name;
      std::array<uint64_t, 6> a{};
      for (auto& v : a) {
        std::string hex;
        if (!(l >> hex)) return fail("an op needs 6 hex arguments");
        v = std::strtoull(hex.c_str(), nullptr, 16);
      }
      if (word == "g") {
        GlobalOp g;
        size_t k = 0;
        while (k < std::size(kGlobalNames) && name != kGlobalNames[k]) ++k;
        if (k == std::size(kGlobalNames)) return fail("unknown global op " + name);
        g.kind = static_cast<GlobalKind>(k);
        g.a = a;
        s.phases.back().after = g;
      } else {
        const int t = std::atoi(word.c_str() + 1);
        if (t < 0 || t >= kMaxThreads) return fail("thread index out of range");
        Op op;
        size_t k = 0;
        while (k < std::size(kKindNames) && name != kKindNames[k]) ++k;
        if (k == std::size(kKindNames)) return fail("unknown op " + name);
        op.kind = static_cast<Kind>(k);
        op.a = a;
        auto& threads = s.phases.back().threads;
        if (threads.size() <= static_cast<size_t>(t)) threads.resize(t + 1);
        threads[t].push_back(op);
      }
    } else {
      return fail("unknown keyword " + word);
    }
  }
  if (s.phases.empty()) return fail("no phase");
  return s;
}

}  // namespace mdevmig::fuzz
