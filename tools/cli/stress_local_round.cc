// One round of `mdevmig stress --mode local`: a destination VM forked, the source told
// to migrate through the relay, the round's fault fired, and the survivor settled.
#include <signal.h>

#include <atomic>
#include <functional>
#include <thread>

#include "migration/io/net.h"
#include "tools/cli/stress_local_control.h"
#include "tools/cli/stress_local_relay.h"
#include "tools/cli/stress_local_run.h"

namespace mdevmig::cli::local {
namespace {

using stress::FaultKind;
using stress::Survivor;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// The source's account of a completed migration, in the report's terms.
void fill_outcome(stress::MigrationOutcome& m, const json& r) {
  m.total_ms = r.value("total_s", 0.0) * 1000;
  m.downtime_ms = r.value("downtime_s", 0.0) * 1000;
  m.setup_ms = 0;
  m.device_bytes = r.value("stream_bytes", uint64_t{0});
  m.device_iterations = r.value("iterations", uint64_t{0});
  m.wire_bytes = r.value("wire_bytes", uint64_t{0});
  m.wire_precopy_bytes = r.value("precopy_bytes", uint64_t{0});
  m.wire_downtime_bytes = r.value("stopcopy_bytes", uint64_t{0});
  m.final_query = r;
  double t = 0;
  for (const auto& it : r.value("log", json::array())) {
    stress::PassRow row;
    row.pass = it.value("iteration", 0u);
    t += it.value("seconds", 0.0) * 1000;
    row.t_ms = t;
    row.device_bytes = it.value("device_bytes", uint64_t{0});
    row.device_pages = row.device_bytes / kPage;
    row.ram_pages = it.value("guest_pages", uint64_t{0});
    row.ram_bytes = row.ram_pages * kPage;
    row.wire_bytes = row.device_bytes + row.ram_bytes;
    m.passes.push_back(row);
  }
}

// The local driver's injector of the faults it fires itself when the stream passes the
// fault point (the relay applies the stream faults: StreamFault).
void inject(FaultKind f, const Vm& src, const Vm& dst) {
  switch (f) {
    case FaultKind::kKillDst:
      ::kill(dst.pid, SIGKILL);
      break;
    case FaultKind::kKillSrc:
      ::kill(src.pid, SIGKILL);
      break;
    case FaultKind::kCancel:
      (void)send_msg(src.ctrl.get(), {{"cmd", "cancel"}});
      break;
    default:
      break;
  }
}

}  // namespace

Result<stress::RoundReport> LocalStress::round(uint32_t n, const LocalRoundPlan& plan) {
  stress::RoundReport rep;
  rep.round = n;
  rep.transport = stress::Transport::kUnix;
  rep.fault = plan.fault;
  rep.migration.fault = plan.fault;
  const auto t0 = Clock::now();
  const uint64_t ops_before = last_ops_;
  Vm& src = *vm_;
  const std::size_t dst_instance = (src.instance + 1) % inst_.size();

  auto to_dst = MDEVMIG_TRY(io::stream_pair());
  auto to_src = MDEVMIG_TRY(io::stream_pair());
  Vm dst = MDEVMIG_TRY(fork_vm(dst_instance, VmRole::kIncoming, to_dst.second.get()));
  to_dst.second.reset();

  // The injector: the relay applies stream faults; the others fire when the stream
  // passes the fault point.
  const uint64_t first_pass = shared_.mem_size() + kGuestBytes;
  const uint64_t offset = static_cast<uint64_t>(plan.fault_point * static_cast<double>(first_pass));
  StreamFault sf(plan.fault, offset);
  std::atomic<bool> fired{false};
  std::function<void()> fire = [&] {
    fired = true;
    inject(plan.fault, src, dst);
  };
  std::thread relay_thread(relay, std::move(to_src.first), std::move(to_dst.first), std::ref(sf),
                           fire, std::chrono::milliseconds(wait()));
  say("round " + std::to_string(n) + ": instance " + std::to_string(src.instance) + " -> " +
      std::to_string(dst_instance) + ", fault " + stress::fault_name(plan.fault) + " at byte " +
      std::to_string(offset) + ", switchover within " + std::to_string(plan.max_iterations) +
      " iterations, target " + std::to_string(plan.downtime_ms) + " ms");
  auto sent = send_msg(src.ctrl.get(),
                       {{"cmd", "migrate"},
                        {"downtime_ms", plan.downtime_ms},
                        {"max_iterations", plan.max_iterations}},
                       to_src.second.get());
  to_src.second.reset();
  auto src_res =
      sent.ok() ? recv_msg(src.ctrl.get(), wait()) : Result<json>(std::move(sent).error());
  auto dst_res = recv_msg(dst.ctrl.get(), wait());
  relay_thread.join();
  rep.migration.wall_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  rep.migration.fault_fired = fired || (stress::fault_spec(plan.fault).in_stream && sf.fired());
  if (rep.migration.fault_fired)
    rep.migration.fault_note = std::string(stress::fault_name(plan.fault)) + " at " +
                               std::to_string(offset) + " stream bytes";

  // Timeouts are the harness's failure, not a round's: stop the run.
  for (const Result<json>* r : {&src_res, &dst_res})
    if (!r->ok() && r->error().errnum == ETIMEDOUT) {
      end_vm(dst, true);
      return r->error();
    }
  settle(rep, src, dst, src_res, dst_res);
  if (rep.survivor != Survivor::kNone) {
    rep.verification = verify(*vm_);
    rep.ops_pending = last_ops_ - ops_before;
    rep.ops_landed = rep.verification->ok() ? rep.ops_pending : 0;
  }
  rep.workload = last_stats_;
  rep.round_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  return rep;
}

// The migration's status from both sides' answers; the other side goes, the survivor
// holds the VM.
void LocalStress::settle(stress::RoundReport& rep, Vm& src, Vm& dst, const Result<json>& src_res,
                         const Result<json>& dst_res) {
  const FaultKind fault = rep.fault;
  const bool src_alive = src_res.ok();
  const bool dst_alive = dst_res.ok();
  const bool src_ok = src_alive && src_res->value("ok", false);
  const bool dst_ok = dst_alive && dst_res->value("ok", false);
  auto& m = rep.migration;
  if (src_ok)
    fill_outcome(m, *src_res);
  else if (src_alive)
    m.error = src_res->value("error", std::string());
  else if (dst_alive && !dst_ok)
    m.error = dst_res->value("error", std::string());
  if (!src_alive && fault == FaultKind::kKillSrc)
    m.status = "source-killed";
  else if (src_ok && dst_ok)
    m.status = "completed";
  else if (fault == FaultKind::kCancel && m.fault_fired)
    m.status = "cancelled";
  else
    m.status = "failed";
  if (!src_alive && fault != FaultKind::kKillSrc)
    rep.problems.push_back("the source VM died: " + src_res.error().message());
  if (!dst_alive && fault != FaultKind::kKillDst)
    rep.problems.push_back("the destination VM died: " + dst_res.error().message());
  if (src_ok != dst_ok && src_alive && dst_alive)
    rep.problems.push_back(std::string("source and destination disagree: the ") +
                           (src_ok ? "source" : "destination") + " completed");

  if (src_ok && dst_ok) {
    rep.survivor = Survivor::kDestination;
    rep.src_end = end_vm(src, false);
    rep.dst_end = "running";
    vm_.emplace(std::move(dst));
  } else if (src_alive) {
    rep.survivor = Survivor::kSource;
    rep.src_end = "running";
    rep.dst_end = end_vm(dst, !dst_alive);
  } else {
    rep.survivor = Survivor::kNone;
    rep.src_end = end_vm(src, true);
    rep.dst_end = end_vm(dst, !dst_alive);
    vm_.reset();
  }
}

}  // namespace mdevmig::cli::local
