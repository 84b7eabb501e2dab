// The run of `mdevmig stress --mode local`: boot, rounds, judgement, checkpoints; the
// VM processes' lifecycle as the stress process sees it.
#include "tools/cli/stress_local.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <set>
#include <thread>

#include "tools/cli/stress_local_control.h"
#include "tools/cli/stress_local_run.h"

namespace mdevmig::cli {

using stress::FaultKind;
using stress::Survivor;
using json = nlohmann::json;

stress::RoundPlanner local_planner(const LocalStressOptions& o) {
  return {o.seed, o.faults, o.fault_rate};
}

LocalRoundPlan plan_local_round(stress::RoundPlanner& planner, const LocalStressOptions& o) {
  LocalRoundPlan p;
  p.max_iterations =
      1 + static_cast<uint32_t>(planner.below(std::max<uint32_t>(o.max_iterations, 1)));
  // A quarter of the rounds iterate to the cap; the others stop at a random target.
  p.downtime_ms = planner.uniform(0, 1) < 0.25
                      ? 0
                      : 1 + static_cast<uint32_t>(planner.below(o.downtime_ms + 1));
  p.fault_point = planner.uniform(0.1, 0.7);
  p.fault = planner.draw_fault();
  return p;
}

namespace local {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

LocalStress::~LocalStress() {
  if (vm_) end_vm(*vm_, true);
  ::unlink(checkpoint_file_.c_str());
  ::rmdir(dir_.c_str());
}

Result<Vm> LocalStress::fork_vm(std::size_t instance, VmRole role, int mig_fd) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
    return Error::from_errno("socketpair");
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = ::fork();
  if (pid < 0) return Error::from_errno("fork");
  if (pid == 0) {
    // Only the control socket and the migration socket stay open in the VM: an
    // inherited copy of another end would hide a peer's exit.
    const int c = ::fcntl(sv[1], F_DUPFD, 100);
    const int m = mig_fd >= 0 ? ::fcntl(mig_fd, F_DUPFD, 100) : -1;
    ::dup2(c, 3);
    if (m >= 0) ::dup2(m, 4);
    ::close_range(m >= 0 ? 5 : 4, ~0u, 0);
    VmSpec spec{inst_[instance].uuid(), role, checkpoint_file_, &shared_, &o_};
    ::_exit(VmProcess(std::move(spec), 3).main(m >= 0 ? 4 : -1));
  }
  ::close(sv[1]);
  Vm vm;
  vm.pid = pid;
  vm.ctrl.reset(sv[0]);
  vm.instance = instance;
  return vm;
}

std::string LocalStress::end_vm(Vm& vm, bool kill) {
  if (vm.pid < 0) return "gone";
  if (kill)
    ::kill(vm.pid, SIGKILL);
  else
    (void)send_msg(vm.ctrl.get(), {{"cmd", "quit"}});
  int st = 0;
  const auto until = Clock::now() + wait();
  pid_t r;
  while ((r = ::waitpid(vm.pid, &st, WNOHANG)) == 0 && Clock::now() < until)
    std::this_thread::sleep_for(5ms);
  if (r == 0) {
    ::kill(vm.pid, SIGKILL);
    ::waitpid(vm.pid, &st, 0);
  }
  vm.pid = -1;
  vm.ctrl.reset();
  if (WIFSIGNALED(st)) return std::string("killed by signal ") + std::to_string(WTERMSIG(st));
  return "exited " + std::to_string(WEXITSTATUS(st));
}

Result<json> LocalStress::ask(Vm& vm, const json& msg) {
  MDEVMIG_TRY(send_msg(vm.ctrl.get(), msg));
  return recv_msg(vm.ctrl.get(), wait());
}

stress::Verification LocalStress::verify(Vm& vm) {
  stress::Verification v;
  auto j = ask(vm, {{"cmd", "verify"}});
  if (!j.ok()) {
    v.mismatches.push_back("verify: " + j.error().message());
    return v;
  }
  if (!j->value("ok", false)) {
    v.mismatches.push_back("verification failed: " + j->value("error", std::string("?")));
    return v;
  }
  v.mismatches = j->value("mismatches", std::vector<std::string>{});
  v.mem_hash = j->value("mem_hash", uint64_t{0});
  v.pages_sampled = j->value("pages", uint64_t{0});
  v.descs = j->value("seq", uint64_t{0});
  const uint64_t fds = j->value("fds", uint64_t{0});
  if (!vm.fds)
    vm.fds = fds;
  else if (fds > *vm.fds)
    v.mismatches.push_back("the VM holds " + std::to_string(fds) + " fds, " +
                           std::to_string(*vm.fds) + " before");
  last_ops_ = j->value("ops", last_ops_);
  last_stats_ = {j->value("bar2_writes", uint64_t{0}),
                 j->value("descs", uint64_t{0}),
                 j->value("scratch", uint64_t{0}),
                 0,
                 0,
                 0};
  return v;
}

Result<void> LocalStress::checkpoint() {
  auto j = MDEVMIG_TRY(ask(*vm_, {{"cmd", "checkpoint"}}));
  if (!j.value("ok", false))
    return Error::make(EIO, "checkpoint", j.value("error", std::string("?")));
  return ok();
}

Result<stress::Verification> LocalStress::recover(std::size_t instance) {
  Vm vm = MDEVMIG_TRY(fork_vm(instance, VmRole::kRestore, -1));
  auto j = recv_msg(vm.ctrl.get(), wait());
  if (!j.ok() || !j->value("ok", false)) {
    std::string why = j.ok() ? j->value("error", std::string("?")) : j.error().message();
    end_vm(vm, true);
    return Error::make(EIO, "restore the checkpoint", why);
  }
  vm_.emplace(std::move(vm));
  return verify(*vm_);
}

std::string LocalStress::boot() {
  auto vm = fork_vm(0, VmRole::kBoot, -1);
  if (!vm.ok()) return "boot: " + vm.error().message();
  vm_.emplace(std::move(*vm));
  auto j = recv_msg(vm_->ctrl.get(), wait());
  if (!j.ok() || !j->value("ok", false))
    return "boot: " + (j.ok() ? j->value("error", std::string("?")) : j.error().message());
  auto v = verify(*vm_);
  if (!v.ok()) return "the freshly booted VM does not verify: " + v.summary();
  if (auto c = checkpoint(); !c.ok()) return "first checkpoint: " + c.error().message();
  return {};
}

void LocalStress::judge(stress::RoundReport& rep, std::size_t src_instance,
                        stress::LeakCheck& leaks) {
  const bool fired = rep.fault != FaultKind::kNone && rep.migration.fault_fired;
  // The relay flips a byte wherever it falls, maybe where it has no meaning (blind).
  if (fired) {
    if (auto p = stress::survivor_problem(rep, /*blind=*/true); !p.empty())
      rep.problems.push_back(p);
  } else if (rep.survivor != Survivor::kDestination) {
    rep.problems.push_back(std::string("a migration without a fired fault left the VM on the ") +
                           stress::survivor_name(rep.survivor) +
                           (rep.migration.error.empty() ? "" : ": " + rep.migration.error));
  }
  if (rep.survivor == Survivor::kNone) {
    auto v = recover(src_instance);
    if (!v.ok()) {
      rep.problems.push_back("recovery from the checkpoint: " + v.error().message());
    } else {
      rep.recovered = true;
      rep.recovery_verification = std::move(*v);
    }
  }
  std::set<pid_t> live;
  if (vm_) live.insert(vm_->pid);
  for (auto& p : leaks.check(live, vm_ ? 1 : 0, "", nullptr)) rep.problems.push_back(p);
}

stress::StressReport LocalStress::run() {
  stress::StressReport report;
  const auto t0 = Clock::now();
  std::set<std::string> ours;
  for (const auto& i : inst_) ours.insert(i.uuid());
  stress::LeakCheck leaks(ours);
  auto abort = [&](const std::string& why) {
    report.aborted = why;
    report.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    return report;
  };
  if (auto why = boot(); !why.empty()) return abort(why);

  stress::RoundPlanner planner = local_planner(o_);
  for (uint32_t n = 1; n <= o_.rounds; ++n) {
    const LocalRoundPlan plan = plan_local_round(planner, o_);
    const std::size_t src_instance = vm_->instance;
    auto r = round(n, plan);
    if (!r.ok()) {
      stress::RoundReport failed;
      failed.round = n;
      failed.fault = plan.fault;
      failed.problems.push_back("harness: " + r.error().message());
      report.rounds.push_back(std::move(failed));
      ++report.unverified;
      return abort("round " + std::to_string(n) + ": " + r.error().message());
    }
    stress::RoundReport rep = std::move(*r);
    judge(rep, src_instance, leaks);
    say("round " + std::to_string(n) + ": " + rep.migration.status + ", survivor " +
        stress::survivor_name(rep.survivor) + (rep.verified() ? ", verified" : ", NOT VERIFIED"));
    for (const auto& p : rep.problems) say("  problem: " + p);
    const bool recovered = rep.recovered;
    report.add(std::move(rep));
    if (!vm_) return abort("round " + std::to_string(n) + ": no VM after the round");
    if (n % o_.checkpoint_every == 0 || recovered) {
      if (auto c = checkpoint(); !c.ok())
        return abort("checkpoint after round " + std::to_string(n) + ": " + c.error().message());
    }
  }
  report.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return report;
}

}  // namespace local

