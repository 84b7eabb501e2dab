#include "tools/qemu/stress.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <random>

#include "tools/qemu/leaks.h"

namespace mdevmig::qemu {
namespace {

using json = nlohmann::json;

// Where a fault leaves the VM when it fires.
Survivor expected_survivor(FaultKind f) {
  switch (f) {
    case FaultKind::kNone: return Survivor::kDestination;
    case FaultKind::kKillSrc: return Survivor::kNone;
    default: return Survivor::kSource;
  }
}

bool applies_to_file(FaultKind f) { return f != FaultKind::kKillDst; }

}  // namespace

Distribution Distribution::of(std::vector<double> v) {
  Distribution d;
  d.count = v.size();
  if (v.empty()) return d;
  std::sort(v.begin(), v.end());
  auto at = [&](double q) { return v[std::min(v.size() - 1, static_cast<std::size_t>(q * static_cast<double>(v.size() - 1) + 0.5))]; };
  d.min = v.front();
  d.max = v.back();
  d.p50 = at(0.5);
  d.p90 = at(0.9);
  double sum = 0;
  for (double x : v) sum += x;
  d.mean = sum / static_cast<double>(v.size());
  return d;
}

json Distribution::to_json() const {
  return {{"count", count}, {"min", min}, {"p50", p50}, {"p90", p90}, {"max", max}, {"mean", mean}};
}

Distribution StressReport::downtime_ms() const {
  std::vector<double> v;
  for (const auto& r : rounds)
    if (r.migration.status == "completed") v.push_back(r.migration.downtime_ms);
  return Distribution::of(std::move(v));
}

Distribution StressReport::total_ms() const {
  std::vector<double> v;
  for (const auto& r : rounds)
    if (r.migration.status == "completed") v.push_back(r.migration.total_ms);
  return Distribution::of(std::move(v));
}

json StressReport::to_json(const StressOptions& o) const {
  json faults = json::object();
  for (const auto& r : rounds) {
    auto& f = faults[fault_name(r.fault)];
    if (f.is_null()) f = {{"rounds", 0}, {"fired", 0}, {"verified", 0}};
    f["rounds"] = f["rounds"].get<int>() + 1;
    if (r.fault != FaultKind::kNone && r.migration.fault_fired) f["fired"] = f["fired"].get<int>() + 1;
    if (r.verified()) f["verified"] = f["verified"].get<int>() + 1;
  }
  json rs = json::array();
  for (const auto& r : rounds) rs.push_back(r.to_json());
  std::vector<std::string> fault_names;
  for (auto f : o.faults) fault_names.push_back(fault_name(f));
  return {{"mode", "qemu"},
          {"options", {{"rounds", o.rounds}, {"fault_rate", o.fault_rate}, {"faults", fault_names},
                       {"file_rate", o.file_rate}, {"seed", o.seed}, {"max_bandwidth", o.max_bandwidth},
                       {"downtime_limit_ms", o.downtime_limit_ms}}},
          {"rounds", rounds.size()},
          {"faults_injected", faults_injected},
          {"recoveries_verified", recoveries_verified},
          {"unverified", unverified},
          {"by_fault", faults},
          {"downtime_ms", downtime_ms().to_json()},
          {"total_ms", total_ms().to_json()},
          {"seconds", seconds},
          {"aborted", aborted},
          {"round_reports", rs}};
}

std::string StressReport::summary() const {
  std::string s;
  char buf[320];
  s += " round  transport  fault     fired  status          survivor     landed/issued  downtime  total    verified\n";
  for (const auto& r : rounds) {
    std::snprintf(buf, sizeof buf, " %5u  %-9s  %-8s  %-5s  %-14s  %-11s  %6" PRIu64 "/%-6" PRIu64 "  %6.0fms  %6.0fms  %s%s\n", r.round,
                  transport_name(r.transport), fault_name(r.fault),
                  r.fault == FaultKind::kNone ? "-" : (r.migration.fault_fired ? "yes" : "no"),
                  r.migration.status.c_str(), survivor_name(r.survivor), r.ops_landed, r.ops_pending,
                  r.migration.downtime_ms, r.migration.total_ms, r.verified() ? "yes" : "NO",
                  r.recovered ? " (recovered from checkpoint)" : "");
    s += buf;
    for (const auto& p : r.problems) s += "        problem: " + p + "\n";
    const auto& v = r.recovered ? r.recovery_verification : r.verification;
    if (v && !v->ok()) s += "        " + v->summary() + "\n";
  }
  auto dist = [&](const char* name, const Distribution& d) {
    std::snprintf(buf, sizeof buf, "%s (ms, %zu completed): min %.0f  p50 %.0f  p90 %.0f  max %.0f  mean %.0f\n", name,
                  d.count, d.min, d.p50, d.p90, d.max, d.mean);
    s += buf;
  };
  dist("downtime  ", downtime_ms());
  dist("total time", total_ms());
  std::snprintf(buf, sizeof buf, "rounds %zu, faults injected %" PRIu64 ", recoveries verified %" PRIu64
                ", unverified rounds %" PRIu64 ", %.0f s%s%s\n",
                rounds.size(), faults_injected, recoveries_verified, unverified, seconds,
                aborted.empty() ? "" : ", ABORTED: ", aborted.c_str());
  s += buf;
  return s;
}

StressReport run_stress(Harness& h, const StressOptions& o, const LogFn& log) {
  auto say = [&](const std::string& s) {
    if (log) log(s);
  };
  StressReport report;
  const auto t0 = Clock::now();
  std::mt19937_64 rng(o.seed);
  auto uniform = [&](double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng); };
  std::vector<FaultKind> order = o.faults;
  std::shuffle(order.begin(), order.end(), rng);
  std::size_t next_fault = 0;

