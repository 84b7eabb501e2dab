#include "tools/qemu/harness.h"

#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include "tools/qemu/proxy.h"

namespace mdevmig::qemu {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

// Runs GuestDriver::step() on its own thread until stopped: the VM's "CPU" keeps
// working while the main thread drives the migration through QMP.
class WorkloadThread {
 public:
  WorkloadThread(GuestDriver& driver, QtestClient& qt) : driver_(driver), qt_(qt) {
    driver_.start_clock();
    thread_ = std::thread([this] { run(); });
  }
  ~WorkloadThread() { (void)stop(); }
  Result<void> stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    return result_;
  }

 private:
  void run() {
    while (!stop_) {
      auto next = driver_.step(qt_);
      if (!next) {
        result_ = std::move(next).error();
        return;
      }
      std::this_thread::sleep_until(std::min(*next, Clock::now() + 5ms));
    }
  }
  GuestDriver& driver_;
  QtestClient& qt_;
  std::atomic<bool> stop_{false};
  Result<void> result_;
  std::thread thread_;
};

Result<std::string> wait_migration_end(Vm& vm, std::chrono::milliseconds timeout) {
  Deadline until = deadline_in(timeout);
  for (;;) {
    auto q = MDEVMIG_TRY(vm.qmp().execute("query-migrate", nullptr, time_left(until)));
    std::string st = q.value("status", "");
    if (st == "completed" || st == "failed" || st == "cancelled") return st;
    if (Clock::now() >= until)
      return Error::make(ETIMEDOUT, "wait for migration of " + vm.name(), st);
    std::this_thread::sleep_for(20ms);
  }
}

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

}  // namespace

Harness::Harness(HarnessOptions options, std::vector<mdev::MdevInstance> instances)
    : options_(std::move(options)), instances_(std::move(instances)) {}

