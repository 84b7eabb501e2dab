// The live workload of a `mdevmig stress --mode local` VM: BAR2 writes, scratch
// registers and DMA descriptors at given rates on the real device, through the ring
// driver of tools/guest; each access is replayed into the expected state as it is
// issued. pause() is the vCPU stopping.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

#include "base/result.h"
#include "migration/vfio/mapping.h"
#include "tools/cli/stress_local_model.h"
#include "tools/guest/device_port.h"
#include "tools/guest/ring.h"

namespace mdevmig::cli::local {

class GuestWorkload {
 public:
  /// `port` and `ring`: the VM's device and its programmed ring; `bar2`: its BAR2 mapping.
  GuestWorkload(guest::DevicePort& port, guest::Ring& ring, vfio::Mapping& bar2,
                double writes_per_s, double descs_per_s);
  ~GuestWorkload() { stop(); }
  GuestWorkload(const GuestWorkload&) = delete;
  GuestWorkload& operator=(const GuestWorkload&) = delete;

  /// Runs (starting the thread the first time), replaying into `expected`.
  void run(Expected& expected);
  /// Returns once nothing is being issued and nothing will be until run().
  void pause();
  void stop();
  /// With the workload paused: waits until the device executed every descriptor.
  [[nodiscard]] Result<void> drain(std::chrono::milliseconds timeout);

 private:
  [[nodiscard]] bool last_done();
  void loop();
  void bar2_write();
  void scratch_write();
  void issue_desc();

  guest::DevicePort& port_;
  guest::Ring& ring_;
  vfio::Mapping& bar2_;
  Expected* e_ = nullptr;  // set by run(); the VM process owns it
  double writes_per_tick_;
  uint32_t desc_every_;
  std::mutex mu_;  // held while an op is issued; pause() takes it
  std::condition_variable cv_;
  bool paused_ = true, stopping_ = false;
  std::thread thread_;
};

}  // namespace mdevmig::cli::local
