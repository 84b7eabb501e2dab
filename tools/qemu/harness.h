// The QEMU end-to-end harness: a VM with an mdevmig device driven by GuestDriver,
// migrated (live over a unix socket, or saved to a file and restored) to another
// instance, with faults; after every round it finds which side survived and verifies
// that it holds exactly the expected state. Used by `mdevmig qemu-migrate`,
// `mdevmig stress` and the qemu lab tests.
#pragma once

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "tools/mdev/mdev.h"
#include "tools/qemu/guest.h"
#include "tools/qemu/migration.h"
#include "tools/qemu/vm.h"

namespace mdevmig::qemu {

using stress::RoundReport;
using stress::Survivor;
using stress::survivor_name;

struct HarnessOptions {
  VmSpec vm;  ///< vm.dir empty: a fresh directory under /tmp, removed at the end
  IrqMode irq = IrqMode::kIntx;
  WorkloadRates rates;
  uint64_t seed = 1;
  uint32_t sample_pages = 16;  ///< BAR2 pages compared byte for byte per verification
  /// MiB of guest RAM above the driver's buffers filled with a non-zero byte at boot, so
  /// that migration moves real RAM pages (an idle guest's zero pages cost QEMU ~nothing).
  uint32_t guest_fill_mb = 0;
  bool keep_dir = false;  ///< keep logs and sockets (the path is in the report)
  LogFn log;
};

/// The guest RAM a fill of `fill_mb` MiB covers, [start, start + length): from 8 MiB
/// (above every driver buffer) up to the MSI page at most.
struct FillRange {
  uint64_t start = 0, length = 0;
};
[[nodiscard]] FillRange guest_fill_range(uint32_t fill_mb);
/// The byte the fill writes.
inline constexpr uint8_t kGuestFillByte = 0xa5;

class Harness {
 public:
  /// `instances`: the mdev instances rounds move the VM between.
  [[nodiscard]] static Result<std::unique_ptr<Harness>> create(
      HarnessOptions options, std::vector<mdev::MdevInstance> instances);
  ~Harness();
  Harness(const Harness&) = delete;
  Harness& operator=(const Harness&) = delete;

  /// Starts a fresh VM on `instance`, brings the device up and verifies it.
  [[nodiscard]] Result<Verification> boot(std::size_t instance);
  /// The same with `vm`, a QEMU someone else started on `instance` (libvirt, say) and
  /// Vm::attach reached: it becomes the current VM.
  [[nodiscard]] Result<Verification> boot_in(Vm vm, std::size_t instance);
  /// The VM was moved by someone else (libvirt's migrate, save and restore) while the
  /// harness issued nothing, and now runs in `vm` on `instance` (kRemote: on another
  /// host). Adopts it, checks that it holds every op issued before and verifies it; the
  /// old VM is released, not quit (whoever moved it ends it).
  [[nodiscard]] Result<Verification> moved_to(Vm vm, std::size_t instance);
  /// Runs the live workload on the current VM for `duration` (no migration).
  [[nodiscard]] Result<void> run_workload(std::chrono::milliseconds duration);
  /// Verifies the current VM (nothing pending).
  [[nodiscard]] Result<Verification> verify();
  /// Migrates the current VM to `dst_instance` by `plan` (live or through a file), with
  /// the workload running, then verifies whichever side survived.
  [[nodiscard]] Result<RoundReport> migrate(std::size_t dst_instance, const MigrationPlan& plan);
  /// The same live migration into `dst`, a QEMU the harness did not start (on another
  /// host, attached with Vm::attach, started with "-incoming defer"). The VM stays
  /// there afterwards: migrate() brings it back onto one of this host's instances.
  [[nodiscard]] Result<RoundReport> migrate_to(Vm dst, const MigrationPlan& plan);
  /// Saves the current VM to the checkpoint file with the workload paused, and resumes it.
  [[nodiscard]] Result<void> checkpoint();
  /// Starts a VM on `instance` from the checkpoint and verifies it holds the checkpoint's state.
  [[nodiscard]] Result<Verification> recover(std::size_t instance);

