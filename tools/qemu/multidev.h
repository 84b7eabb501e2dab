// Several mdevmig devices in one harness VM: one GuestDriver per device, each at its own
// Placement, one qtest "vCPU" stepping them all; live migration with QEMU's own
// `migrate` into a VM with as many instances, then every device's cut found and verified
// on whichever side holds the VM. Used by the multidev lab group and the multi-device
// benchmark.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "tools/mdev/mdev.h"
#include "tools/qemu/guest.h"
#include "tools/qemu/migration.h"
#include "tools/qemu/vm.h"

namespace mdevmig::qemu {

using stress::Survivor;
using stress::survivor_name;

struct MultiDeviceOptions {
  VmSpec vm;  ///< vm.dir empty: a fresh directory under /tmp, removed at the end
  IrqMode irq = IrqMode::kMsi;
  WorkloadRates rates;  ///< per device
  uint64_t seed = 1;
  uint32_t sample_pages = 8;  ///< BAR2 pages compared byte for byte per device
  LogFn log;
};

/// One live migration of the VM with all its devices.
struct MultiDeviceRound {
  MigrationOutcome migration;  ///< device counters: the first device's
  Survivor survivor = Survivor::kNone;
  std::vector<Verification> devices;  ///< on the survivor, per device
  std::vector<WorkloadStats> workload;
  std::vector<uint64_t> ops_pending, ops_landed;  ///< per device
  std::vector<std::string> problems;
  std::string src_end, dst_end;
  double round_ms = 0;
  /// Every device of the survivor verified, and nothing unexpected happened.
  [[nodiscard]] bool verified() const;
  [[nodiscard]] nlohmann::json to_json() const;
};

/// `sets` sets of `devices` new instances of mdev type `type` each, for create().
[[nodiscard]] Result<std::vector<std::vector<mdev::MdevInstance>>> make_instance_sets(
    std::size_t sets, std::size_t devices, const std::string& type);

class MultiDeviceHarness {
 public:
  /// `sets[k]`: the instances a VM on set k gets, one per device (at most kMaxDevices),
  /// every set as long as the first.
  [[nodiscard]] static Result<std::unique_ptr<MultiDeviceHarness>> create(
      MultiDeviceOptions options, std::vector<std::vector<mdev::MdevInstance>> sets);
  ~MultiDeviceHarness();
  MultiDeviceHarness(const MultiDeviceHarness&) = delete;
  MultiDeviceHarness& operator=(const MultiDeviceHarness&) = delete;

  /// Starts a VM on `set`, brings every device up and verifies them.
  [[nodiscard]] Result<std::vector<Verification>> boot(std::size_t set);
  /// The live workload on every device for `duration` (no migration).
  [[nodiscard]] Result<void> run_workload(std::chrono::milliseconds duration);
  /// Verifies every device of the current VM.
  [[nodiscard]] Result<std::vector<Verification>> verify();
  /// Migrates the VM live (plan.transport kUnix) to a VM started on `dst_set`, the
  /// workload running on every device until the switchover, then verifies the survivor.
  [[nodiscard]] Result<MultiDeviceRound> migrate(std::size_t dst_set, const MigrationPlan& plan);

  [[nodiscard]] std::size_t devices() const { return sets_.front().size(); }
  [[nodiscard]] std::size_t current_set() const { return set_; }
  [[nodiscard]] const mdev::MdevInstance& instance(std::size_t set, std::size_t dev) const {
    return sets_[set][dev];
  }
  [[nodiscard]] Vm& current_vm();
  /// PIDs of the QEMUs the harness is running (for leak checks).
  [[nodiscard]] std::vector<pid_t> live_vms() const;
  void shutdown();

 private:
  MultiDeviceHarness(MultiDeviceOptions options, std::vector<std::vector<mdev::MdevInstance>> sets);
  [[nodiscard]] Result<Vm> start_vm(std::size_t set, std::optional<std::string> incoming);
  [[nodiscard]] std::vector<GuestDriver*> drivers();
  // Drains every device of `vm`, finds and commits each cut, verifies.
  [[nodiscard]] Result<void> settle(Vm& vm, bool adopt, MultiDeviceRound& round);
  void say(const std::string& s) const;

  MultiDeviceOptions options_;
  std::vector<std::vector<mdev::MdevInstance>> sets_;
  bool own_dir_ = false;
  std::optional<Vm> vm_;
  std::size_t set_ = 0;
  std::vector<GuestDriver> drivers_;
  uint32_t vm_counter_ = 0;
};

}  // namespace mdevmig::qemu
