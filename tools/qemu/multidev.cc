#include "tools/qemu/multidev.h"

#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tools/qemu/workload_thread.h"

namespace mdevmig::qemu {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

}  // namespace

bool MultiDeviceRound::verified() const {
  if (!problems.empty() || devices.empty()) return false;
  for (const auto& v : devices)
    if (!v.ok()) return false;
  return true;
}

json MultiDeviceRound::to_json() const {
  json devs = json::array();
  for (std::size_t i = 0; i < devices.size(); ++i) {
    json d = {{"ok", devices[i].ok()},
              {"mismatches", devices[i].mismatches},
              {"mem_hash", devices[i].mem_hash},
              {"descs", devices[i].descs},
              {"irq_delivered", devices[i].irq_delivered}};
    if (i < ops_pending.size()) d["ops_pending"] = ops_pending[i];
    if (i < ops_landed.size()) d["ops_landed"] = ops_landed[i];
    if (i < workload.size())
      d["workload"] = {{"bar2_writes", workload[i].bar2_writes},
                       {"descs", workload[i].descs},
                       {"irqs", workload[i].irqs}};
    devs.push_back(std::move(d));
  }
  return {{"migration", migration.to_json()},
          {"survivor", survivor_name(survivor)},
          {"devices", devs},
          {"problems", problems},
          {"src_end", src_end},
          {"dst_end", dst_end},
          {"round_ms", round_ms}};
}

MultiDeviceHarness::MultiDeviceHarness(MultiDeviceOptions options,
                                       std::vector<std::vector<mdev::MdevInstance>> sets)
    : options_(std::move(options)), sets_(std::move(sets)) {}

Result<std::unique_ptr<MultiDeviceHarness>> MultiDeviceHarness::create(
    MultiDeviceOptions options, std::vector<std::vector<mdev::MdevInstance>> sets) {
  if (sets.empty() || sets.front().empty())
    return Error::make(EINVAL, "multi-device harness", "no mdev instances");
  for (const auto& s : sets) {
    if (s.size() != sets.front().size())
      return Error::make(EINVAL, "multi-device harness", "instance sets of different sizes");
  }
  if (sets.front().size() > kMaxDevices)
    return Error::make(EINVAL, "multi-device harness",
                       std::to_string(sets.front().size()) + " devices in one VM, at most " +
                           std::to_string(kMaxDevices));
  options.vm.protocol =
      MDEVMIG_TRY(resolve_vfio_protocol(options.vm.protocol, options.vm.qemu_binary));
  auto h = std::unique_ptr<MultiDeviceHarness>(
      new MultiDeviceHarness(std::move(options), std::move(sets)));
  h->own_dir_ =
      MDEVMIG_TRY(prepare_vm_dir(h->options_.vm.dir, h->options_.vm.bios, "mdevmig-multidev"));
  return h;
}

Result<std::vector<std::vector<mdev::MdevInstance>>> make_instance_sets(std::size_t sets,
                                                                        std::size_t devices,
                                                                        const std::string& type) {
  std::vector<std::vector<mdev::MdevInstance>> out(sets);
  for (auto& set : out) {
    for (std::size_t i = 0; i < devices; ++i)
      set.push_back(MDEVMIG_TRY(mdev::MdevInstance::create(type)));
  }
  return out;
}

MultiDeviceHarness::~MultiDeviceHarness() {
  shutdown();
  if (own_dir_) {
    remove_vm_dir(options_.vm.dir);
  }
}

void MultiDeviceHarness::shutdown() {
  if (vm_) {
    vm_->quit();
    vm_.reset();
  }
}

void MultiDeviceHarness::say(const std::string& s) const {
  if (options_.log) options_.log(s);
}

Vm& MultiDeviceHarness::current_vm() {
  MDEVMIG_CHECK(vm_.has_value(), "current_vm() without a VM");
  return *vm_;
}

std::vector<pid_t> MultiDeviceHarness::live_vms() const {
  std::vector<pid_t> out;
  if (vm_ && vm_->pid() > 0) out.push_back(vm_->pid());
  return out;
}

std::vector<GuestDriver*> MultiDeviceHarness::drivers() {
  std::vector<GuestDriver*> out;
  for (auto& d : drivers_) out.push_back(&d);
  return out;
}

Result<Vm> MultiDeviceHarness::start_vm(std::size_t set, std::optional<std::string> incoming) {
  std::vector<std::string> uuids;
  for (const auto& i : sets_[set]) uuids.push_back(i.uuid());
  std::string name = "vm" + std::to_string(++vm_counter_);
  say("starting QEMU " + name + " with " + std::to_string(uuids.size()) + " devices" +
      (incoming ? " (-incoming " + *incoming + ")" : ""));
  return Vm::start(options_.vm, name, uuids, std::move(incoming));
}

Result<std::vector<Verification>> MultiDeviceHarness::boot(std::size_t set) {
  MDEVMIG_CHECK(set < sets_.size(), "boot() on set %zu of %zu", set, sets_.size());
  shutdown();
  Vm vm = MDEVMIG_TRY(start_vm(set, std::nullopt));
  QtestClient* qt = MDEVMIG_TRY(vm.qtest());
  drivers_.clear();
  drivers_.reserve(devices());
  for (std::size_t i = 0; i < devices(); ++i) {
    uint64_t mem = MDEVMIG_TRY(sets_[set][i].mem_size());
    drivers_.emplace_back(mem, options_.irq, options_.seed + i, options_.rates,
                          placement(static_cast<uint32_t>(i)));
    if (auto r = drivers_.back().bring_up(*qt); !r) {
      Error e = std::move(r).error();
      e.add_context("bringing up device " + std::to_string(i) + " in " + vm.name() +
                    " (QEMU log: " + vm.log_tail(300) + ")");
      return e;
    }
  }
  say(std::to_string(devices()) + " devices up in " + vm.name());
  vm_.emplace(std::move(vm));
  set_ = set;
  return verify();
}

