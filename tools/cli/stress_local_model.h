// The expected state of `mdevmig stress --mode local` and how it moves between the
// processes that play the VM. A VM process keeps it in-process: a guest::Replay
// (vendor/ in the simulator, the same C as the module) that receives every access the
// workload makes to the real device, and the workload's counts. It moves on with the
// VM: a source that completed a migration hands it to its destination, and a
// checkpoint keeps a copy (with the VM's guest memory) for a VM restored after its
// source was killed; both through memory the stress process maps shared before its
// VM processes fork.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "base/result.h"
#include "tools/guest/layout.h"
#include "tools/guest/replay.h"

namespace mdevmig::cli::local {

inline constexpr uint64_t kPage = 4096;
/// Guest memory: tools/guest's layout at kGuestIova, up to the end of the DMA results
/// area (the layout's data buffers).
inline constexpr uint64_t kGuestIova = 1ull << 30;
inline constexpr guest::Layout kLayout{.base = kGuestIova};
inline constexpr uint64_t kDataBytes = 1u << 20;
inline constexpr uint64_t kGuestBytes = guest::Layout::kDataOff + kDataBytes;
inline constexpr uint32_t kRingEntries = 64;
inline constexpr uint64_t kDmaLen = 16u << 10;
static_assert(kGuestBytes <= guest::Layout::kSize);

/// What a workload issued, across the VM processes it ran in.
struct WorkloadCounts {
  uint64_t bar2_writes = 0;
  uint64_t descs = 0;  ///< descriptors issued (the ring's free-running tail)
  uint64_t scratch_writes = 0;
  uint64_t dma_failures = 0;  ///< descriptors that did not complete OK, doorbells that failed
  [[nodiscard]] uint64_t ops() const { return bar2_writes + descs + scratch_writes; }
};

/// The expected state in a VM process.
struct Expected {
  /// A fresh device of `mem_size` bytes, brought up as the VM brings up its own.
  explicit Expected(uint64_t mem_size)
      : replay(mem_size, kLayout, kRingEntries, /*prefill=*/true) {}
  guest::Replay replay;
  WorkloadCounts counts;
};

/// The shared memory the expected state moves through: a hand-off slot and a
/// checkpoint slot, each the replay's snapshot and the counts; the checkpoint also
/// holds the VM's guest memory.
class SharedState {
 public:
  [[nodiscard]] static Result<SharedState> create(uint64_t mem_size);
  SharedState(SharedState&& o) noexcept;
  SharedState& operator=(SharedState&&) = delete;
  ~SharedState();

  [[nodiscard]] uint64_t mem_size() const { return mem_size_; }
  /// A source that completed a migration leaves its expected state for the destination.
  [[nodiscard]] Result<void> hand_off(const Expected& e) const;
  /// The destination continues from what its source left.
  [[nodiscard]] Result<void> take_over(Expected& e) const;
  /// The checkpoint: the expected state and the VM's guest memory at that moment.
  [[nodiscard]] Result<void> save_checkpoint(const Expected& e,
                                             std::span<const std::byte> guest) const;
  [[nodiscard]] Result<void> load_checkpoint(Expected& e, std::span<std::byte> guest) const;

 private:
  struct Header {
    uint64_t valid = 0;
    uint64_t bytes = 0;  // of the snapshot
    WorkloadCounts counts;
  };
  struct Slot {
    Header* hdr;
    std::byte* snapshot;
    std::byte* guest;
  };
  SharedState() = default;
  [[nodiscard]] Slot slot(std::size_t i) const;
  [[nodiscard]] uint64_t slot_bytes() const { return kPage + cap_ + kGuestBytes; }
  [[nodiscard]] Result<void> put(const Slot& s, const Expected& e) const;
  [[nodiscard]] Result<void> get(const Slot& s, Expected& e) const;

  std::byte* base_ = nullptr;
  uint64_t mem_size_ = 0;
  uint64_t cap_ = 0;  // snapshot bytes a slot holds
};

}  // namespace mdevmig::cli::local
