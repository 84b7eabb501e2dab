// What the fuzzer watches in the kernel: its log (WARN, BUG, oops lines as they happen)
// and its memory (for the leak check at the end of a run).
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace mdevmig::fuzz {

/// Reads /dev/kmsg from "now" on and reports lines that mean a kernel bug, using the
/// same pattern as the lab's verdict (tools/lab/lab.sh).
class KernelLog {
 public:
  KernelLog();
  ~KernelLog();
  KernelLog(const KernelLog&) = delete;
  KernelLog& operator=(const KernelLog&) = delete;

  /// The first bad line logged since the previous call (empty if none). Also returns
  /// the line that tells records were lost, if the log wrapped before we read it.
  std::string poll();
  /// Writes a marker line into the kernel log (for finding our place in dmesg later).
  static void mark(const std::string& text);

 private:
  int fd_ = -1;
};

/// Kernel memory that a leak in the module would grow, after caches were dropped and
/// every slab cache shrunk (so freed objects do not count).
struct MemSnapshot {
  int64_t slab_unreclaimable_kib = 0;         ///< SUnreclaim: kmalloc and the module's slabs
  int64_t vmalloc_kib = 0;                    ///< VmallocUsed: v1 sections, loader buffers, bitmaps
  int64_t unaccounted_kib = 0;                ///< used by nobody meminfo names (kmalloc'd pages)
  std::map<std::string, int64_t> slab_bytes;  ///< active bytes per slab cache
  bool slub_debug = false;              ///< slab objects carry red zones and alloc/free tracks
  int64_t first_unreclaimable_kib = 0;  ///< SUnreclaim at the first reading, before it settled
  int settle_rounds = 0;                ///< readings (one a second) until SUnreclaim settled
};

MemSnapshot take_mem_snapshot();

/// "SUnreclaim +12 KiB (limit ...), ...; slab caches grown most: ..." and whether every
/// delta is within its limit.
bool compare_mem(const MemSnapshot& before, const MemSnapshot& after, std::string* report);

}  // namespace mdevmig::fuzz
