// A round of the harness: the migration with the workload running, the file faults and
// the restore of a saved VM, then whichever side holds the VM settled and verified.
#include <sys/stat.h>
#include <unistd.h>

#include <thread>

#include "tools/qemu/harness.h"
#include "tools/qemu/proxy.h"
#include "tools/qemu/workload_thread.h"

namespace mdevmig::qemu {
namespace {

using namespace std::chrono_literals;

// Waits for a QEMU that should end by itself (a destination whose load failed).
std::string wait_exit(Vm& vm, std::chrono::milliseconds timeout,
                      std::vector<std::string>& problems) {
  auto st = vm.wait(timeout);
  if (st) return describe_wait_status(*st);
  auto state = vm.run_state();
  problems.push_back("destination " + vm.name() +
                     " still alive after the migration failed (state " +
                     (state ? *state : state.error().message()) + ")");
  vm.kill();
  return "killed by the harness";
}

// Applies a stream fault of `plan` to the saved file it wrote, before it is loaded.
void damage_saved_file(const MigrationPlan& plan, uint64_t device_mem, RoundReport& rep) {
  if (plan.fault == FaultKind::kCorrupt) {
    auto at = corrupt_device_data_in_file(
        plan.file, static_cast<uint64_t>(plan.fault_point * static_cast<double>(device_mem)));
    if (at)
      rep.migration.fault_note =
          "flipped file byte " + std::to_string(*at) + " (inside VFIO device data)";
    else
      rep.problems.push_back("could not corrupt the file: " + at.error().message());
  } else if (plan.fault == FaultKind::kTruncate) {
    struct stat st {};
    ::stat(plan.file.c_str(), &st);
    off_t len = static_cast<off_t>(plan.fault_point * static_cast<double>(st.st_size));
    if (::truncate(plan.file.c_str(), len) == 0)
      rep.migration.fault_note = "file truncated to " + std::to_string(len) + " bytes";
    else
      rep.problems.emplace_back("could not truncate the file");
  }
}

}  // namespace

Result<RoundReport> Harness::migrate(std::size_t dst_instance, const MigrationPlan& plan) {
  return migrate_into(std::nullopt, dst_instance, plan);
}

Result<RoundReport> Harness::migrate_to(Vm dst, const MigrationPlan& plan) {
  if (!is_live(plan.transport))
    return Error::make(EINVAL, "migrate to " + dst.name(),
                       "a QEMU the harness did not start takes live migrations only");
  return migrate_into(std::move(dst), kRemote, plan);
}

Result<RoundReport> Harness::migrate_into(std::optional<Vm> given, std::size_t dst_instance,
                                          const MigrationPlan& plan_in) {
  MDEVMIG_CHECK(vm_.has_value(), "migrate() without a VM");
  const auto t0 = Clock::now();
  RoundReport rep;
  rep.transport = plan_in.transport;
  rep.fault = plan_in.fault;
  MigrationPlan plan = plan_in;
  const bool file = plan.transport == Transport::kFile;
  if (file && plan.file.empty())
    plan.file = options_.vm.dir + "/save-" + std::to_string(++file_counter_) + ".mig";
  // A kill or cancel during a save to a file is fired by the migration runner; the
  // file faults are applied to the finished file.
  MigrationPlan run_plan = plan;
  if (file && stress::fault_spec(plan.fault).in_stream) run_plan.fault = FaultKind::kNone;

  Vm& src = *vm_;
  std::optional<Vm> dst = std::move(given);
  if (!file && !dst) dst.emplace(MDEVMIG_TRY(start_vm(dst_instance, std::string("defer"))));
  QtestClient* qt = MDEVMIG_TRY(src.qtest());
  Result<void> wl_result;
  Result<MigrationOutcome> out =
      migrate_with_workload(src, dst ? &*dst : nullptr, *qt, run_plan, wl_result);
  rep.workload = driver_->stats();
  if (!out) {
    if (dst) dst->kill();
    return std::move(out).error();
  }
  rep.migration = std::move(*out);
  const std::string status = rep.migration.status;
  if (!wl_result && status != "source-killed")
    rep.problems.push_back("workload: " + wl_result.error().message());
  if (file) rep.migration.fault_fired = rep.migration.fault_fired || run_plan.fault != plan.fault;

  // Which side holds the VM now.
  if (status == "source-killed") {
    rep.survivor = Survivor::kNone;
  } else if (status != "completed") {
    rep.survivor = Survivor::kSource;
  } else if (!file) {
    rep.survivor = Survivor::kDestination;
  } else {
    rep.survivor = MDEVMIG_TRY(restore_saved(plan, dst_instance, dst, rep));
  }
  say(std::string("survivor: ") + survivor_name(rep.survivor));

  switch (rep.survivor) {
    case Survivor::kDestination:
      MDEVMIG_TRY(end_on_destination(*dst, dst_instance, rep));
      break;
    case Survivor::kSource:
      MDEVMIG_TRY(end_on_source(dst, rep));
      break;
    case Survivor::kNone:
      end_without_survivor(dst, rep);
      break;
  }
  rep.round_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  return rep;
}

Result<MigrationOutcome> Harness::migrate_with_workload(Vm& src, Vm* dst, QtestClient& qt,
                                                        const MigrationPlan& plan,
                                                        Result<void>& wl_result) {
  driver_->reset_stats();
  // Until the switchover moment QEMU must not be able to converge (see GuestDriver).
  driver_->set_pressure(true);
  WorkloadThread wl(*driver_, qt);
  bool stopped = false;
  SwitchoverHooks hooks;
  hooks.before_switchover = [&] {
    driver_->set_bar2_writes(false);
    driver_->set_pressure(false);
  };
  hooks.quiesce = [&] {
    wl_result = wl.stop();
    stopped = true;
  };
  Result<MigrationOutcome> out =
      run_migration(src, dst, src.remote() ? nullptr : &instances_[vm_instance_],
                    driver_->mem_size(), plan, options_.vm.dir, hooks, options_.log);
  if (!stopped) wl_result = wl.stop();
  driver_->set_bar2_writes(true);
  driver_->set_pressure(false);
  return out;
}

Result<Survivor> Harness::restore_saved(const MigrationPlan& plan, std::size_t dst_instance,
                                        std::optional<Vm>& dst, RoundReport& rep) {
  // Saved: now load the file into a fresh QEMU on the other instance, after the
  // fault (if any) has damaged it.
  damage_saved_file(plan, driver_->mem_size(), rep);
  dst.emplace(MDEVMIG_TRY(start_vm(dst_instance, std::string("defer"))));
  std::string in = MDEVMIG_TRY(run_incoming_file(*dst, plan.file));
  say("restore from " + plan.file + ": " + in);
  if (in == "completed") return Survivor::kDestination;
  // The source stopped at the end of the save and is still there: resume it.
  rep.dst_end = wait_exit(*dst, 15s, rep.problems);
  dst.reset();
  MDEVMIG_TRY(vm_->resume());
  return Survivor::kSource;
}

Result<void> Harness::end_on_destination(Vm& dst, std::size_t dst_instance, RoundReport& rep) {
  // A damaged stream must never be accepted, nor a dead destination succeed.
  const bool faulted = rep.fault != FaultKind::kNone && rep.migration.fault_fired;
  if (faulted && stress::destination_must_refuse(rep.fault))
    rep.problems.push_back(std::string("the destination accepted a migration with fault ") +
                           fault_name(rep.fault));
  if (auto w = dst.wait_run_state("running", 30s); !w) rep.problems.push_back(w.error().message());
  // The harness stops issuing while QEMU pauses before switchover: every op must
  // have reached the destination.
  auto v = settle_survivor(dst, /*adopt=*/true, rep);
  if (!v) {
    dst.kill();
    return std::move(v).error();
  }
  rep.verification = std::move(*v);
  Vm& src = *vm_;
  auto s = src.run_state();
  rep.src_end = s ? *s : "gone";
  if (s && *s != "postmigrate")
    rep.problems.push_back("source is " + *s + " after a completed migration, want postmigrate");
  rep.src_end = src.quit();
  vm_.emplace(std::move(dst));
  vm_instance_ = dst_instance;
  return ok();
}

Result<void> Harness::end_on_source(std::optional<Vm>& dst, RoundReport& rep) {
  if (dst) rep.dst_end = wait_exit(*dst, 20s, rep.problems);
  Vm& src = *vm_;
  if (auto w = src.wait_run_state("running", 30s); !w)
    rep.problems.push_back("source: " + w.error().message());
  auto v = settle_survivor(src, /*adopt=*/false, rep);
  if (!v) return std::move(v).error();
  rep.verification = std::move(*v);
  rep.src_end = "running";
  return ok();
}

void Harness::end_without_survivor(std::optional<Vm>& dst, RoundReport& rep) {
  if (dst) {
    // The destination got part of a stream and must give up, not run.
    auto st = dst->wait(20s);
    if (!st) {
      auto state = dst->run_state();
      rep.problems.push_back("destination still alive after its source died (state " +
                             (state ? *state : std::string("?")) + ")");
      dst->kill();
      rep.dst_end = "killed by the harness";
    } else {
      rep.dst_end = describe_wait_status(*st);
    }
  }
  rep.src_end = vm_->quit();
  rep.ops_pending = driver_->pending();
  driver_->commit(0);  // the VM is gone with everything since the last checkpoint
  vm_.reset();
}

}  // namespace mdevmig::qemu
