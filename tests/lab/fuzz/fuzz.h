// uapi_fuzz_lab: random, seed-reproducible sequences of hostile operations against
// the real mdevmig.ko in the lab (VFIO device ioctls, regions, mmap, migration data_fds,
// sysfs, guest-side DMA chaos, several threads at once).
//
// A sequence is a plain list of operations with their arguments, generated from one
// 64-bit seed; the executor reads only those arguments, so a sequence printed as text
// (a case file) replays without the generator, and a seed replays as long as the
// generator (kGeneratorVersion) is unchanged.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mdevmig::fuzz {

/// Workers per phase at most (each gets its own scratch memory).
inline constexpr int kMaxThreads = 8;

/// Bumped whenever generate() turns a seed into different operations.
inline constexpr int kGeneratorVersion = 1;

/// Operations a worker thread runs (concurrently with the other workers of the phase).
enum class Kind : uint16_t {
  kGetInfo,      // VFIO_DEVICE_GET_INFO, mutated argsz
  kRegionInfo,   // VFIO_DEVICE_GET_REGION_INFO, any index/argsz, capability chain checked
  kIrqInfo,      // VFIO_DEVICE_GET_IRQ_INFO
  kSetIrqs,      // VFIO_DEVICE_SET_IRQS, any index/flags/start/count/data
  kReset,        // VFIO_DEVICE_RESET
  kFeature,      // VFIO_DEVICE_FEATURE, any feature/flags/argsz/payload
  kMigState,     // MIG_DEVICE_STATE SET (biased to valid states), data_fd kept
  kLogStart,     // DMA_LOGGING_START with random ranges and page size
  kLogReport,    // DMA_LOGGING_REPORT into a guarded bitmap
  kLogStop,      // DMA_LOGGING_STOP
  kDataRead,     // read() of a data_fd
  kDataWrite,    // write() of a data_fd: saved stream bytes, mutated, or junk
  kDataClose,    // close() of a data_fd
  kDataIoctl,    // VFIO_MIG_GET_PRECOPY_INFO (mutated) or a random ioctl on a data_fd
  kRegionRead,   // pread at any region/offset/size
  kRegionWrite,  // pwrite at any region/offset/size
  kV1,           // the v1 migration region's registers and data section
  kMmap,         // mmap of BAR2 / the v1 region (any offset, length, prot, flags)
  kTouch,        // read or write pages of a mapping (SIGBUS/SIGSEGV caught)
  kMprotect,     // mprotect part of a mapping
  kMunmap,       // munmap part of a mapping
  kRwViaMap,     // pread/pwrite of a region with a user buffer inside a mapping
  kSysfs,        // mode, force_trapped, dirty_pages, reads of the other attributes
  kBar0,         // a register write (guest chaos)
  kConfig,       // a config space write (command, MSI, BARs, anything)
  kRing,         // program the ring (base, size) and the engine
  kDescs,        // write descriptors into the ring and ring the doorbell
  kDmaRemap,     // unmap / remap the guest buffer in the type1 container
  kBadIoctl,     // random ioctl numbers on the device fd
  kCount
};

/// Operations between phases, on the main thread, while no worker runs.
enum class GlobalKind : uint16_t {
  kReopen,      // close everything, reopen; previous opener's data must be gone
  kSecondFd,    // a second device fd from the group, used and closed
  kRemoveOpen,  // remove the instance while it is open, then close (ends the sequence)
  kSimAdd,      // sim_add with any value
  kSimRemove,   // sim_remove of a fuzz parent, a busy parent, or garbage
  kCreate,      // create instances (fuzz parents, garbage UUIDs, duplicates)
  kRemove,      // remove instances created by kCreate
  kCount
};

struct Op {
  Kind kind = Kind::kGetInfo;
  std::array<uint64_t, 6> a{};
};

struct GlobalOp {
  GlobalKind kind = GlobalKind::kReopen;
  std::array<uint64_t, 6> a{};
};

struct Phase {
  std::vector<std::vector<Op>> threads;  ///< one op list per worker thread
  std::optional<GlobalOp> after;         ///< runs once the workers are done
};

struct Sequence {
  uint64_t seed = 0;
  std::string type = "quarter";  ///< mdev type of the instance on mdevmig_sim0
  std::vector<Phase> phases;
};

/// The sequence of `seed` (deterministic for a given kGeneratorVersion).
Sequence generate(uint64_t seed, int max_threads);

const char* kind_name(Kind k);
const char* global_kind_name(GlobalKind k);

/// A case file: "seed", "type", "phase", "t<N> <op> <6 hex args>", "g <op> <6 hex args>";
/// '#' starts a comment.
std::string to_text(const Sequence& s);
/// Parses to_text() output; on error sets `err` and returns nullopt.
std::optional<Sequence> parse(const std::string& text, std::string* err);
/// One op line as in to_text() (for replay logs).
std::string op_text(int thread, const Op& op);
std::string global_op_text(const GlobalOp& op);

/// splitmix64: the seed mixer used everywhere (master seed -> sequence seeds).
inline uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

/// A small deterministic PRNG (xoshiro256**) seeded through splitmix64.
class Rng {
 public:
  explicit Rng(uint64_t seed) {
    for (auto& w : s_) w = seed = mix64(seed);
  }
  uint64_t next() {
    const uint64_t r = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return r;
  }
  /// Uniform in [0, n) (n > 0).
  uint64_t below(uint64_t n) { return n ? next() % n : 0; }
  /// True with probability pct/100.
  bool chance(unsigned pct) { return below(100) < pct; }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::array<uint64_t, 4> s_{};
};

/// Boundary-biased values: small numbers, powers of two and their neighbours, all-ones.
uint64_t interesting(Rng& r);

}  // namespace mdevmig::fuzz