stress::StressReport run_local_stress(std::vector<mdev::MdevInstance> instances,
                                      const LocalStressOptions& options) {
  stress::StressReport report;
  auto fail = [&](const std::string& why) {
    report.aborted = why;
    return report;
  };
  if (instances.size() != 2) return fail("local mode needs two instances");
  auto mem = instances[0].mem_size();
  if (!mem.ok()) return fail(mem.error().message());
  auto mem_b = instances[1].mem_size();
  if (!mem_b.ok() || *mem_b != *mem)
    return fail("the two instances must have the same device memory size");
  if (*mem < 4 * local::kDmaLen) return fail("device memory too small");
  auto shared = local::SharedState::create(*mem);
  if (!shared.ok()) return fail(shared.error().message());
  char tmpl[] = "/tmp/mdevmig-stress.XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return fail(Error::from_errno("mkdtemp", tmpl).message());
  // A VM that goes away is an error to handle, not a signal that kills this process.
  ::signal(SIGPIPE, SIG_IGN);
  local::LocalStress s(std::move(instances), options, std::move(*shared), tmpl);
  return s.run();
}

json local_report_json(const stress::StressReport& report, const LocalStressOptions& o) {
  json j = report.to_json("local", {{"rounds", o.rounds},
                                    {"fault_rate", o.fault_rate},
                                    {"faults", stress::fault_names(o.faults)},
                                    {"seed", o.seed},
                                    {"max_iterations", o.max_iterations},
                                    {"downtime_target_ms", o.downtime_ms},
                                    {"bar2_writes_per_s", o.bar2_writes_per_s},
                                    {"descs_per_s", o.descs_per_s},
                                    {"checkpoint_every", o.checkpoint_every}});
  for (auto& r : j["round_reports"]) r["transport"] = "socketpair";
  return j;
}

}  // namespace mdevmig::cli