  [[nodiscard]] bool has_vm() const { return vm_.has_value(); }
  /// The current VM, for what the harness does not do itself (a migration driven by
  /// someone else, watched through its QMP); it stays the harness's.
  [[nodiscard]] Vm& current_vm() {
    MDEVMIG_CHECK(vm_.has_value(), "current_vm() without a VM");
    return *vm_;
  }
  /// The instance the VM runs on; kRemote while it runs on another host.
  [[nodiscard]] std::size_t current_instance() const { return vm_instance_; }
  static constexpr std::size_t kRemote = static_cast<std::size_t>(-1);
  [[nodiscard]] std::size_t instance_count() const { return instances_.size(); }
  [[nodiscard]] const mdev::MdevInstance& instance(std::size_t i) const { return instances_[i]; }
  [[nodiscard]] GuestDriver& driver() { return *driver_; }
  [[nodiscard]] const std::string& dir() const { return options_.vm.dir; }
  /// The options in force (vm.protocol resolved, vm.dir created).
  [[nodiscard]] const HarnessOptions& options() const { return options_; }
  /// PIDs of the QEMUs the harness is running (for leak checks).
  [[nodiscard]] std::set<pid_t> live_vms() const;
  /// Leaves the VM, its instance and everything else as they are and quits the VM.
  void shutdown();
  /// Forgets the VM without quitting it (a VM someone else manages ends through them).
  void release() { vm_.reset(); }

 private:
  explicit Harness(HarnessOptions options, std::vector<mdev::MdevInstance> instances);
  [[nodiscard]] Result<Vm> start_vm(std::size_t instance, std::optional<std::string> incoming);
  // migrate() and migrate_to(): into `given` if set, else a VM started on `dst_instance`.
  [[nodiscard]] Result<RoundReport> migrate_into(std::optional<Vm> given, std::size_t dst_instance,
                                                 const MigrationPlan& plan);
  // The migration itself (run_migration) with the workload running on `src` until the
  // switchover; the workload's end goes to `wl_result`.
  [[nodiscard]] Result<MigrationOutcome> migrate_with_workload(Vm& src, Vm* dst, QtestClient& qt,
                                                               const MigrationPlan& plan,
                                                               Result<void>& wl_result);
  // A VM saved to plan.file: damages the file by the plan's fault, loads it into `dst`,
  // a fresh QEMU on `dst_instance`, and says which side holds the VM (the source runs
  // again when the load failed).
  [[nodiscard]] Result<Survivor> restore_saved(const MigrationPlan& plan, std::size_t dst_instance,
                                               std::optional<Vm>& dst, RoundReport& rep);
  // The end of a round by its survivor: the destination becomes the current VM, or the
  // source goes on, or (none) both are gone and the driver forgets what was pending.
  [[nodiscard]] Result<void> end_on_destination(Vm& dst, std::size_t dst_instance,
                                                RoundReport& rep);
  [[nodiscard]] Result<void> end_on_source(std::optional<Vm>& dst, RoundReport& rep);
  void end_without_survivor(std::optional<Vm>& dst, RoundReport& rep);
  // Drains the survivor, finds and commits the cut, verifies. The survivor must hold
  // every op issued on the source (the harness quiesces its qtest vCPU before the
  // switchover, so this holds for destinations too): the cut proves it.
  [[nodiscard]] Result<Verification> settle_survivor(Vm& vm, bool adopt, RoundReport& rep);
  void say(const std::string& s) const;

  HarnessOptions options_;
  std::vector<mdev::MdevInstance> instances_;
  bool own_dir_ = false;
  std::optional<Vm> vm_;
  std::size_t vm_instance_ = 0;
  std::optional<GuestDriver> driver_;
  std::optional<GuestDriver> checkpoint_driver_;
  std::string checkpoint_file_;
  uint32_t vm_counter_ = 0, file_counter_ = 0;
};

}  // namespace mdevmig::qemu
