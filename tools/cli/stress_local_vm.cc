// VmProcess: its life, its control loop, and migrations in either role.
#include "tools/cli/stress_local_vm.h"

#include <linux/vfio.h>
#include <sys/socket.h>

#include "tools/cli/stress_local_control.h"
#include "tools/guest/ring.h"

namespace mdevmig::cli::local {

using json = nlohmann::json;

int VmProcess::main(int mig_fd) {
  auto r = open();
  if (r.ok() && spec_.role == VmRole::kBoot) r = boot();
  if (r.ok() && spec_.role == VmRole::kRestore) r = restore();
  if (!r.ok()) {
    reply(error_json(r.error()));
    return 3;
  }
  if (spec_.role == VmRole::kIncoming) {
    incoming(UniqueFd(mig_fd));
  } else {
    reply({{"ok", true}});
  }
  for (;;) {
    UniqueFd passed;
    auto m = recv_msg(ctrl_, std::chrono::hours(24), &passed);
    if (!m.ok()) break;
    const std::string cmd = m->value("cmd", "");
    if (cmd == "quit") break;
    if (cmd == "verify")
      reply(verify());
    else if (cmd == "checkpoint")
      reply(checkpoint());
    else if (cmd == "migrate")
      migrate(*m, std::move(passed));
    else if (cmd == "cancel")
      cancel();
  }
  if (source_.joinable()) source_.join();
  if (workload_) workload_->stop();
  return 0;
}

void VmProcess::reply(const json& j) {
  std::lock_guard lock(reply_mu_);
  (void)send_msg(ctrl_, j);
}

Result<void> VmProcess::open() {
  dev_ = std::make_unique<OpenedDevice>(
      MDEVMIG_TRY(OpenedDevice::open(MDEVMIG_TRY(parse_device_spec(spec_.uuid)))));
  id_ = MDEVMIG_TRY(dev_->identity());
  guest_.emplace(
      MDEVMIG_TRY(engine::GuestMemory::create(*dev_->container(), kGuestIova, kGuestBytes, true)));
  port_.emplace(dev(), *guest_);
  bar2_ = MDEVMIG_TRY(dev().mmap_region(VFIO_PCI_BAR2_REGION_INDEX, 0));
  if (bar2_.size() < spec_.shared->mem_size())
    return Error::make(EINVAL, "stress VM", "BAR2 smaller than device memory");
  workload_.emplace(*port_, ring_, bar2_, spec_.options->bar2_writes_per_s,
                    spec_.options->descs_per_s);
  return ok();
}

// A fresh VM: bus master, the ring in guest memory, the engine on; the expected state
// is a fresh device brought up the same way (the module hands out instances zeroed).
Result<void> VmProcess::boot() {
  MDEVMIG_TRY(guest::enable_bus_master(*port_));
  MDEVMIG_TRY(ring_.program(*port_));
  expected_ = std::make_unique<Expected>(spec_.shared->mem_size());
  return ok();
}

// After a lost VM: the device loads the checkpoint file (`mdevmig restore`), guest
// memory and the expected state are the checkpoint's.
Result<void> VmProcess::restore() {
  MDEVMIG_TRY(
      run_self({"restore", "fd:" + std::to_string(dev().fd()), spec_.checkpoint_file}, dev().fd()));
  auto e = std::make_unique<Expected>(spec_.shared->mem_size());
  MDEVMIG_TRY(spec_.shared->load_checkpoint(*e, guest_bytes()));
  guest_->mark_cpu_dirty(0, kGuestBytes);
  ring_.resync(e->counts.descs);
  expected_ = std::move(e);
  return ok();
}

Result<Expected*> VmProcess::expected() {
  if (!expected_) {
    auto e = std::make_unique<Expected>(spec_.shared->mem_size());
    MDEVMIG_TRY(spec_.shared->take_over(*e));
    ring_.resync(e->counts.descs);
    expected_ = std::move(e);
  }
  return expected_.get();
}

void VmProcess::incoming(UniqueFd sock) {
  // The channel and the connection are closed before the answer, so the VM's fds
  // are settled when the stress process looks.
  auto rep = [&]() -> Result<engine::MigrationReport> {
    auto ch = MDEVMIG_TRY(engine::open_channel(dev(), spec_.options->channel, true));
    engine::DestinationOptions o;
    o.peer_timeout = spec_.options->timeout;
    return engine::run_destination(*ch, id_, &*guest_, sock.get(), o);
  }();
  sock.reset();
  reply(rep.ok() ? json{{"ok", true}, {"downtime_s", rep->downtime_s}} : error_json(rep.error()));
}

void VmProcess::migrate(const json& m, UniqueFd sock) {
  if (source_.joinable()) source_.join();
  if (!sock.valid()) {
    reply(error_json(Error::make(EINVAL, "migrate", "no connection passed")));
    return;
  }
  sock_fd_ = sock.get();
  source_ = std::thread([this, m, s = std::move(sock)]() mutable {
    auto rep = [&]() -> Result<engine::MigrationReport> {
      auto ch = MDEVMIG_TRY(engine::open_channel(dev(), spec_.options->channel, true));
      engine::SourceOptions o;
      o.policy.downtime_target_s = m.value("downtime_ms", 0u) / 1000.0;
      o.policy.max_iterations = m.value("max_iterations", 1u);
      o.peer_timeout = spec_.options->timeout;
      o.before_stop = [this] { workload_->pause(); };
      o.after_recover = [this] {
        if (expected_) workload_->run(*expected_);
      };
      return engine::run_source(*ch, id_, &*guest_, s.get(), o);
    }();
    {
      std::lock_guard lock(sock_mu_);
      sock_fd_ = -1;
      s.reset();
    }
    // The VM moved: its destination continues the expected state from here.
    if (rep.ok() && expected_) {
      if (auto h = spec_.shared->hand_off(*expected_); !h.ok()) rep = std::move(h).error();
    }
    reply(rep.ok() ? migrated(*rep) : error_json(rep.error()));
  });
}

json VmProcess::migrated(const engine::MigrationReport& rep) const {
  json log = json::array();
  for (const auto& it : rep.log)
    log.push_back({{"iteration", it.iteration},
                   {"device_bytes", it.device_bytes},
                   {"guest_pages", it.guest_pages},
                   {"seconds", it.seconds}});
  return {{"ok", true},
          {"total_s", rep.total_s},
          {"downtime_s", rep.downtime_s},
          {"precopy_s", rep.precopy_s},
          {"iterations", rep.iterations},
          {"switchover_reason", rep.switchover_reason},
          {"stream_bytes", rep.stream_bytes},
          {"wire_bytes", rep.wire_bytes},
          {"precopy_bytes", rep.precopy_device_bytes + rep.precopy_guest_bytes},
          {"stopcopy_bytes", rep.stopcopy_device_bytes + rep.stopcopy_guest_bytes},
          {"log", log}};
}

// Aborts the session in flight: its connection goes down under it.
void VmProcess::cancel() {
  std::lock_guard lock(sock_mu_);
  if (sock_fd_ >= 0) ::shutdown(sock_fd_, SHUT_RDWR);
}

}  // namespace mdevmig::cli::local