Result<std::unique_ptr<Harness>> Harness::create(HarnessOptions options,
                                                 std::vector<mdev::MdevInstance> instances) {
  if (instances.empty()) return Error::make(EINVAL, "harness", "no mdev instances");
  options.vm.protocol =
      MDEVMIG_TRY(resolve_vfio_protocol(options.vm.protocol, options.vm.qemu_binary));
  auto h = std::unique_ptr<Harness>(new Harness(std::move(options), std::move(instances)));
  if (h->options_.vm.dir.empty()) {
    char tmpl[] = "/tmp/mdevmig-qemu.XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) return Error::from_errno("mkdtemp", tmpl);
    h->options_.vm.dir = tmpl;
    h->own_dir_ = true;
  } else if (::mkdir(h->options_.vm.dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return Error::from_errno("mkdir", h->options_.vm.dir);
  }
  if (h->options_.vm.bios.empty()) {
    h->options_.vm.bios = h->options_.vm.dir + "/halt.bin";
    MDEVMIG_TRY(write_halt_bios(h->options_.vm.bios));
  }
  h->checkpoint_file_ = h->options_.vm.dir + "/checkpoint.mig";
  return h;
}

Harness::~Harness() {
  shutdown();
  if (own_dir_ && !options_.keep_dir) {
    if (DIR* d = ::opendir(options_.vm.dir.c_str())) {
      while (dirent* e = ::readdir(d))
        if (e->d_name[0] != '.') ::unlink((options_.vm.dir + "/" + e->d_name).c_str());
      ::closedir(d);
    }
    ::rmdir(options_.vm.dir.c_str());
  }
}

void Harness::shutdown() {
  if (vm_) {
    vm_->quit();
    vm_.reset();
  }
}

void Harness::say(const std::string& s) const {
  if (options_.log) options_.log(s);
}

std::set<pid_t> Harness::live_vms() const {
  std::set<pid_t> out;
  if (vm_ && vm_->pid() > 0) out.insert(vm_->pid());
  return out;
}

Result<Vm> Harness::start_vm(std::size_t instance, std::optional<std::string> incoming) {
  std::string name = "vm" + std::to_string(++vm_counter_);
  say("starting QEMU " + name + " on " + instances_[instance].uuid() +
      (incoming ? " (-incoming " + *incoming + ")" : ""));
  return Vm::start(options_.vm, name, instances_[instance].uuid(), std::move(incoming));
}

Result<Verification> Harness::boot(std::size_t instance) {
  shutdown();
  return boot_in(MDEVMIG_TRY(start_vm(instance, std::nullopt)), instance);
}

Result<Verification> Harness::boot_in(Vm vm, std::size_t instance) {
  MDEVMIG_CHECK(instance < instances_.size(), "boot_in() on an instance the harness does not have");
  if (vm_) shutdown();
  uint64_t mem = MDEVMIG_TRY(instances_[instance].mem_size());
  QtestClient* qt = MDEVMIG_TRY(vm.qtest());
  driver_.emplace(mem, options_.irq, options_.seed, options_.rates);
  if (auto r = driver_->bring_up(*qt); !r) {
    Error e = std::move(r).error();
    e.add_context("bringing up the device in " + vm.name() + " (QEMU log: " + vm.log_tail(300) +
                  ")");
    return e;
  }
  if (options_.guest_fill_mb) {
    // From 8 MiB (above every driver buffer) up to the MSI page at most.
    const uint64_t start = 8ull << 20;
    const uint64_t len =
        std::min<uint64_t>(uint64_t{options_.guest_fill_mb} << 20, layout::kMsi - start);
    MDEVMIG_TRY(qt->memset(start, len, 0xa5));
    say("guest RAM filled: " + std::to_string(len >> 20) + " MiB from " +
        std::to_string(start >> 20) + " MiB");
  }
  say("device up: " + std::to_string(mem >> 20) + " MiB of device memory, " +
      irq_mode_name(options_.irq) +
      (options_.irq == IrqMode::kIntx ? " on IOAPIC input " + std::to_string(driver_->intx_line())
                                      : ""));
  vm_.emplace(std::move(vm));
  vm_instance_ = instance;
  return verify();
}

Result<void> Harness::run_workload(std::chrono::milliseconds duration) {
  QtestClient* qt = MDEVMIG_TRY(vm_->qtest());
  {
    WorkloadThread wl(*driver_, *qt);
    std::this_thread::sleep_for(duration);
    MDEVMIG_TRY(wl.stop());
  }
  // Everything issued on a live VM lands.
  MDEVMIG_TRY(driver_->drain(*qt));
  driver_->commit(driver_->pending());
  return ok();
}

Result<Verification> Harness::verify() {
  QtestClient* qt = MDEVMIG_TRY(vm_->qtest());
  return driver_->verify(*qt, options_.sample_pages);
}

Result<Verification> Harness::settle_survivor(Vm& vm, bool adopt, RoundReport& rep) {
  QtestClient* qt = MDEVMIG_TRY(vm.qtest());
  if (adopt) MDEVMIG_TRY(driver_->adopt(*qt));
  MDEVMIG_TRY(driver_->drain(*qt));
  rep.ops_pending = driver_->pending();
  rep.ops_landed = MDEVMIG_TRY(driver_->find_cut(*qt));
  if (rep.ops_landed != rep.ops_pending)
    rep.problems.push_back(vm.name() + " lost ops: holds " + std::to_string(rep.ops_landed) +
                           " of the " + std::to_string(rep.ops_pending) + " issued");
  driver_->commit(rep.ops_landed);
  return driver_->verify(*qt, options_.sample_pages);
}

Result<Verification> Harness::moved_to(Vm vm, std::size_t instance) {
  MDEVMIG_CHECK(vm_.has_value() && driver_->pending() == 0, "moved_to() needs a settled VM");
  MDEVMIG_CHECK(instance == kRemote || instance < instances_.size(),
                "moved_to() on an unknown instance");
  RoundReport rep;
  Verification v = MDEVMIG_TRY(settle_survivor(vm, /*adopt=*/true, rep));
  v.mismatches.insert(v.mismatches.end(), rep.problems.begin(), rep.problems.end());
  say("the VM runs in " + vm.name() + " now");
  vm_.emplace(std::move(vm));
  vm_instance_ = instance;
  return v;
}

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
  driver_->reset_stats();
  // Until the switchover moment QEMU must not be able to converge (see GuestDriver).
  driver_->set_pressure(true);
  Result<MigrationOutcome> out = Error::make(EINVAL, "not run");
  Result<void> wl_result;
  {
    WorkloadThread wl(*driver_, *qt);
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
    out = run_migration(src, dst ? &*dst : nullptr,
                        src.remote() ? nullptr : &instances_[vm_instance_], driver_->mem_size(),
                        run_plan, options_.vm.dir, hooks, options_.log);
    if (!stopped) wl_result = wl.stop();
    driver_->set_bar2_writes(true);
    driver_->set_pressure(false);
  }
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
    // Saved: now load the file into a fresh QEMU on the other instance, after the
    // fault (if any) has damaged it.
    if (plan.fault == FaultKind::kCorrupt) {
      auto at = corrupt_device_data_in_file(
          plan.file,
          static_cast<uint64_t>(plan.fault_point * static_cast<double>(driver_->mem_size())));
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
    dst.emplace(MDEVMIG_TRY(start_vm(dst_instance, std::string("defer"))));
    std::string in = MDEVMIG_TRY(run_incoming_file(*dst, plan.file));
    say("restore from " + plan.file + ": " + in);
    if (in == "completed") {
      rep.survivor = Survivor::kDestination;
    } else {
      rep.survivor = Survivor::kSource;
      // The source stopped at the end of the save and is still there: resume it.
      rep.dst_end = wait_exit(*dst, 15s, rep.problems);
      dst.reset();
      MDEVMIG_TRY(src.resume());
    }
  }
  say(std::string("survivor: ") + survivor_name(rep.survivor));

  const bool faulted = rep.fault != FaultKind::kNone && rep.migration.fault_fired;
  switch (rep.survivor) {
    case Survivor::kDestination: {
      // A damaged stream must never be accepted, nor a dead destination succeed.
      if (faulted && stress::destination_must_refuse(rep.fault))
        rep.problems.push_back(std::string("the destination accepted a migration with fault ") +
                               fault_name(rep.fault));
      if (auto w = dst->wait_run_state("running", 30s); !w)
        rep.problems.push_back(w.error().message());
      // The harness stops issuing while QEMU pauses before switchover: every op must
      // have reached the destination.
      auto v = settle_survivor(*dst, /*adopt=*/true, rep);
      if (!v) {
        dst->kill();
        return std::move(v).error();
      }
      rep.verification = std::move(*v);
      auto s = src.run_state();
      rep.src_end = s ? *s : "gone";
      if (s && *s != "postmigrate")
        rep.problems.push_back("source is " + *s +
                               " after a completed migration, want postmigrate");
      rep.src_end = src.quit();
      vm_.emplace(std::move(*dst));
      vm_instance_ = dst_instance;
      break;
    }
    case Survivor::kSource: {
      if (dst) rep.dst_end = wait_exit(*dst, 20s, rep.problems);
      if (auto w = src.wait_run_state("running", 30s); !w)
        rep.problems.push_back("source: " + w.error().message());
      auto v = settle_survivor(src, /*adopt=*/false, rep);
      if (!v) return std::move(v).error();
      rep.verification = std::move(*v);
      rep.src_end = "running";
      break;
    }
    case Survivor::kNone: {
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
      break;
    }
  }
  rep.round_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  return rep;
}