Result<void> MultiDeviceHarness::run_workload(std::chrono::milliseconds duration) {
  QtestClient* qt = MDEVMIG_TRY(current_vm().qtest());
  {
    WorkloadThread wl(drivers(), *qt);
    std::this_thread::sleep_for(duration);
    MDEVMIG_TRY(wl.stop());
  }
  for (auto& d : drivers_) {
    MDEVMIG_TRY(d.drain(*qt));
    d.commit(d.pending());
  }
  return ok();
}

Result<std::vector<Verification>> MultiDeviceHarness::verify() {
  QtestClient* qt = MDEVMIG_TRY(current_vm().qtest());
  std::vector<Verification> out;
  for (auto& d : drivers_) out.push_back(MDEVMIG_TRY(d.verify(*qt, options_.sample_pages)));
  return out;
}

Result<void> MultiDeviceHarness::settle(Vm& vm, bool adopt, MultiDeviceRound& round) {
  QtestClient* qt = MDEVMIG_TRY(vm.qtest());
  for (std::size_t i = 0; i < drivers_.size(); ++i) {
    GuestDriver& d = drivers_[i];
    if (adopt) MDEVMIG_TRY(d.adopt(*qt));
    MDEVMIG_TRY(d.drain(*qt));
    const uint64_t pending = d.pending();
    const uint64_t landed = MDEVMIG_TRY(d.find_cut(*qt));
    round.ops_pending.push_back(pending);
    round.ops_landed.push_back(landed);
    if (landed != pending)
      round.problems.push_back(vm.name() + " device " + std::to_string(i) + " lost ops: holds " +
                               std::to_string(landed) + " of the " + std::to_string(pending) +
                               " issued");
    d.commit(landed);
    round.devices.push_back(MDEVMIG_TRY(d.verify(*qt, options_.sample_pages)));
  }
  return ok();
}

Result<MultiDeviceRound> MultiDeviceHarness::migrate(std::size_t dst_set,
                                                     const MigrationPlan& plan) {
  MDEVMIG_CHECK(vm_.has_value() && dst_set < sets_.size() && dst_set != set_,
                "migrate() to set %zu", dst_set);
  if (plan.transport != Transport::kUnix)
    return Error::make(EINVAL, "multi-device migration", "live over a unix socket only");
  const auto t0 = Clock::now();
  MultiDeviceRound round;
  Vm& src = *vm_;
  Vm dst = MDEVMIG_TRY(start_vm(dst_set, std::string("defer")));
  QtestClient* qt = MDEVMIG_TRY(src.qtest());
  uint64_t device_mem = 0;
  for (auto& d : drivers_) {
    d.reset_stats();
    // Until the switchover moment QEMU must not be able to converge (see GuestDriver).
    d.set_pressure(true);
    device_mem += d.mem_size();
  }
  Result<void> wl_result;
  Result<MigrationOutcome> out = [&] {
    WorkloadThread wl(drivers(), *qt);
    bool stopped = false;
    SwitchoverHooks hooks;
    hooks.before_switchover = [&] {
      for (auto& d : drivers_) {
        d.set_bar2_writes(false);
        d.set_pressure(false);
      }
    };
    hooks.quiesce = [&] {
      wl_result = wl.stop();
      stopped = true;
    };
    auto r = run_migration(src, &dst, &sets_[set_][0], device_mem, plan, options_.vm.dir, hooks,
                           options_.log);
    if (!stopped) wl_result = wl.stop();
    return r;
  }();
  for (auto& d : drivers_) {
    d.set_bar2_writes(true);
    d.set_pressure(false);
    round.workload.push_back(d.stats());
  }
  if (!out) {
    dst.kill();
    return std::move(out).error();
  }
  round.migration = std::move(*out);
  if (!wl_result) round.problems.push_back("workload: " + wl_result.error().message());

  if (round.migration.status == "completed") {
    round.survivor = Survivor::kDestination;
    if (auto w = dst.wait_run_state("running", 30s); !w)
      round.problems.push_back(w.error().message());
    if (auto s = settle(dst, /*adopt=*/true, round); !s) {
      dst.kill();
      return std::move(s).error();
    }
    auto st = src.run_state();
    if (st && *st != "postmigrate")
      round.problems.push_back("source is " + *st + " after a completed migration");
    round.src_end = src.quit();
    vm_.emplace(std::move(dst));
    set_ = dst_set;
  } else {
    round.survivor = Survivor::kSource;
    auto st = dst.wait(20s);
    if (st) {
      round.dst_end = describe_wait_status(*st);
    } else {
      round.problems.push_back("destination still alive after the migration " +
                               round.migration.status);
      dst.kill();
      round.dst_end = "killed by the harness";
    }
    if (auto w = src.wait_run_state("running", 30s); !w)
      round.problems.push_back("source: " + w.error().message());
    MDEVMIG_TRY(settle(src, /*adopt=*/false, round));
    round.src_end = "running";
  }
  round.round_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  say(std::string("survivor: ") + survivor_name(round.survivor));
  return round;
}

}  // namespace mdevmig::qemu
