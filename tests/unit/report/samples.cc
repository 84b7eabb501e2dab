#include "tests/unit/report/samples.h"

namespace mdevmig::report::testing {

engine::MigrationReport engine_report(uint32_t passes) {
  engine::MigrationReport r;
  r.channel = schema::Channel::kV2PreCopy;
  r.iterations = passes;
  r.switchover_reason = "estimated downtime 120.0 ms fits the target 300 ms";
  r.downtime_target_s = 0.3;
  for (uint32_t i = 1; i <= passes; ++i) {
    engine::IterationStats s;
    s.iteration = i;
    s.device_bytes = (i == 1 ? 64ull << 20 : (8ull << 20) >> i);
    s.guest_pages = i == 1 ? 4096 : 300 / i;
    s.guest_bytes = s.guest_pages * 4096;
    s.pending_bytes = (4ull << 20) >> i;
    s.seconds = i == 1 ? 1.9 : 0.25 / i;
    s.bandwidth_bps = 40e6;
    s.est_downtime_s = i == 1 ? -1 : 0.9 / i;  // none until the bandwidth is known
    s.verdict = i == passes ? "switchover" : "continue";
    r.log.push_back(s);
    r.precopy_device_bytes += s.device_bytes;
    r.precopy_guest_bytes += s.guest_bytes;
    r.precopy_s += s.seconds;
  }
  r.estimated_downtime_s = passes > 1 ? r.log.back().est_downtime_s : -1;
  r.switchover_fixed_s = 0.08;
  r.downtime_s = 0.142;
  r.decision_to_stop_s = 0.01;
  r.stopcopy_send_s = 0.05;
  r.stopcopy_device_bytes = 300 << 10;
  r.stopcopy_guest_bytes = 12 << 12;
  r.total_s = r.precopy_s + r.downtime_s + 0.02;
  r.stream_bytes = r.precopy_device_bytes + r.stopcopy_device_bytes;
  r.wire_bytes = r.stream_bytes + r.precopy_guest_bytes + r.stopcopy_guest_bytes + 4096;
  r.stream_xxh3 = 0x0123456789abcdefull;
  return r;
}

qemu::MigrationOutcome qemu_completed(uint32_t passes) {
  qemu::MigrationOutcome m;
  m.status = "completed";
  m.downtime_limit_ms = 300;
  double t = 40;
  for (uint32_t i = 1; i <= passes; ++i) {
    qemu::PassRow row;
    row.pass = i;
    row.syncs = i;
    t += i == 1 ? 900 : 120;
    row.t_ms = t;
    row.ram_pages = i == 1 ? 32768 : 500;
    row.ram_bytes = row.ram_pages * 4096;
    row.device_bytes = i == 1 ? 32u << 20 : 200u << 10;
    row.wire_bytes = row.ram_bytes + row.device_bytes;
    row.device_pages = row.device_bytes / 4096;
    row.device_dirty_pages = 60 - i;
    row.expected_downtime_ms = 400.0 / i;
    m.passes.push_back(row);
  }
  m.setup_ms = 40;
  m.downtime_ms = 95;
  m.total_ms = t + m.downtime_ms;
  m.wall_ms = m.total_ms + 5;
  m.wire_precopy_bytes = 200u << 20;
  m.wire_downtime_bytes = 3u << 20;
  m.wire_bytes = m.wire_precopy_bytes + m.wire_downtime_bytes;
  m.ram_transferred = 128u << 20;
  m.ram_dirty_syncs = passes;
  m.device_bytes = 40u << 20;
  m.device_iterations = passes;
  return m;
}

qemu::MigrationOutcome qemu_cancelled() {
  qemu::MigrationOutcome m = qemu_completed(2);
  m.status = "cancelled";
  m.error = kHostile;
  m.fault = qemu::FaultKind::kCancel;
  m.fault_fired = true;
  m.fault_note = "cancel at 16777216 stream bytes";
  m.downtime_ms = 0;
  m.total_ms = 0;
  m.wire_downtime_bytes = 0;
  return m;
}

namespace {

qemu::RoundReport round(uint32_t n, qemu::FaultKind fault, bool fired, qemu::Survivor survivor,
                        bool verified, qemu::MigrationOutcome m) {
  qemu::RoundReport r;
  r.round = n;
  r.fault = fault;
  m.fault = fault;
  m.fault_fired = fired;
  r.migration = std::move(m);
  r.survivor = survivor;
  r.round_ms = 1500 + 100 * n;
  r.verification.emplace();
  if (!verified) r.verification->mismatches.emplace_back("BAR2 page 7 differs");
  return r;
}

}  // namespace

qemu::StressReport stress_report() {
  using qemu::FaultKind;
  using qemu::Survivor;
  qemu::StressReport s;
  s.rounds.push_back(
      round(1, FaultKind::kNone, false, Survivor::kDestination, true, qemu_completed(3)));
  s.rounds.push_back(round(2, FaultKind::kCancel, true, Survivor::kSource, true, qemu_cancelled()));
  auto killed = round(3, FaultKind::kKillSrc, true, Survivor::kNone, true, qemu_cancelled());
  killed.migration.status = "source-killed";
  killed.recovered = true;
  killed.recovery_verification.emplace();
  s.rounds.push_back(std::move(killed));
  // The migration ended before the fault's moment.
  s.rounds.push_back(
      round(4, FaultKind::kCancel, false, Survivor::kDestination, true, qemu_completed(2)));
  auto bad = round(5, FaultKind::kCorrupt, true, Survivor::kSource, false, qemu_cancelled());
  bad.migration.status = "failed";
  bad.problems.push_back(std::string("wrong survivor: ") + kHostile);
  s.rounds.push_back(std::move(bad));
  // Failed before its migration started: nothing recorded.
  qemu::RoundReport never;
  never.round = 6;
  never.fault = FaultKind::kKillDst;
  never.problems.emplace_back("round 6: QEMU did not start");
  s.rounds.push_back(std::move(never));
  s.faults_injected = 3;
  s.recoveries_verified = 2;
  s.unverified = 2;
  s.seconds = 12.5;
  return s;
}

}  // namespace mdevmig::report::testing
