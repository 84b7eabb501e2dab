#include <unistd.h>

#include <algorithm>
#include <thread>

#include "tools/qemu/migration_run.h"

namespace mdevmig::qemu::detail {

Error MigrationRun::with_threads(Error e) const {
  e.context += " (source threads: " + describe_threads(src_.pid()) + ")";
  if (dst_) e.context += " (destination threads: " + describe_threads(dst_->pid()) + ")";
  e.context += " (harness threads, the relay among them: " + describe_threads(::getpid()) + ")";
  return e;
}

Result<void> MigrationRun::follow() {
  for (;;) {
    const auto now = Clock::now();
    const uint64_t w = wire();
    samples_.push_back({wall_now(), w});
    MDEVMIG_TRY(fire_fault(w));
    if (out_.status == "source-killed") return ok();
    auto r = src_.qmp().execute("query-migrate", nullptr, time_left(until_));
    if (!r) {
      Error e = std::move(r).error();
      e.add_context("following the migration of " + src_.name());
      // A closed monitor usually means QEMU is ending: say how.
      auto st = src_.wait(std::chrono::seconds(2));
      e.context += " (QEMU " + (st ? describe_wait_status(*st) : std::string("still running")) +
                   "; log: " + src_.log_tail(600) + ")";
      // A monitor silent until the deadline: say where QEMU's threads wait.
      if (!st && e.errnum == ETIMEDOUT) return with_threads(std::move(e));
      return e;
    }
    q_ = std::move(*r);
    const std::string status = q_.value("status", "");
    const uint64_t syncs = num(q_.value("ram", json::object()), "dirty-sync-count");
    if (syncs > last_syncs_) record_pass(now, w, syncs);
    if (status == "completed" || status == "failed" || status == "cancelled") {
      out_.status = status;
      return ok();
    }
    if (status == "pre-switchover" && !continued_) {
      MDEVMIG_TRY(continue_switchover());
      continue;
    }
    MDEVMIG_TRY(allow_switchover(now, w, syncs));
    if (Clock::now() >= until_) {
      (void)src_.qmp().execute("migrate_cancel");
      return Error::make(
          ETIMEDOUT, "migration of " + src_.name(),
          "status " + status + " after " + std::to_string(plan_.timeout.count()) + " ms");
    }
    // Sleep until the next poll, or until QEMU reports a status change.
    if (auto ev = src_.qmp().wait_event("MIGRATION", plan_.poll_interval);
        !ev && ev.error().errnum != ETIMEDOUT)
      return std::move(ev).error();
  }
}

Result<void> MigrationRun::fire_fault(uint64_t w) {
  if (out_.fault_fired ||
      static_cast<double>(w) < plan_.fault_point * static_cast<double>(device_mem_) ||
      plan_.fault == FaultKind::kNone || stress::fault_spec(plan_.fault).in_stream ||
      q_.value("status", "") != "active")
    return ok();
  out_.fault_fired = true;
  out_.fault_note =
      std::string(fault_name(plan_.fault)) + " at " + std::to_string(w) + " stream bytes";
  say("fault: " + out_.fault_note);
  if (plan_.fault == FaultKind::kCancel) MDEVMIG_TRY(src_.qmp().execute("migrate_cancel"));
  if (plan_.fault == FaultKind::kKillDst && dst_) dst_->kill();
  if (plan_.fault == FaultKind::kKillSrc) {
    src_.kill();
    out_.status = "source-killed";
  }
  return ok();
}

void MigrationRun::record_pass(Clock::time_point now, uint64_t w, uint64_t syncs) {
  const json ram = q_.value("ram", json::object());
  PassRow row;
  row.pass = static_cast<uint32_t>(out_.passes.size() + 1);
  row.syncs = syncs;
  row.t_ms = std::chrono::duration<double, std::milli>(now - t0_).count();
  const uint64_t ram_pages = num(ram, "normal") + num(ram, "duplicate");
  row.ram_pages = ram_pages - last_ram_pages_;
  row.ram_bytes = ram_sent(ram) - last_ram_;
  row.wire_bytes = w - last_wire_;
  row.device_bytes = row.wire_bytes > row.ram_bytes ? row.wire_bytes - row.ram_bytes : 0;
  row.device_pages = row.device_bytes / 4096;
  last_ram_pages_ = ram_pages;
  row.device_dirty_pages = src_instance_ ? sysfs_number(src_instance_->attr("dirty_pages")) : 0;
  if (q_.contains("expected-downtime"))
    row.expected_downtime_ms = static_cast<double>(num(q_, "expected-downtime"));
  out_.passes.push_back(row);
  last_syncs_ = syncs;
  last_ram_ = ram_sent(ram);
  last_wire_ = w;
}

Result<void> MigrationRun::continue_switchover() {
  continued_ = true;
  const auto paused = Clock::now();
  if (hooks_.quiesce) hooks_.quiesce();
  out_.harness_pause_ms = std::chrono::duration<double, std::milli>(Clock::now() - paused).count();
  // The reply comes when the migration thread lets go of the BQL, after the
  // device state is saved: as long as that takes, within the migration's deadline.
  if (auto c =
          src_.qmp().execute("migrate-continue", {{"state", "pre-switchover"}}, time_left(until_));
      !c) {
    Error e = std::move(c).error();
    if (e.errnum == ETIMEDOUT) return with_threads(std::move(e));
    return e;
  }
  say("pre-switchover: qtest vCPU stopped in " + std::to_string(out_.harness_pause_ms) +
      " ms, continue");
  return ok();
}

Result<void> MigrationRun::allow_switchover(Clock::time_point now, uint64_t w, uint64_t syncs) {
  // The switchover moment: the first pass over device memory is done, then enough
  // dirty passes and time.
  if (!initial_done_ && w >= device_mem_) {
    initial_done_ = true;
    syncs_at_initial_ = syncs;
    t_initial_ = now;
  }
  if (switched_ || !initial_done_ || syncs < syncs_at_initial_ + plan_.min_passes ||
      now - t_initial_ < plan_.switchover_delay)
    return ok();
  if (hooks_.before_switchover) hooks_.before_switchover();
  MDEVMIG_TRY(
      src_.qmp().execute("migrate-set-parameters", {{"downtime-limit", plan_.downtime_limit_ms}}));
  switched_ = true;
  say("switchover allowed after " + std::to_string(syncs) + " dirty syncs (downtime-limit " +
      std::to_string(plan_.downtime_limit_ms) + " ms)");
  return ok();
}

void MigrationRun::collect_wire() {
  if (proxy_) {
    // The relay ends when a side closes; give it a moment to see the end.
    for (int i = 0; i < 50 && proxy_->bytes_forward() != wire(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (!out_.fault_fired && proxy_->fault_fired()) out_.fault_fired = true;
    if (proxy_->fault_fired()) out_.fault_note = proxy_->fault_note();
    if (stress::fault_spec(plan_.fault).in_stream) out_.fault_fired = proxy_->fault_fired();
  }
  out_.wire_bytes = wire();
  if (proxy_) {
    out_.wire_connections = proxy_->connections();
    out_.wire_main_bytes = proxy_->bytes_forward_main();
    out_.device_main_bytes = proxy_->device_data_main();
  }
}

Result<void> MigrationRun::collect_totals() {
  // QEMU sets "completed" a moment before it fills in total-time and downtime.
  for (int i = 0; i < 50 && out_.status == "completed" && num(q_, "total-time") == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    q_ = MDEVMIG_TRY(src_.qmp().execute("query-migrate"));
  }
  out_.final_query = q_;
  out_.error = q_.value("error-desc", "");
  out_.total_ms = static_cast<double>(num(q_, "total-time"));
  out_.downtime_ms = static_cast<double>(num(q_, "downtime"));
  out_.setup_ms = static_cast<double>(num(q_, "setup-time"));
  const json ram = q_.value("ram", json::object());
  out_.ram_total = num(ram, "total");
  out_.ram_transferred = ram_sent(ram);
  out_.ram_precopy_bytes = num(ram, "precopy-bytes");
  out_.ram_downtime_bytes = num(ram, "downtime-bytes");
  out_.ram_dirty_syncs = num(ram, "dirty-sync-count");
  out_.ram_normal_pages = num(ram, "normal");
  out_.ram_zero_pages = num(ram, "duplicate");
  // Split the wire bytes at the moment the source stopped (its STOP event).
  bool stopped_at_known = false;
  (void)src_.qmp().poll();
  if (auto stop = src_.qmp().peek_event("STOP"); stop && stop->timestamp >= wall0_ - 0.5) {
    auto points = proxy_ ? proxy_->timeline() : samples_;
    uint64_t before = 0;
    for (const auto& p : points)
      if (p.wall <= stop->timestamp) before = p.bytes;
    out_.wire_precopy_bytes = before;
    out_.wire_downtime_bytes = out_.wire_bytes - before;
    if (proxy_) {
      for (const auto& p : proxy_->device_timeline())
        if (p.wall <= stop->timestamp) out_.device_precopy_bytes = p.bytes;
      stopped_at_known = true;
    }
  } else {
    out_.wire_precopy_bytes = out_.wire_bytes;
  }
  // The module adds a save session's totals to these stats when the session ends, i.e.
  // when QEMU moves the source device on from STOP_COPY in its cleanup, which can come
  // after "completed" (with multifd it has). Wait for that, briefly.
  for (int i = 0; src_instance_ && i < 200; ++i) {
    auto st = src_instance_->migration_field("state");
    if (!st || (*st != "stop_copy" && *st != "pre_copy" && *st != "pre_copy_p2p")) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  out_.device_bytes = field("bytes_sent") - device_bytes_before_;
  if (stopped_at_known)
    out_.device_downtime_bytes =
        out_.device_bytes - std::min(out_.device_bytes, out_.device_precopy_bytes);
  out_.device_iterations = field("precopy_iterations");
  out_.device_dirty_last_pass = field("dirty_pages_last_pass");
  return ok();
}

}  // namespace mdevmig::qemu::detail
