// The stress process of `mdevmig stress --mode local` (stress_local.h): it forks the
// VM processes, relays their migrations, fires the faults and judges the rounds.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/fd.h"
#include "tools/cli/stress_local.h"
#include "tools/cli/stress_local_model.h"
#include "tools/cli/stress_local_vm.h"
#include "tools/stress/leaks.h"

namespace mdevmig::cli::local {

/// A VM process as the stress process sees it.
struct Vm {
  pid_t pid = -1;
  UniqueFd ctrl;
  std::size_t instance = 0;
  std::optional<uint64_t> fds;  ///< its open fds at its first verification
};

class LocalStress {
 public:
  LocalStress(std::vector<mdev::MdevInstance> inst, LocalStressOptions o, SharedState shared,
              std::string dir)
      : inst_(std::move(inst)),
        o_(std::move(o)),
        shared_(std::move(shared)),
        dir_(std::move(dir)),
        checkpoint_file_(dir_ + "/checkpoint.mdevmig") {}
  ~LocalStress();

  [[nodiscard]] stress::StressReport run();

 private:
  void say(const std::string& s) const {
    if (o_.log) o_.log(s);
  }
  [[nodiscard]] std::chrono::milliseconds wait() const { return o_.timeout; }
  // Starts the first VM, verifies and checkpoints it; why that failed, or empty.
  [[nodiscard]] std::string boot();
  // Judges a finished round: its survivor for its fault, recovery, leaks.
  void judge(stress::RoundReport& rep, std::size_t src_instance, stress::LeakCheck& leaks);

  [[nodiscard]] Result<Vm> fork_vm(std::size_t instance, VmRole role, int mig_fd);
  // Quits (or, if `kill`, kills) a VM and reaps it; how it ended.
  std::string end_vm(Vm& vm, bool kill);
  [[nodiscard]] Result<nlohmann::json> ask(Vm& vm, const nlohmann::json& msg);
  // Verifies a VM against its expected state; a VM's fd count must not grow between rounds.
  [[nodiscard]] stress::Verification verify(Vm& vm);
  [[nodiscard]] Result<void> checkpoint();
  // A new VM on `instance` from the checkpoint.
  [[nodiscard]] Result<stress::Verification> recover(std::size_t instance);

  // stress_local_round.cc
  [[nodiscard]] Result<stress::RoundReport> round(uint32_t n, const LocalRoundPlan& plan);
  void settle(stress::RoundReport& rep, Vm& src, Vm& dst, const Result<nlohmann::json>& src_res,
              const Result<nlohmann::json>& dst_res);

  std::vector<mdev::MdevInstance> inst_;
  LocalStressOptions o_;
  SharedState shared_;
  std::string dir_, checkpoint_file_;
  std::optional<Vm> vm_;
  uint64_t last_ops_ = 0;
  stress::WorkloadStats last_stats_;
};

}  // namespace mdevmig::cli::local