  std::set<std::string> ours;
  for (std::size_t i = 0; i < h.instance_count(); ++i) ours.insert(h.instance(i).uuid());
  if (auto c = h.checkpoint(); !c) {
    report.aborted = "first checkpoint: " + c.error().message();
    return report;
  }
  LeakCheck leaks(ours);

  for (uint32_t round = 1; round <= o.rounds; ++round) {
    MigrationPlan plan;
    plan.transport = uniform(0, 1) < o.file_rate ? Transport::kFile : Transport::kUnix;
    plan.max_bandwidth = static_cast<uint64_t>(static_cast<double>(o.max_bandwidth) * uniform(0.5, 1.0));
    plan.downtime_limit_ms = o.downtime_limit_ms;
    plan.min_passes = static_cast<uint32_t>(rng() % (o.max_min_passes + 1));
    plan.switchover_delay = std::chrono::milliseconds(rng() % (o.max_switchover_delay.count() + 1));
    plan.fault_point = uniform(0.15, 0.85);
    if (!order.empty() && uniform(0, 1) < o.fault_rate) {
      for (std::size_t tries = 0; tries < order.size(); ++tries) {
        FaultKind f = order[next_fault++ % order.size()];
        if (plan.transport == Transport::kUnix || applies_to_file(f)) {
          plan.fault = f;
          break;
        }
      }
    }
    const std::size_t dst = (h.current_instance() + 1) % h.instance_count();
    say("round " + std::to_string(round) + ": " + (plan.transport == Transport::kUnix ? "live" : "file") +
        ", fault " + fault_name(plan.fault) + ", switchover after " + std::to_string(plan.min_passes) + " passes + " +
        std::to_string(plan.switchover_delay.count()) + " ms");
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
    if (rep.fault != FaultKind::kNone && rep.migration.fault_fired) {
      ++report.faults_injected;
      if (rep.survivor != expected_survivor(rep.fault) &&
          !(rep.fault == FaultKind::kCancel && rep.survivor == Survivor::kDestination))
        rep.problems.push_back(std::string("fault ") + fault_name(rep.fault) + " left the VM on the " +
                               survivor_name(rep.survivor) + ", expected the " +
                               survivor_name(expected_survivor(rep.fault)));
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
    // Nothing left behind: instances, QEMUs, fds; no kernel complaint.
    uint64_t rejected = 0;
    for (auto& p : leaks.check(h.live_vms(), 0, "resume rejected", &rejected)) rep.problems.push_back(p);
    if (rep.fault == FaultKind::kCorrupt && rep.migration.fault_fired && rep.survivor == Survivor::kSource && rejected == 0)
      rep.problems.push_back("corrupted stream refused without the device's 'resume rejected' kernel line");
    if (rep.fault != FaultKind::kNone && rep.migration.fault_fired && rep.verified()) ++report.recoveries_verified;
    if (!rep.verified()) ++report.unverified;
    say("round " + std::to_string(round) + ": " + rep.migration.status + ", survivor " + survivor_name(rep.survivor) +
        (rep.verified() ? ", verified" : ", NOT VERIFIED"));
    const bool lost_vm = !h.has_vm();
    report.rounds.push_back(std::move(rep));
    if (lost_vm) {
      report.aborted = "round " + std::to_string(round) + ": no VM after the round";
      break;
    }
    if (round % o.checkpoint_every == 0 || report.rounds.back().recovered) {
      if (auto c = h.checkpoint(); !c) {
        report.aborted = "checkpoint after round " + std::to_string(round) + ": " + c.error().message();
        break;
      }
    }
  }
  report.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return report;
}

}  // namespace mdevmig::qemu
