// The live workload of `mdevmig migrate --workload`: what a running guest would do to a
// device while pre-copy runs. "bar2" writes device memory through the BAR2 mmap at a
// rate (a percentage of device memory per second); "dma" drives the device's DMA
// queue (fills of device memory, copies into the tool's guest memory), so device-side
// dirtying and guest-memory dirtying both happen. pause() is the VM stopping before
// the device does; resume() undoes it after a failed migration.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>

#include "base/result.h"
#include "migration/engine/session.h"
#include "migration/vfio/device.h"
#include "migration/vfio/mapping.h"
#include "tools/guest/ring.h"

namespace mdevmig::cli {

struct WorkloadConfig {
  bool bar2 = false;
  bool dma = false;
  double dirty_pct_per_s = 1.0;  ///< of device memory, for bar2
};

/// Parses "none", "bar2", "dma", "bar2,dma".
[[nodiscard]] Result<WorkloadConfig> parse_workload(std::string_view text);

/// Whether `id` (read_identity) is an mdevmig device with the layout the workloads and
/// --verify use: our PCI IDs and register magic, BAR0 holding the registers, BAR2 the
/// device memory. Else one line saying what differs, for `what` ("--workload bar2").
[[nodiscard]] Result<void> check_mdevmig_layout(const schema::DeviceIdentity& id,
                                                std::string_view what);

class Workload {
 public:
  /// Starts the threads. `guest` (may be null) is needed for "dma". Refuses a device
  /// that is not ours (check_mdevmig_layout) before touching any of its regions.
  [[nodiscard]] static Result<std::unique_ptr<Workload>> start(const vfio::Device& dev,
                                                               const schema::DeviceIdentity& id,
                                                               engine::GuestMemory* guest,
                                                               const WorkloadConfig& cfg);
  ~Workload();
  Workload(const Workload&) = delete;
  Workload& operator=(const Workload&) = delete;

  /// Returns once no write is in progress and none will start until resume().
  void pause();
  void resume();
  void stop();

  [[nodiscard]] uint64_t pages_written() const { return pages_written_.load(); }
  [[nodiscard]] uint64_t descriptors() const { return descriptors_.load(); }

 private:
  explicit Workload(WorkloadConfig cfg) : cfg_(cfg) {}
  void bar2_loop();
  void dma_loop();
  // Waits while paused; false once stopping.
  bool gate(std::unique_lock<std::mutex>& lock);

  WorkloadConfig cfg_;
  vfio::Mapping bar2_;
  uint64_t mem_size_ = 0;
  std::unique_ptr<guest::DevicePort> port_;  // "dma": the device and its guest memory
  std::unique_ptr<guest::Ring> ring_;
  std::mutex mu_;  // held while a thread writes; pause() takes it
  std::condition_variable cv_;
  bool paused_ = false;
  bool stopping_ = false;
  std::atomic<uint64_t> pages_written_{0};
  std::atomic<uint64_t> descriptors_{0};
  std::thread bar2_thread_;
  std::thread dma_thread_;
};

}  // namespace mdevmig::cli
