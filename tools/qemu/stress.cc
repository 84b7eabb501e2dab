#include "tools/qemu/stress.h"

#include "tools/stress/leaks.h"
#include "tools/stress/planner.h"

namespace mdevmig::qemu {
namespace {

using json = nlohmann::json;

// The next round's migration, drawn from `planner`.
MigrationPlan plan_round(stress::RoundPlanner& planner, const StressOptions& o) {
  MigrationPlan plan;
  plan.transport = planner.uniform(0, 1) < o.file_rate ? Transport::kFile : Transport::kUnix;
  plan.max_bandwidth =
      static_cast<uint64_t>(static_cast<double>(o.max_bandwidth) * planner.uniform(0.5, 1.0));
  plan.downtime_limit_ms = o.downtime_limit_ms;
  plan.min_passes = static_cast<uint32_t>(planner.below(uint64_t{o.max_min_passes} + 1));
  plan.switchover_delay = std::chrono::milliseconds(
      planner.below(static_cast<uint64_t>(o.max_switchover_delay.count()) + 1));
  plan.fault_point = planner.uniform(0.15, 0.85);
  plan.fault = planner.draw_fault([&](FaultKind f) {
    return plan.transport == Transport::kUnix || stress::fault_spec(f).applies_to_file;
  });
  return plan;
}

// After a round: whether the right side survived its fault, the VM brought back from
// the checkpoint if nothing survived, and nothing left behind (instances, QEMUs, fds, no
// kernel complaint).
void finish_round(Harness& h, stress::LeakCheck& leaks, RoundReport& rep) {
  if (rep.fault != FaultKind::kNone && rep.migration.fault_fired) {
    // The proxy aims its flip at device data: the destination must refuse it.
    if (auto p = stress::survivor_problem(rep, /*blind=*/false); !p.empty())
      rep.problems.push_back(p);
  }
  if (rep.survivor == Survivor::kNone) {
    // Nothing survived: bring the VM back from the last checkpoint.
    auto v = h.recover(h.current_instance());
    if (!v) {
      rep.problems.push_back("recovery from the checkpoint: " + v.error().message());
    } else {
      rep.recovered = true;
      rep.recovery_verification = std::move(*v);
    }
  }
  uint64_t rejected = 0;
  for (auto& p : leaks.check(h.live_vms(), 0, "resume rejected", &rejected))
    rep.problems.push_back(p);
  if (rep.fault == FaultKind::kCorrupt && rep.migration.fault_fired &&
      rep.survivor == Survivor::kSource && rejected == 0)
    rep.problems.emplace_back(
        "corrupted stream refused without the device's 'resume rejected' kernel line");
}

}  // namespace

json report_json(const StressReport& report, const StressOptions& o) {
  return report.to_json("qemu", {{"rounds", o.rounds},
                                 {"fault_rate", o.fault_rate},
                                 {"faults", stress::fault_names(o.faults)},
                                 {"file_rate", o.file_rate},
                                 {"seed", o.seed},
                                 {"max_bandwidth", o.max_bandwidth},
                                 {"downtime_limit_ms", o.downtime_limit_ms}});
}

StressReport run_stress(Harness& h, const StressOptions& o, const LogFn& log) {
  auto say = [&](const std::string& s) {
    if (log) log(s);
  };
  StressReport report;
  const auto t0 = Clock::now();
  stress::RoundPlanner planner(o.seed, o.faults, o.fault_rate);

  std::set<std::string> ours;
  for (std::size_t i = 0; i < h.instance_count(); ++i) ours.insert(h.instance(i).uuid());
  if (auto c = h.checkpoint(); !c) {
    report.aborted = "first checkpoint: " + c.error().message();
    return report;
  }
  stress::LeakCheck leaks(ours);

  for (uint32_t round = 1; round <= o.rounds; ++round) {
    const MigrationPlan plan = plan_round(planner, o);
    const std::size_t dst = (h.current_instance() + 1) % h.instance_count();
    say("round " + std::to_string(round) + ": " +
        (plan.transport == Transport::kUnix ? "live" : "file") + ", fault " +
        fault_name(plan.fault) + ", switchover after " + std::to_string(plan.min_passes) +
        " passes + " + std::to_string(plan.switchover_delay.count()) + " ms");
    auto r = h.migrate(dst, plan);
    if (!r) {
      RoundReport failed;
      failed.round = round;
      failed.transport = plan.transport;
      failed.fault = plan.fault;
      failed.problems.push_back("harness: " + r.error().message());
      report.rounds.push_back(std::move(failed));
      ++report.unverified;
      report.aborted = "round " + std::to_string(round) + ": " + r.error().message();
      break;
    }
    RoundReport rep = std::move(*r);
    rep.round = round;
    finish_round(h, leaks, rep);
    say("round " + std::to_string(round) + ": " + rep.migration.status + ", survivor " +
        survivor_name(rep.survivor) + (rep.verified() ? ", verified" : ", NOT VERIFIED"));
    const bool lost_vm = !h.has_vm();
    report.add(std::move(rep));
    if (lost_vm) {
      report.aborted = "round " + std::to_string(round) + ": no VM after the round";
      break;
    }
    if (round % o.checkpoint_every == 0 || report.rounds.back().recovered) {
      if (auto c = h.checkpoint(); !c) {
        report.aborted =
            "checkpoint after round " + std::to_string(round) + ": " + c.error().message();
        break;
      }
    }
  }
  report.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return report;
}

}  // namespace mdevmig::qemu
