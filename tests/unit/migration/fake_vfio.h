// An in-process fake of the VFIO ioctl interface, so the client's wrappers (struct
// layouts, argsz re-calls, offsets, fd handling) run on hosts without VFIO.
//
// The test executable defines ioctl() itself; calls on fds whose path (via
// /proc/self/fd) names a registered fake container or group, and on device or data fds
// the fake handed out, are answered here; every other fd goes to the real ioctl.
// Device fds are memfds, so pread/pwrite/mmap at region offsets work for real.
#pragma once

#include <cstdint>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace fakevfio {

/// One region of the fake device; the fd offset is index << 20.
struct Region {
  uint32_t flags = 0;
  uint64_t size = 0;
  std::vector<std::byte> caps;  ///< capability chain, offsets relative to the reply start
};

/// One answer of the fake driver to one read of its data_fd.
struct DataAnswer {
  std::vector<std::byte> data;  ///< the bytes (at most 64 KiB), if `err` is 0
  int err = 0;                  ///< else the read fails with this errno
  /// Answer only once the device is in this state (0: at once): a read submitted
  /// before a state change completes after it.
  uint32_t after_state = 0;
};

/// Everything the fake device does and records. Tests set the behaviour fields before
/// opening and inspect the recorded ones afterwards.
struct State {
  // Identity and layout.
  std::string container_path;
  std::string group_path;
  std::string device_name;
  uint32_t device_flags = 0;
  std::map<uint32_t, Region> regions;  ///< by index; num_regions = last index + 1
  uint32_t num_irqs = 5;
  bool group_viable = true;

  // Migration.
  uint64_t mig_flags = 0;
  uint32_t mig_state = 2;        ///< RUNNING
  int fail_set_state_errno = 0;  ///< SET fails with this (state unchanged)
  bool has_data_size = false;    ///< MIG_DATA_SIZE supported (6.2+)
  uint64_t data_size = 0;
  uint64_t precopy_initial = 0, precopy_dirty = 0;
  /// With `scripted_data`, a data_fd is a file on a FUSE mount served by the fake (so its
  /// reads, io_uring's included, are answered from `data_answers` in order; 0 bytes once
  /// they run out), and PRE_COPY -> STOP_COPY keeps it, as the uAPI says. Else it is a
  /// pipe at end of file. Needs FUSE (root); fuse_available() says.
  bool scripted_data = false;
  std::deque<DataAnswer> data_answers;

  // Dirty tracking: the bitmap words GET_BITMAP / DMA_LOGGING_REPORT write back.
  std::vector<uint64_t> dirty_words;
  uint64_t dirty_pgsize = 4096;

  // Recorded.
  bool container_set = false;
  uint32_t iommu_type = 0;
  bool dirty_tracking = false;
  bool dma_logging = false;
  std::vector<std::pair<uint64_t, uint64_t>> logging_ranges;
  std::vector<std::vector<std::byte>> irq_sets;  ///< every SET_IRQS argument
  std::vector<uint64_t> maps;                    ///< iovas mapped
  int resets = 0;
  int region_info_calls = 0;
  std::vector<int> data_fds;  ///< read ends handed out (for PRECOPY_INFO)
  /// Every read the scripted data_fd answered: (device state when it reached the
  /// driver, device state when it was answered).
  std::vector<std::pair<uint32_t, uint32_t>> data_reads;
};

/// Why scripted data_fds cannot be served here (FUSE mounts not allowed), or "".
std::string fuse_unavailable_reason();

/// Waits until the scripted data_fd has answered `n` reads in all.
void wait_data_reads(const State& state, std::size_t n);

/// Installs `state` as the fake (one at a time); uninstalls on destruction.
class Scope {
 public:
  explicit Scope(State& state);
  ~Scope();
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;
};

/// A region-info capability header followed by `body`, with `next` filled in later by
/// chain(). Offsets in the chain are relative to the reply start.
std::vector<std::byte> chain(std::size_t fixed_size,
                             const std::vector<std::vector<std::byte>>& caps);

/// A VFIO_REGION_INFO_CAP_TYPE capability (`type`, `subtype`) for chain().
std::vector<std::byte> type_cap(uint32_t type, uint32_t subtype);

/// Creates the sysfs and /dev/vfio layout of one mdev (`uuid` in IOMMU group `group`) in a
/// new temporary directory named after `prefix`, and points `state` at it: container and
/// group paths, the device name, PCI|RESET flags, a 256-byte config region, STOP_COPY|P2P
/// migration. Returns the directory (sys/ and dev/ below it); the caller removes it.
std::filesystem::path make_mdev_tree(const std::string& prefix, const std::string& uuid, int group,
                                     State& state);

}  // namespace fakevfio
