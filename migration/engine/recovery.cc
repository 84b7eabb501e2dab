#include "migration/engine/recovery.h"

namespace mdevmig::engine {

std::string Recovery::text() const {
  const std::string state = now ? vfio::mig_state_name(*now) : std::string("unknown");
  if (!recovered) return "recovery failed, device state " + state;
  if (reset) return "device reset, now " + state;
  return "device recovered to " + state;
}

Error with_recovery(Error e, const Recovery& r) {
  e.context += "; " + r.text();
  return e;
}

Recovery StateDriver::recover_to(std::optional<vfio::MigState> recover) const {
  Recovery r;
  if (recover) {
    auto back = dev_->set_mig_state(*recover);
    if (back.ok()) {
      r.recovered = true;
      r.now = *recover;
      return r;
    }
  }
  r.reset = true;
  if (dev_->reset().ok()) {
    auto now = dev_->mig_state();
    if (now.ok()) r.now = *now;
    // A v2 device is RUNNING after reset; one without v2 (v1 only) reports no state,
    // and reset is its way back too.
    r.recovered = !now.ok() || *now == vfio::MigState::kRunning;
  }
  return r;
}

Result<UniqueFd> StateDriver::set(vfio::MigState target,
                                  std::optional<vfio::MigState> recover) const {
  auto fd = dev_->set_mig_state(target);
  if (fd.ok()) return fd;
  return with_recovery(std::move(fd).error(), recover_to(recover));
}

std::string StateDriver::state_name() const {
  auto now = dev_->mig_state();
  return now.ok() ? vfio::mig_state_name(*now) : std::string("unknown");
}

}  // namespace mdevmig::engine
