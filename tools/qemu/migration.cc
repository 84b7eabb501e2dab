#include "tools/qemu/migration.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

#include "tools/qemu/migration_run.h"

namespace mdevmig::qemu {
namespace detail {
namespace {

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

Result<void> MigrationRun::check_plan() const {
  if (plan_.transport == Transport::kTcp &&
      (!plan_.tcp_relay || !plan_.tcp_incoming || !plan_.tcp_relay->is_tcp() ||
       !plan_.tcp_incoming->is_tcp()))
    return Error::make(EINVAL, "migration plan",
                       "a tcp migration needs the relay's and the destination's TCP addresses");
  return check_multifd(src_, plan_);
}

Result<void> MigrationRun::set_up(bool live, bool switch_at_once) {
  if (switch_at_once && hooks_.before_switchover) hooks_.before_switchover();
  MDEVMIG_TRY(src_.qmp().execute(
      "migrate-set-parameters",
      {{"max-bandwidth", plan_.max_bandwidth},
       {"downtime-limit", switch_at_once ? plan_.downtime_limit_ms : plan_.precopy_downtime_ms}}));
  auto cap = [](const char* name, bool on) { return json{{"capability", name}, {"state", on}}; };
  // MIGRATION events wake the follow loop at once; the pause before switchover lets
  // the harness stop its qtest vCPU (see run_migration's comment).
  json src_caps = json::array({cap("events", true), cap("pause-before-switchover", true),
                               cap("return-path", live && plan_.return_path)});
  json dst_caps = json::array({cap("return-path", plan_.return_path)});
  if (plan_.switchover_ack) {
    if (!live || !plan_.return_path)
      return Error::make(EINVAL, "migration plan",
                         "switchover-ack needs a live migration with the return path");
    src_caps.push_back(cap("switchover-ack", true));
    dst_caps.push_back(cap("switchover-ack", true));
  }
  // Set on every run: a VM migrated before keeps its capabilities.
  src_caps.push_back(cap("multifd", plan_.multifd_channels > 0));
  dst_caps.push_back(cap("multifd", plan_.multifd_channels > 0));
  MDEVMIG_TRY(src_.qmp().execute("migrate-set-capabilities", {{"capabilities", src_caps}}));
  if (plan_.multifd_channels > 0)
    MDEVMIG_TRY(src_.qmp().execute("migrate-set-parameters",
                                   {{"multifd-channels", plan_.multifd_channels}}));
  if (!live) return ok();
  MDEVMIG_TRY(dst_->qmp().execute("migrate-set-capabilities", {{"capabilities", dst_caps}}));
  if (plan_.multifd_channels > 0)
    MDEVMIG_TRY(dst_->qmp().execute("migrate-set-parameters",
                                    {{"multifd-channels", plan_.multifd_channels}}));
  return ok();
}

Result<std::string> MigrationRun::connect(const std::string& dir) {
  if (!dst_) {
    ::unlink(plan_.file.c_str());
    return "exec:cat > " + plan_.file;
  }
  const bool tcp = plan_.transport == Transport::kTcp;
  const Endpoint incoming =
      tcp ? *plan_.tcp_incoming : Endpoint::unix_socket(dir + "/" + dst_->name() + ".mig");
  const Endpoint relay = tcp ? *plan_.tcp_relay : Endpoint::unix_socket(dir + "/proxy.mig");
  MDEVMIG_TRY(dst_->qmp().execute("migrate-incoming", {{"uri", incoming.uri()}}));
  auto pf = MigrationProxy::Fault::kNone;
  if (plan_.fault == FaultKind::kCorrupt) pf = MigrationProxy::Fault::kCorruptDeviceData;
  if (plan_.fault == FaultKind::kTruncate) pf = MigrationProxy::Fault::kTruncate;
  proxy_ = MDEVMIG_TRY(MigrationProxy::start(
      relay, incoming, pf,
      static_cast<uint64_t>(plan_.fault_point * static_cast<double>(device_mem_))));
  return relay.uri();
}

Result<MigrationOutcome> MigrationRun::run(const std::string& dir) {
  const bool live = is_live(plan_.transport);
  MDEVMIG_CHECK(live == (dst_ != nullptr), "a live migration needs a destination, a file one none");
  MDEVMIG_TRY(check_plan());
  out_.multifd_channels = plan_.multifd_channels;
  device_bytes_before_ = field("bytes_sent");
  // Pre-copy must go on until the harness says otherwise: a tiny downtime-limit.
  const bool switch_at_once = plan_.min_passes == 0 && plan_.switchover_delay.count() == 0;
  switched_ = switch_at_once;
  MDEVMIG_TRY(set_up(live, switch_at_once));
  const std::string uri = MDEVMIG_TRY(connect(dir));

  // Events of earlier migrations (a checkpoint's STOP) must not be taken for this one's.
  MDEVMIG_TRY(src_.qmp().poll());
  (void)src_.qmp().take_events();
  t0_ = Clock::now();
  wall0_ = wall_now();
  MDEVMIG_TRY(src_.qmp().execute("migrate", {{"uri", uri}}));
  say("migrate " + uri);
  until_ = t0_ + plan_.timeout;
  MDEVMIG_TRY(follow());

  out_.wall_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0_).count();
  out_.switched_over = switched_;
  collect_wire();
  if (out_.status != "source-killed") MDEVMIG_TRY(collect_totals());
  if (proxy_) proxy_->stop();
  say("migration " + out_.status + (out_.error.empty() ? "" : ": " + out_.error));
  return std::move(out_);
}

}  // namespace detail

Result<MigrationOutcome> run_migration(Vm& src, Vm* dst, const mdev::MdevInstance* src_instance,
                                       uint64_t device_mem, const MigrationPlan& plan,
                                       const std::string& dir, const SwitchoverHooks& hooks,
                                       const LogFn& log) {
  return detail::MigrationRun(src, dst, src_instance, device_mem, plan, hooks, log).run(dir);
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