Result<void> Harness::checkpoint() {
  MDEVMIG_CHECK(vm_.has_value() && driver_->pending() == 0, "checkpoint() needs a settled VM");
  Vm& vm = *vm_;
  ::unlink(checkpoint_file_.c_str());
  MDEVMIG_TRY(vm.qmp().execute("migrate-set-parameters",
                               {{"max-bandwidth", uint64_t{1} << 30}, {"downtime-limit", 300}}));
  // The workload is not running: no pause before switchover needed.
  MDEVMIG_TRY(vm.qmp().execute(
      "migrate-set-capabilities",
      {{"capabilities", json::array({{{"capability", "pause-before-switchover"}, {"state", false}},
                                     {{"capability", "return-path"}, {"state", false}}})}}));
  MDEVMIG_TRY(vm.qmp().execute("migrate", {{"uri", "exec:cat > " + checkpoint_file_}}));
  std::string st = MDEVMIG_TRY(wait_migration_end(vm, 120s));
  if (st != "completed") return Error::make(EIO, "checkpoint of " + vm.name(), "migration " + st);
  MDEVMIG_TRY(vm.resume());
  checkpoint_driver_ = *driver_;
  say("checkpoint saved to " + checkpoint_file_);
  return ok();
}

Result<Verification> Harness::recover(std::size_t instance) {
  if (!checkpoint_driver_) return Error::make(ENOENT, "recover", "no checkpoint");
  shutdown();
  Vm vm = MDEVMIG_TRY(start_vm(instance, std::string("defer")));
  std::string st = MDEVMIG_TRY(run_incoming_file(vm, checkpoint_file_));
  if (st != "completed")
    return Error::make(EIO, "restore the checkpoint into " + vm.name(), "incoming migration " + st);
  MDEVMIG_TRY(vm.wait_run_state("running", 30s));
  driver_ = *checkpoint_driver_;
  QtestClient* qt = MDEVMIG_TRY(vm.qtest());
  MDEVMIG_TRY(driver_->adopt(*qt));
  vm_.emplace(std::move(vm));
  vm_instance_ = instance;
  say("recovered from the checkpoint on " + instances_[instance].uuid());
  return verify();
}

}  // namespace mdevmig::qemu
