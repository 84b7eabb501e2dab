#include "tools/report/convert.h"

#include <cinttypes>
#include <cstdio>

#include "migration/engine/session.h"
#include "tools/report/xml.h"
#include "tools/stress/faults.h"
#include "tools/stress/report.h"

namespace mdevmig::report {
namespace {

constexpr uint64_t kPage = 4096;

std::optional<double> ms(double v) {
  return v > 0 ? std::optional<double>(v / 1000) : std::nullopt;
}

}  // namespace

Migration from_engine(const engine::MigrationReport& r, std::string title) {
  Migration m;
  m.title = std::move(title);
  m.status = "completed";
  m.completed = true;
  m.other_label = "guest memory";
  m.dirty_note =
      "device state still pending after the pass (what was dirtied while it ran), in 4 KiB pages";
  m.estimate_note =
      "what is pending over the measured bandwidth, plus the measured fixed cost of switching over";
  for (const auto& s : r.log) {
    Pass p;
    p.number = s.iteration;
    p.seconds = s.seconds;
    p.device_bytes = s.device_bytes;
    p.other_bytes = s.guest_bytes;
    p.dirty_pages = (s.pending_bytes + kPage - 1) / kPage;
    if (s.est_downtime_s >= 0) p.est_downtime_s = s.est_downtime_s;
    m.passes.push_back(p);
  }
  if (r.downtime_target_s > 0) m.target_s = r.downtime_target_s;
  m.downtime_s = r.downtime_s;
  m.total_s = r.total_s;
  m.phases = {
      {"pre-copy", r.precopy_s, r.precopy_device_bytes + r.precopy_guest_bytes},
      {"stop-copy (downtime)", r.downtime_s, r.stopcopy_device_bytes + r.stopcopy_guest_bytes},
      {"total (on the wire)", r.total_s, r.wire_bytes}};
  m.facts.emplace_back("channel", schema::channel_name(r.channel));
  m.facts.emplace_back("pre-copy iterations", std::to_string(r.iterations));
  if (!r.switchover_reason.empty()) m.facts.emplace_back("switchover", r.switchover_reason);
  if (r.estimated_downtime_s >= 0)
    m.facts.emplace_back("estimated downtime at the switchover",
                         time_text(r.estimated_downtime_s) + ", of which " +
                             time_text(r.switchover_fixed_s) + " fixed");
  if (!r.log.empty())
    m.facts.emplace_back("where the downtime went", time_text(r.decision_to_stop_s) +
                                                        " until the device stopped, " +
                                                        time_text(r.stopcopy_send_s) +
                                                        " sending the rest, then the destination");
  char hash[24];
  std::snprintf(hash, sizeof hash, "%016" PRIx64, r.stream_xxh3);
  m.facts.emplace_back("device stream",
                       bytes_text(static_cast<double>(r.stream_bytes)) + ", xxh3 " + hash);
  return m;
}

Migration from_qemu(const stress::MigrationOutcome& q, std::string title, Driver driver) {
  Migration m;
  m.title = std::move(title);
  m.status = q.status.empty() ? "unknown" : q.status;
  m.completed = q.status == "completed";
  const bool engine = driver == Driver::kEngine;
  m.other_label = engine ? "guest memory" : "RAM";
  if (!engine) {
    m.dirty_note = "pages the source instance's dirty tracker held at the end of the pass";
    m.estimate_note = "QEMU's expected-downtime (what is dirty over its bandwidth)";
  }
  double prev_ms = 0;
  for (const auto& row : q.passes) {
    Pass p;
    p.number = row.pass;
    p.seconds = (row.t_ms - prev_ms) / 1000;
    prev_ms = row.t_ms;
    p.device_bytes = row.device_bytes;
    p.other_bytes = row.ram_bytes;
    if (!engine) p.dirty_pages = row.device_dirty_pages;
    if (row.expected_downtime_ms >= 0) p.est_downtime_s = row.expected_downtime_ms / 1000;
    m.passes.push_back(p);
  }
  if (q.downtime_limit_ms > 0) m.target_s = q.downtime_limit_ms / 1000.0;
  if (m.completed) {
    m.downtime_s = q.downtime_ms / 1000;
    m.total_s = q.total_ms / 1000;
  }
  // QEMU's total-time runs from migrate to completion: setup, pre-copy, downtime.
  const double precopy_ms =
      m.completed ? q.total_ms - q.setup_ms - q.downtime_ms : q.wall_ms - q.setup_ms;
  if (!engine) m.phases.push_back({"setup", ms(q.setup_ms), std::nullopt});
  m.phases.push_back({m.completed ? "pre-copy" : "pre-copy (until it ended)", ms(precopy_ms),
                      q.wire_precopy_bytes});
  if (m.completed)
    m.phases.push_back({"stop-copy (downtime)", ms(q.downtime_ms), q.wire_downtime_bytes});
  m.phases.push_back(
      {"total (on the wire)", ms(m.completed ? q.total_ms : q.wall_ms), q.wire_bytes});
  if (!q.error.empty()) m.facts.emplace_back("error", q.error);
  if (q.fault != stress::FaultKind::kNone)
    m.facts.emplace_back(
        "fault", std::string(stress::fault_name(q.fault)) + ": " +
                     (q.fault_fired ? q.fault_note : "did not fire (the migration ended first)"));
  if (!engine) {
    m.facts.emplace_back("RAM", bytes_text(static_cast<double>(q.ram_transferred)) + " in " +
                                    std::to_string(q.ram_dirty_syncs) + " dirty syncs");
    m.facts.emplace_back("device", bytes_text(static_cast<double>(q.device_bytes)) + ", " +
                                       std::to_string(q.device_iterations) +
                                       " pre-copy iterations");
    if (q.harness_pause_ms > 0)
      m.facts.emplace_back("harness pause in the downtime", time_text(q.harness_pause_ms / 1000));
  }
  return m;
}

Stress from_stress(const stress::StressReport& r, std::string title, Driver driver) {
  Stress s;
  s.title = std::move(title);
  for (const stress::FaultSpec& f : stress::fault_table()) s.fault_kinds.emplace_back(f.name);
  s.aborted = r.aborted;
  for (const auto& round : r.rounds) {
    Round o;
    o.number = round.round;
    o.fault = stress::fault_name(round.fault);
    o.fault_fired = round.migration.fault_fired;
    o.survivor = stress::survivor_name(round.survivor);
    o.status = round.migration.status.empty() ? "not run" : round.migration.status;
    o.passed = round.verified();
    o.recovered = round.recovered;
    o.seconds = round.round_ms / 1000;
    o.problems = round.problems;
    // A round that failed before its migration started has nothing to draw.
    if (!round.migration.status.empty() || !round.migration.passes.empty())
      o.migration = from_qemu(round.migration, "Round " + std::to_string(round.round), driver);
    s.rounds.push_back(std::move(o));
  }
  s.facts.emplace_back("rounds", std::to_string(r.rounds.size()));
  s.facts.emplace_back("faults fired", std::to_string(r.faults_injected));
  s.facts.emplace_back("recoveries verified", std::to_string(r.recoveries_verified));
  s.facts.emplace_back("rounds not verified", std::to_string(r.unverified));
  s.facts.emplace_back("run time", time_text(r.seconds));
  return s;
}

}  // namespace mdevmig::report
