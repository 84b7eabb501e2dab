#include "tools/qemu/harness.h"

#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

#include "tools/qemu/workload_thread.h"

namespace mdevmig::qemu {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

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

}  // namespace

FillRange guest_fill_range(uint32_t fill_mb) {
  const uint64_t start = 8ull << 20;
  return {start, std::min<uint64_t>(uint64_t{fill_mb} << 20, layout::kMsi - start)};
}

Harness::Harness(HarnessOptions options, std::vector<mdev::MdevInstance> instances)
    : options_(std::move(options)), instances_(std::move(instances)) {}

Result<std::unique_ptr<Harness>> Harness::create(HarnessOptions options,
                                                 std::vector<mdev::MdevInstance> instances) {
  if (instances.empty()) return Error::make(EINVAL, "harness", "no mdev instances");
  options.vm.protocol =
      MDEVMIG_TRY(resolve_vfio_protocol(options.vm.protocol, options.vm.qemu_binary));
  auto h = std::unique_ptr<Harness>(new Harness(std::move(options), std::move(instances)));
  h->own_dir_ =
      MDEVMIG_TRY(prepare_vm_dir(h->options_.vm.dir, h->options_.vm.bios, "mdevmig-qemu"));
  h->checkpoint_file_ = h->options_.vm.dir + "/checkpoint.mig";
  return h;
}

Harness::~Harness() {
  shutdown();
  if (own_dir_ && !options_.keep_dir) {
    remove_vm_dir(options_.vm.dir);
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
    const FillRange fill = guest_fill_range(options_.guest_fill_mb);
    MDEVMIG_TRY(qt->memset(fill.start, fill.length, kGuestFillByte));
    say("guest RAM filled: " + std::to_string(fill.length >> 20) + " MiB from " +
        std::to_string(fill.start >> 20) + " MiB");
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
