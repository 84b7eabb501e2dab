// The executor: runs a Sequence against a fresh instance of the real module.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "fuzz/fuzz.h"

namespace mdevmig::fuzz {

/// Counters and settings shared by every sequence of a run.
struct RunContext {
  std::atomic<uint64_t> syscalls{0};
  std::atomic<uint64_t> ops{0};
  std::atomic<uint64_t> skipped{0};
  bool log_ops = false;        ///< print every op before it runs (replay)
  std::set<std::string> skip;  ///< op names not executed (known bugs being fixed)
  /// Argument patterns of known, not yet fixed bugs that ops steer around, so a run can
  /// look for other bugs meanwhile: "intx-count0" (SET_IRQS INTx count 0 with data),
  /// "log-zero-length" (DMA logging ranges of length 0 or reaching 2^64),
  /// "error-state-set" (MIG_DEVICE_STATE SET while the device is in ERROR: a reset first),
  /// "v1-data-after-close" (the check that a reopen finds the v1 data section cleared).
  std::set<std::string> avoid;
  std::string parent = "mdevmig_sim0";
  std::mutex log_mu;  ///< serialises op logging between workers
  /// The op each worker is running (for the watchdog's report of a stuck sequence).
  std::array<std::atomic<const Op*>, kMaxThreads> current{};
};

/// Scratch memory one worker reuses across sequences: a data buffer and a bitmap area,
/// each followed by an inaccessible guard page.
class WorkerMemory {
 public:
  static constexpr size_t kBufSize = 2u << 20;
  static constexpr size_t kBitmapSize = 256u << 10;
  WorkerMemory();
  ~WorkerMemory();
  WorkerMemory(const WorkerMemory&) = delete;
  WorkerMemory& operator=(const WorkerMemory&) = delete;

  uint8_t* buf() const { return buf_; }
  uint8_t* bitmap() const { return bitmap_; }
  uint8_t* guard() const { return buf_ + kBufSize; }  ///< PROT_NONE

 private:
  uint8_t* buf_ = nullptr;
  uint8_t* bitmap_ = nullptr;
};

/// Runs one sequence: creates an instance of `s.type` on ctx.parent, opens it, runs
/// the phases, tears everything down and checks the instance and parents are back to
/// where they were. Returns an empty string, or a description of what it found.
std::string run_sequence(const Sequence& s, RunContext& ctx,
                         std::vector<std::unique_ptr<WorkerMemory>>& mem);

/// Installs the SIGBUS/SIGSEGV handlers that let touches of mappings fail softly.
void install_fault_handlers();

}  // namespace mdevmig::fuzz
