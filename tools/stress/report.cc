#include "tools/stress/report.h"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>

namespace mdevmig::stress {

using json = nlohmann::json;

const char* transport_name(Transport t) {
  switch (t) {
    case Transport::kUnix:
      return "unix";
    case Transport::kTcp:
      return "tcp";
    case Transport::kFile:
      return "file";
  }
  return "?";
}

bool is_live(Transport t) { return t != Transport::kFile; }

json MigrationOutcome::to_json() const {
  json passes_j = json::array();
  for (const auto& p : passes)
    passes_j.push_back({{"pass", p.pass},
                        {"dirty_syncs", p.syncs},
                        {"t_ms", p.t_ms},
                        {"ram_pages", p.ram_pages},
                        {"ram_bytes", p.ram_bytes},
                        {"wire_bytes", p.wire_bytes},
                        {"device_bytes", p.device_bytes},
                        {"device_pages", p.device_pages},
                        {"device_dirty_pages", p.device_dirty_pages},
                        {"expected_downtime_ms",
                         p.expected_downtime_ms >= 0 ? json(p.expected_downtime_ms) : json()}});
  return {{"status", status},
          {"error", error},
          {"fault", fault_name(fault)},
          {"fault_fired", fault_fired},
          {"fault_note", fault_note},
          {"switched_over", switched_over},
          {"harness_pause_ms", harness_pause_ms},
          {"total_ms", total_ms},
          {"downtime_ms", downtime_ms},
          {"downtime_limit_ms", downtime_limit_ms},
          {"setup_ms", setup_ms},
          {"wall_ms", wall_ms},
          {"ram",
           {{"total", ram_total},
            {"transferred", ram_transferred},
            {"precopy_bytes", ram_precopy_bytes},
            {"downtime_bytes", ram_downtime_bytes},
            {"dirty_syncs", ram_dirty_syncs},
            {"normal_pages", ram_normal_pages},
            {"zero_pages", ram_zero_pages}}},
          {"multifd_channels", multifd_channels},
          {"wire",
           {{"bytes", wire_bytes},
            {"precopy_bytes", wire_precopy_bytes},
            {"downtime_bytes", wire_downtime_bytes},
            {"connections", wire_connections},
            {"main_bytes", wire_main_bytes}}},
          {"device",
           {{"bytes", device_bytes},
            {"precopy_iterations", device_iterations},
            {"dirty_pages_last_pass", device_dirty_last_pass},
            {"precopy_bytes", device_precopy_bytes},
            {"downtime_bytes", device_downtime_bytes},
            {"main_channel_bytes", device_main_bytes},
            {"multifd_bytes", device_bytes > device_main_bytes && wire_connections > 1
                                  ? device_bytes - device_main_bytes
                                  : 0}}},
          {"passes", passes_j}};
}

std::string Verification::summary() const {
  char buf[200];
  std::snprintf(buf, sizeof buf,
                "%s: SEQ %" PRIu64 ", device memory XXH64 %016" PRIx64 ", %" PRIu64
                " pages compared through BAR2, interrupt %s",
                ok() ? "verified" : "MISMATCH", descs, mem_hash, pages_sampled,
                irq_delivered ? "delivered" : "NOT delivered");
  std::string s = buf;
  for (const auto& m : mismatches) s += "\n  - " + m;
  return s;
}

bool RoundReport::verified() const {
  const auto& v = recovered ? recovery_verification : verification;
  return v && v->ok() && problems.empty();
}

json RoundReport::to_json() const {
  auto ver = [](const std::optional<Verification>& v) -> json {
    if (!v) return nullptr;
    return {{"ok", v->ok()},           {"mismatches", v->mismatches},
            {"mem_hash", v->mem_hash}, {"pages_sampled", v->pages_sampled},
            {"seq", v->descs},         {"irq_delivered", v->irq_delivered}};
  };
  return {{"round", round},
          {"transport", transport_name(transport)},
          {"fault", fault_name(fault)},
          {"migration", migration.to_json()},
          {"survivor", survivor_name(survivor)},
          {"src_end", src_end},
          {"dst_end", dst_end},
          {"ops_pending", ops_pending},
          {"ops_landed", ops_landed},
          {"workload",
           {{"bar2_writes", workload.bar2_writes},
            {"descs", workload.descs},
            {"scratch", workload.scratch},
            {"irqs", workload.irqs},
            {"seconds", workload.seconds}}},
          {"verification", ver(verification)},
          {"recovered", recovered},
          {"recovery_verification", ver(recovery_verification)},
          {"problems", problems},
          {"verified", verified()},
          {"round_ms", round_ms}};
}

std::string survivor_problem(const RoundReport& r, bool blind) {
  if (r.fault == FaultKind::kNone || !r.migration.fault_fired ||
      survivor_acceptable(r.fault, r.survivor, blind))
    return {};
  return std::string("fault ") + fault_name(r.fault) + " left the VM on the " +
         survivor_name(r.survivor) + ", expected the " + survivor_name(expected_survivor(r.fault));
}

Distribution Distribution::of(std::vector<double> v) {
  Distribution d;
  d.count = v.size();
  if (v.empty()) return d;
  std::sort(v.begin(), v.end());
  auto at = [&](double q) {
    return v[std::min(v.size() - 1, static_cast<std::size_t>(
                                        std::lround(q * static_cast<double>(v.size() - 1))))];
  };
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

void StressReport::add(RoundReport r) {
  const bool fired = r.fault != FaultKind::kNone && r.migration.fault_fired;
  if (fired) ++faults_injected;
  if (fired && r.verified()) ++recoveries_verified;
  if (!r.verified()) ++unverified;
  rounds.push_back(std::move(r));
}

json StressReport::to_json(const std::string& mode, json options) const {
  json faults = json::object();
  for (const auto& r : rounds) {
    auto& f = faults[fault_name(r.fault)];
    if (f.is_null()) f = {{"rounds", 0}, {"fired", 0}, {"verified", 0}};
    f["rounds"] = f["rounds"].get<int>() + 1;
    if (r.fault != FaultKind::kNone && r.migration.fault_fired)
      f["fired"] = f["fired"].get<int>() + 1;
    if (r.verified()) f["verified"] = f["verified"].get<int>() + 1;
  }
  json rs = json::array();
  for (const auto& r : rounds) rs.push_back(r.to_json());
  return {{"mode", mode},
          {"options", std::move(options)},
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
  s += " round  transport  fault     fired  status          survivor     landed/issued  downtime  "
       "total    verified\n";
  for (const auto& r : rounds) {
    std::snprintf(buf, sizeof buf,
                  " %5u  %-9s  %-8s  %-5s  %-14s  %-11s  %6" PRIu64 "/%-6" PRIu64
                  "  %6.0fms  %6.0fms  %s%s\n",
                  r.round, transport_name(r.transport), fault_name(r.fault),
                  r.fault == FaultKind::kNone ? "-" : (r.migration.fault_fired ? "yes" : "no"),
                  r.migration.status.c_str(), survivor_name(r.survivor), r.ops_landed,
                  r.ops_pending, r.migration.downtime_ms, r.migration.total_ms,
                  r.verified() ? "yes" : "NO", r.recovered ? " (recovered from checkpoint)" : "");
    s += buf;
    for (const auto& p : r.problems) s += "        problem: " + p + "\n";
    const auto& v = r.recovered ? r.recovery_verification : r.verification;
    if (v && !v->ok()) s += "        " + v->summary() + "\n";
  }
  auto dist = [&](const char* name, const Distribution& d) {
    std::snprintf(buf, sizeof buf,
                  "%s (ms, %zu completed): min %.0f  p50 %.0f  p90 %.0f  max %.0f  mean %.0f\n",
                  name, d.count, d.min, d.p50, d.p90, d.max, d.mean);
    s += buf;
  };
  dist("downtime  ", downtime_ms());
  dist("total time", total_ms());
  std::snprintf(buf, sizeof buf,
                "rounds %zu, faults injected %" PRIu64 ", recoveries verified %" PRIu64
                ", unverified rounds %" PRIu64 ", %.0f s%s%s\n",
                rounds.size(), faults_injected, recoveries_verified, unverified, seconds,
                aborted.empty() ? "" : ", ABORTED: ", aborted.c_str());
  s += buf;
  return s;
}

}  // namespace mdevmig::stress
