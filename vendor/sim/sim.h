// The in-process simulator: a userspace host for the vendor/ device model.
//
// SimDevice owns device memory and a FakeIommu (the guest's memory as the device sees
// it: mapped IOVA ranges, faults elsewhere) and records what the model tells its host
// (MSI messages, INTx level, kicks, dirty device pages). The guest driver that programs
// the ring and submits descriptors is tools/guest's (SimPort, SimRing). Used by the
// vendor unit tests, fuzzers and benchmarks, and by migration/ tests that need a device
// without a kernel.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <vector>

#include "stream.h"

namespace mdevmig::vendor_sim {

// Guest memory behind an IOMMU: accesses must lie in mapped ranges (they may span
// adjacent mappings), anything else fails with -EFAULT.
class FakeIommu {
 public:
  // Maps [iova, iova + size) to fresh zeroed host memory. False if size is 0, the
  // range wraps or overlaps a mapping.
  bool map(uint64_t iova, uint64_t size);
  // Removes the mapping that starts at iova. False if there is none.
  bool unmap(uint64_t iova);
  // Host address of [iova, iova + len) if one mapping holds all of it, else nullptr.
  uint8_t* translate(uint64_t iova, uint64_t len);

  int read(uint64_t iova, void* buf, size_t len);
  int write(uint64_t iova, const void* buf, size_t len);

  // Fault injection: the access after `n` more successful ones fails (read or write).
  void fail_after(uint64_t n) { fail_countdown_ = static_cast<int64_t>(n); }
  void clear_fail() { fail_countdown_ = -1; }
  // Zeroes all mapped memory and the counters; mappings stay.
  void zero();

  uint64_t accesses() const { return accesses_; }
  uint64_t faults() const { return faults_; }

 private:
  bool inject_fault();
  template <typename Fn>
  int walk(uint64_t iova, size_t len, Fn&& fn);

  struct Mapping {
    std::vector<uint8_t> mem;
  };
  std::map<uint64_t, Mapping> maps_;  // by first IOVA
  int64_t fail_countdown_ = -1;
  uint64_t accesses_ = 0;
  uint64_t faults_ = 0;
};

struct LoadResult {
  int err = 0;
  mdevmig_load_reason reason = MDEVMIG_LOAD_OK;
};

class SimDevice {
 public:
  // mem_size: a multiple of MDEVMIG_PAGE_SIZE. Aborts if the model refuses it.
  explicit SimDevice(uint64_t mem_size, uint32_t type_id = 0);
  SimDevice(const SimDevice&) = delete;
  SimDevice& operator=(const SimDevice&) = delete;

  mdevmig_model* model() { return &model_; }
  const mdevmig_model* model() const { return &model_; }
  uint8_t* mem() { return mem_.data(); }
  uint64_t mem_size() const { return mem_.size(); }
  FakeIommu& iommu() { return iommu_; }

  // Guest accesses; abort on -EINVAL (tests that want the error call the model).
  uint32_t cfg_read(uint32_t off, uint32_t len = 4);
  void cfg_write(uint32_t off, uint32_t val, uint32_t len = 4);
  uint32_t mmio_read32(uint32_t off);
  uint64_t mmio_read64(uint32_t off);
  void mmio_write32(uint32_t off, uint32_t val);
  void mmio_write64(uint32_t off, uint64_t val);

  int run(unsigned int max_steps) { return mdevmig_model_run(&model_, max_steps); }
  // Runs until idle; returns the steps taken (capped at max_steps).
  uint64_t run_to_idle(uint64_t max_steps = 1u << 24);

  // What the model told its host.
  std::vector<unsigned int> msis;  // vectors, in order
  bool intx = false;               // level
  unsigned int intx_changes = 0;
  unsigned int kicks = 0;
  std::vector<bool> dirty;  // per device page, set by mem_dirty
  void clear_events();
  // Back to a just-constructed device (same geometry), keeping allocations: model
  // reset, memory and mapped guest memory zeroed, events cleared, no fault pending.
  void reset_all();

  // The whole state as a stream: COMPAT, every page, the state records, END.
  std::vector<uint8_t> save() const;
  // The same into out (replacing its contents, reusing its capacity).
  void save(std::vector<uint8_t>& out) const;
  // COMPAT, the given pages (runs of consecutive indices are batched), state, END.
  std::vector<uint8_t> save_pages(std::span<const uint64_t> pages) const;
  // Loads a stream fed in chunks of chunk bytes (the last may be shorter).
  LoadResult load(std::span<const uint8_t> stream, size_t chunk = SIZE_MAX);

 private:
  static int op_dma_read(void* host, uint64_t iova, void* buf, size_t len);
  static int op_dma_write(void* host, uint64_t iova, const void* buf, size_t len);
  static void op_msi(void* host, unsigned int vector);
  static void op_intx(void* host, bool asserted);
  static void op_kick(void* host);
  static void op_mem_dirty(void* host, uint64_t offset, uint64_t len);
  static const mdevmig_model_ops kOps;

  std::vector<uint8_t> mem_;
  FakeIommu iommu_;
  mdevmig_model model_;
};

// Appends records to a stream under construction.
void append_compat(std::vector<uint8_t>& out, const mdevmig_model* m);
void append_pages(std::vector<uint8_t>& out, const mdevmig_model* m, uint64_t first,
                  uint32_t count);
void append_state(std::vector<uint8_t>& out, const mdevmig_model* m);
void append_end(std::vector<uint8_t>& out);

}  // namespace mdevmig::vendor_sim
