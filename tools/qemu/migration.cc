#include "tools/qemu/migration.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

#include "tools/qemu/proxy.h"
#include "tools/qtest/codec.h"

namespace mdevmig::qemu {
namespace {

using json = nlohmann::json;

uint64_t num(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<uint64_t>() : 0;
}

double wall_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

uint64_t file_size(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

uint64_t sysfs_number(const Result<std::string>& text) {
  return text ? parse_c_uint(*text).value_or(0) : 0;
}

// RAM bytes sent so far. QEMU 7.2's "transferred" counts RAM only; later QEMUs count
// everything the main channel carried (the VFIO device's data too) plus the multifd
// channels, so take the RAM-only counters (QEMU >= 7.0) and multifd's, which in pre-copy
// carry RAM only (QEMU 10.0 sends just the device's stop-copy data over multifd).
uint64_t ram_sent(const json& ram) {
  if (!ram.contains("precopy-bytes")) return num(ram, "transferred");
  return num(ram, "precopy-bytes") + num(ram, "downtime-bytes") + num(ram, "postcopy-bytes") +
         num(ram, "multifd-bytes");
}

// Multifd device state (hw/vfio/migration-multifd.c) came with QEMU 10.0; before it a
// VFIO device's state went over the main channel only, and 7.2 speaks VFIO migration v1.
constexpr uint64_t kMultifdDeviceStateVersion = 1000;  // major * 100 + minor

Result<void> check_multifd(Vm& src, const MigrationPlan& plan) {
  if (plan.multifd_channels == 0) return {};
  if (!is_live(plan.transport))
    return Error::make(EINVAL, "migration plan",
                       "multifd needs a live migration over a socket (not to a file)");
  if (plan.multifd_channels > 255)
    return Error::make(
        EINVAL, "migration plan",
        "multifd-channels goes up to 255, not " + std::to_string(plan.multifd_channels));
  json v = MDEVMIG_TRY(src.qmp().execute("query-version"));
  const json q = v.value("qemu", json::object());
  const uint64_t version = num(q, "major") * 100 + num(q, "minor");
  if (version < kMultifdDeviceStateVersion)
    return Error::make(
        ENOTSUP, "migration plan",
        "multifd device-state transfer needs QEMU >= 10.0; this QEMU is " +
            std::to_string(num(q, "major")) + "." + std::to_string(num(q, "minor")) + "." +
            std::to_string(num(q, "micro")) +
            (version < 800
                 ? " (VFIO migration v1: the device's state goes over the main channel only)"
                 : ""));
  return {};
}

}  // namespace

Result<MigrationOutcome> run_migration(Vm& src, Vm* dst, const mdev::MdevInstance* src_instance,
                                       uint64_t device_mem, const MigrationPlan& plan,
                                       const std::string& dir, const SwitchoverHooks& hooks,
                                       const LogFn& log) {
  auto say = [&](const std::string& s) {
    if (log) log(s);
  };
  MigrationOutcome out;
  out.fault = plan.fault;
  out.downtime_limit_ms = plan.downtime_limit_ms;
  const bool live = is_live(plan.transport);
  MDEVMIG_CHECK(live == (dst != nullptr), "a live migration needs a destination, a file one none");
  if (plan.transport == Transport::kTcp &&
      (!plan.tcp_relay || !plan.tcp_incoming || !plan.tcp_relay->is_tcp() ||
       !plan.tcp_incoming->is_tcp()))
    return Error::make(EINVAL, "migration plan",
                       "a tcp migration needs the relay's and the destination's TCP addresses");
  MDEVMIG_TRY(check_multifd(src, plan));
  out.multifd_channels = plan.multifd_channels;
  // The source device's own counters, when it is on this host.
  auto field = [&](const char* key) {
    return src_instance ? sysfs_number(src_instance->migration_field(key)) : 0;
  };
  const uint64_t device_bytes_before = field("bytes_sent");

  // Pre-copy must go on until the harness says otherwise: a tiny downtime-limit.
  const bool switch_at_once = plan.min_passes == 0 && plan.switchover_delay.count() == 0;
  if (switch_at_once && hooks.before_switchover) hooks.before_switchover();
  MDEVMIG_TRY(src.qmp().execute(
      "migrate-set-parameters",
      {{"max-bandwidth", plan.max_bandwidth},
       {"downtime-limit", switch_at_once ? plan.downtime_limit_ms : plan.precopy_downtime_ms}}));
  std::unique_ptr<MigrationProxy> proxy;
  std::string uri;
  auto cap = [](const char* name, bool on) { return json{{"capability", name}, {"state", on}}; };
  // MIGRATION events wake the follow loop at once; the pause before switchover lets
  // the harness stop its qtest vCPU (see run_migration's comment).
  json src_caps = json::array({cap("events", true), cap("pause-before-switchover", true),
                               cap("return-path", live && plan.return_path)});
  json dst_caps = json::array({cap("return-path", plan.return_path)});
  if (plan.switchover_ack) {
    if (!live || !plan.return_path)
      return Error::make(EINVAL, "migration plan",
                         "switchover-ack needs a live migration with the return path");
    src_caps.push_back(cap("switchover-ack", true));
    dst_caps.push_back(cap("switchover-ack", true));
  }
  // Set on every run: a VM migrated before keeps its capabilities.
  src_caps.push_back(cap("multifd", plan.multifd_channels > 0));
  dst_caps.push_back(cap("multifd", plan.multifd_channels > 0));
  MDEVMIG_TRY(src.qmp().execute("migrate-set-capabilities", {{"capabilities", src_caps}}));
  if (plan.multifd_channels > 0)
    MDEVMIG_TRY(
        src.qmp().execute("migrate-set-parameters", {{"multifd-channels", plan.multifd_channels}}));
  if (live) {
    MDEVMIG_TRY(dst->qmp().execute("migrate-set-capabilities", {{"capabilities", dst_caps}}));
    if (plan.multifd_channels > 0)
      MDEVMIG_TRY(dst->qmp().execute("migrate-set-parameters",
                                     {{"multifd-channels", plan.multifd_channels}}));
    const bool tcp = plan.transport == Transport::kTcp;
    const Endpoint incoming =
        tcp ? *plan.tcp_incoming : Endpoint::unix_socket(dir + "/" + dst->name() + ".mig");
    const Endpoint relay = tcp ? *plan.tcp_relay : Endpoint::unix_socket(dir + "/proxy.mig");
    MDEVMIG_TRY(dst->qmp().execute("migrate-incoming", {{"uri", incoming.uri()}}));
    auto pf = MigrationProxy::Fault::kNone;
    if (plan.fault == FaultKind::kCorrupt) pf = MigrationProxy::Fault::kCorruptDeviceData;
    if (plan.fault == FaultKind::kTruncate) pf = MigrationProxy::Fault::kTruncate;
    proxy = MDEVMIG_TRY(MigrationProxy::start(
        relay, incoming, pf,
        static_cast<uint64_t>(plan.fault_point * static_cast<double>(device_mem))));
    uri = relay.uri();
  } else {
    ::unlink(plan.file.c_str());
    uri = "exec:cat > " + plan.file;
  }
  auto wire = [&]() { return proxy ? proxy->bytes_forward() : file_size(plan.file); };

  // Events of earlier migrations (a checkpoint's STOP) must not be taken for this one's.
  MDEVMIG_TRY(src.qmp().poll());
  (void)src.qmp().take_events();
  const auto t0 = Clock::now();
  const double wall0 = wall_now();
  std::vector<WirePoint> samples;  // wire bytes over time (files have no proxy timeline)
  MDEVMIG_TRY(src.qmp().execute("migrate", {{"uri", uri}}));
  say("migrate " + uri);

  bool continued = false;  // migrate-continue sent (QEMU's status lags behind it)
  bool initial_done = false, switched = switch_at_once;
  uint64_t syncs_at_initial = 0, last_syncs = 0, last_ram = 0, last_wire = 0, last_ram_pages = 0;
  Clock::time_point t_initial{};
  json q;
  Deadline until = t0 + plan.timeout;
  for (;;) {
    const auto now = Clock::now();
    const uint64_t w = wire();
    samples.push_back({wall_now(), w});
    // Fault triggers that the harness fires itself, during pre-copy.
    if (!out.fault_fired &&
        static_cast<double>(w) >= plan.fault_point * static_cast<double>(device_mem) &&
        plan.fault != FaultKind::kNone && !stress::fault_spec(plan.fault).in_stream &&
        q.value("status", "") == "active") {
      out.fault_fired = true;
      out.fault_note =
          std::string(fault_name(plan.fault)) + " at " + std::to_string(w) + " stream bytes";
      say("fault: " + out.fault_note);
      if (plan.fault == FaultKind::kCancel) MDEVMIG_TRY(src.qmp().execute("migrate_cancel"));
      if (plan.fault == FaultKind::kKillDst && dst) dst->kill();
      if (plan.fault == FaultKind::kKillSrc) {
        src.kill();
        out.status = "source-killed";
        break;
      }
    }
    auto r = src.qmp().execute("query-migrate", nullptr, time_left(until));
    if (!r) {
      Error e = std::move(r).error();
      e.add_context("following the migration of " + src.name());
      // A closed monitor usually means QEMU is ending: say how.
      auto st = src.wait(std::chrono::seconds(2));
      e.context += " (QEMU " + (st ? describe_wait_status(*st) : std::string("still running")) +
                   "; log: " + src.log_tail(600) + ")";
      // A monitor silent until the deadline: say where QEMU's threads wait.
      if (!st && e.errnum == ETIMEDOUT) {
        e.context += " (source threads: " + describe_threads(src.pid()) + ")";
        if (dst) e.context += " (destination threads: " + describe_threads(dst->pid()) + ")";
        e.context +=
            " (harness threads, the relay among them: " + describe_threads(::getpid()) + ")";
      }
      return e;
    }
    q = std::move(*r);
    const std::string status = q.value("status", "");
    const json ram = q.value("ram", json::object());
    const uint64_t syncs = num(ram, "dirty-sync-count");
    if (syncs > last_syncs) {
      PassRow row;
      row.pass = static_cast<uint32_t>(out.passes.size() + 1);
      row.syncs = syncs;
      row.t_ms = std::chrono::duration<double, std::milli>(now - t0).count();
      const uint64_t ram_pages = num(ram, "normal") + num(ram, "duplicate");
      row.ram_pages = ram_pages - last_ram_pages;
      row.ram_bytes = ram_sent(ram) - last_ram;
      row.wire_bytes = w - last_wire;
      row.device_bytes = row.wire_bytes > row.ram_bytes ? row.wire_bytes - row.ram_bytes : 0;
      row.device_pages = row.device_bytes / 4096;
      last_ram_pages = ram_pages;
      row.device_dirty_pages = src_instance ? sysfs_number(src_instance->attr("dirty_pages")) : 0;
      if (q.contains("expected-downtime"))
        row.expected_downtime_ms = static_cast<double>(num(q, "expected-downtime"));
      out.passes.push_back(row);
      last_syncs = syncs;
      last_ram = ram_sent(ram);
      last_wire = w;
    }
    if (status == "completed" || status == "failed" || status == "cancelled") {
      out.status = status;
      break;
    }
    if (status == "pre-switchover" && !continued) {
      continued = true;
      const auto paused = Clock::now();
      if (hooks.quiesce) hooks.quiesce();
      out.harness_pause_ms =
          std::chrono::duration<double, std::milli>(Clock::now() - paused).count();
      // The reply comes when the migration thread lets go of the BQL, after the
      // device state is saved: as long as that takes, within the migration's deadline.
      if (auto c = src.qmp().execute("migrate-continue", {{"state", "pre-switchover"}},
                                     time_left(until));
          !c) {
        Error e = std::move(c).error();
        if (e.errnum == ETIMEDOUT) {
          e.context += " (source threads: " + describe_threads(src.pid()) + ")";
          if (dst) e.context += " (destination threads: " + describe_threads(dst->pid()) + ")";
          e.context +=
              " (harness threads, the relay among them: " + describe_threads(::getpid()) + ")";
        }
        return e;
      }
      say("pre-switchover: qtest vCPU stopped in " + std::to_string(out.harness_pause_ms) +
          " ms, continue");
      continue;
    }
    // The switchover moment: the first pass over device memory is done, then enough
    // dirty passes and time.
    if (!initial_done && w >= device_mem) {
      initial_done = true;
      syncs_at_initial = syncs;
      t_initial = now;
    }
    if (!switched && initial_done && syncs >= syncs_at_initial + plan.min_passes &&
        now - t_initial >= plan.switchover_delay) {
      if (hooks.before_switchover) hooks.before_switchover();
      MDEVMIG_TRY(src.qmp().execute("migrate-set-parameters",
                                    {{"downtime-limit", plan.downtime_limit_ms}}));
      switched = true;
      say("switchover allowed after " + std::to_string(syncs) + " dirty syncs (downtime-limit " +
          std::to_string(plan.downtime_limit_ms) + " ms)");
    }
    if (Clock::now() >= until) {
      (void)src.qmp().execute("migrate_cancel");
      return Error::make(
          ETIMEDOUT, "migration of " + src.name(),
          "status " + status + " after " + std::to_string(plan.timeout.count()) + " ms");
    }
    // Sleep until the next poll, or until QEMU reports a status change.
    if (auto ev = src.qmp().wait_event("MIGRATION", plan.poll_interval);
        !ev && ev.error().errnum != ETIMEDOUT)
      return std::move(ev).error();
  }
  out.wall_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  out.switched_over = switched;
  if (proxy) {
    // The relay ends when a side closes; give it a moment to see the end.
    for (int i = 0; i < 50 && proxy->bytes_forward() != wire(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (!out.fault_fired && proxy->fault_fired()) out.fault_fired = true;
    if (proxy->fault_fired()) out.fault_note = proxy->fault_note();
    if (stress::fault_spec(plan.fault).in_stream) out.fault_fired = proxy->fault_fired();
  }
  out.wire_bytes = wire();
  if (proxy) {
    out.wire_connections = proxy->connections();
    out.wire_main_bytes = proxy->bytes_forward_main();
    out.device_main_bytes = proxy->device_data_main();
  }

  if (out.status != "source-killed") {
    // QEMU sets "completed" a moment before it fills in total-time and downtime.
    for (int i = 0; i < 50 && out.status == "completed" && num(q, "total-time") == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      q = MDEVMIG_TRY(src.qmp().execute("query-migrate"));
    }
    out.final_query = q;
    out.error = q.value("error-desc", "");
    out.total_ms = static_cast<double>(num(q, "total-time"));
    out.downtime_ms = static_cast<double>(num(q, "downtime"));
    out.setup_ms = static_cast<double>(num(q, "setup-time"));
    const json ram = q.value("ram", json::object());
    out.ram_total = num(ram, "total");
    out.ram_transferred = ram_sent(ram);
    out.ram_precopy_bytes = num(ram, "precopy-bytes");
    out.ram_downtime_bytes = num(ram, "downtime-bytes");
    out.ram_dirty_syncs = num(ram, "dirty-sync-count");
    out.ram_normal_pages = num(ram, "normal");
    out.ram_zero_pages = num(ram, "duplicate");
    // Split the wire bytes at the moment the source stopped (its STOP event).
    bool stopped_at_known = false;
    (void)src.qmp().poll();
    if (auto stop = src.qmp().peek_event("STOP"); stop && stop->timestamp >= wall0 - 0.5) {
      auto points = proxy ? proxy->timeline() : samples;
      uint64_t before = 0;
      for (const auto& p : points)
        if (p.wall <= stop->timestamp) before = p.bytes;
      out.wire_precopy_bytes = before;
      out.wire_downtime_bytes = out.wire_bytes - before;
      if (proxy) {
        for (const auto& p : proxy->device_timeline())
          if (p.wall <= stop->timestamp) out.device_precopy_bytes = p.bytes;
        stopped_at_known = true;
      }
    } else {
      out.wire_precopy_bytes = out.wire_bytes;
    }
    // The module adds a save session's totals to these stats when the session ends, i.e.
    // when QEMU moves the source device on from STOP_COPY in its cleanup, which can come
    // after "completed" (with multifd it has). Wait for that, briefly.
    for (int i = 0; src_instance && i < 200; ++i) {
      auto st = src_instance->migration_field("state");
      if (!st || (*st != "stop_copy" && *st != "pre_copy" && *st != "pre_copy_p2p")) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    out.device_bytes = field("bytes_sent") - device_bytes_before;
    if (stopped_at_known)
      out.device_downtime_bytes =
          out.device_bytes - std::min(out.device_bytes, out.device_precopy_bytes);
    out.device_iterations = field("precopy_iterations");
    out.device_dirty_last_pass = field("dirty_pages_last_pass");
  }
  if (proxy) proxy->stop();
  say("migration " + out.status + (out.error.empty() ? "" : ": " + out.error));
  return out;
}

Result<std::string> run_incoming_file(Vm& dst, const std::string& file,
                                      std::chrono::milliseconds timeout) {
  MDEVMIG_TRY(dst.qmp().execute("migrate-incoming", {{"uri", "exec:cat " + file}}));
  Deadline until = deadline_in(timeout);
  for (;;) {
    // A failed load ends the destination QEMU: that is the answer too.
    if (!dst.running()) return std::string("failed");
    auto r = dst.qmp().execute("query-migrate", nullptr, time_left(until));
    if (!r) {
      // The monitor closes a moment before the process ends.
      if (dst.wait(std::chrono::seconds(5))) return std::string("failed");
      return std::move(r).error();
    }
    std::string status = r->value("status", "");
    if (status == "completed" || status == "failed") return status;
    if (Clock::now() >= until) return Error::make(ETIMEDOUT, "incoming migration", file);
    std::this_thread::sleep_for(std::chrono::milliseconds(40));
  }
}

}  // namespace mdevmig::qemu
