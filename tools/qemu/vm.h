// A harness VM: one QEMU process with its QMP session and, once wanted, its qtest
// session.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "tools/qemu/process.h"
#include "tools/qemu/qmp.h"
#include "tools/qemu/qtest.h"

namespace mdevmig::qemu {

/// What every VM of a run shares.
struct VmSpec {
  std::string qemu_binary = "qemu-system-x86_64";
  VfioProtocol protocol = VfioProtocol::kAuto;  ///< Harness::create resolves kAuto
  uint32_t mem_mb = 128;
  std::string dir;   ///< work directory: sockets, logs, the BIOS
  std::string bios;  ///< HLT-only BIOS (written by the harness)
  std::vector<std::string> extra_args;  ///< appended to every QEMU command line (e.g. -trace ...)
};

class Vm {
 public:
  /// Starts QEMU on mdev `uuid` (with `incoming` as -incoming, if given) and connects
  /// QMP. `name` names its sockets and log.
  [[nodiscard]] static Result<Vm> start(const VmSpec& spec, const std::string& name, const std::string& uuid,
                                        std::optional<std::string> incoming = std::nullopt);

  Vm(Vm&&) noexcept = default;
  Vm& operator=(Vm&&) noexcept = default;

  [[nodiscard]] const std::string& name() const { return name_; }
  [[nodiscard]] const std::string& uuid() const { return uuid_; }
  [[nodiscard]] QemuProcess& process() { return *proc_; }
  [[nodiscard]] QmpClient& qmp() { return *qmp_; }
  /// The qtest session, connected on first use.
  [[nodiscard]] Result<QtestClient*> qtest();

  /// query-status "status": "running", "paused", "postmigrate", "inmigrate", ...
  [[nodiscard]] Result<std::string> run_state();
  /// Waits until run_state() is `state`.
  [[nodiscard]] Result<void> wait_run_state(const std::string& state, std::chrono::milliseconds timeout);
  /// Runs a VM that a migration left stopped (`cont` once it is out of finish-migrate)
  /// and waits until it runs.
  [[nodiscard]] Result<void> resume(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  /// QMP quit, then SIGKILL if it has not exited within `timeout`. Returns how it ended.
  std::string quit(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  /// SIGKILL now.
  void kill();
  [[nodiscard]] bool running() { return proc_->running(); }

 private:
  Vm() = default;
  std::string name_, uuid_;
  std::unique_ptr<QemuProcess> proc_;
  std::unique_ptr<QmpClient> qmp_;
  std::unique_ptr<QtestClient> qtest_;
};

}  // namespace mdevmig::qemu
