// A harness VM: one QEMU process with its QMP session and, once wanted, its qtest
// session. The QEMU is either the harness's own child, or runs on another host (started
// there with its QMP and qtest on TCP) and is driven through those sessions alone.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "tools/qemu/process.h"
#include "tools/qemu/qmp.h"
#include "tools/qtest/qtest.h"

namespace mdevmig::qemu {

/// What every VM of a run shares.
struct VmSpec {
  std::string qemu_binary = "qemu-system-x86_64";
  std::string machine = "q35";                  ///< see QemuConfig::machine
  VfioProtocol protocol = VfioProtocol::kAuto;  ///< Harness::create resolves kAuto
  uint32_t mem_mb = 128;
  std::string pci_addr = "0x3";         ///< see QemuConfig::pci_addr
  std::string dir;                      ///< work directory: sockets, logs, the BIOS
  std::string bios;                     ///< HLT-only BIOS (written by the harness)
  std::vector<std::string> extra_args;  ///< appended to every QEMU command line (e.g. -trace ...)

  /// The configuration of one QEMU of the run (see Vm::start).
  [[nodiscard]] QemuConfig config(const std::string& name, const std::string& uuid,
                                  std::optional<std::string> incoming = std::nullopt,
                                  std::optional<Endpoint> control = std::nullopt) const;
};

class Vm {
 public:
  /// Starts QEMU on mdev `uuid` (with `incoming` as -incoming, if given) and connects
  /// QMP. `name` names its sockets and log.
  [[nodiscard]] static Result<Vm> start(const VmSpec& spec, const std::string& name,
                                        const std::string& uuid,
                                        std::optional<std::string> incoming = std::nullopt);
  /// The same with several instances in the VM: uuids[0] at spec.pci_addr, the others
  /// in the slots after it (QemuConfig::more_mdevs).
  [[nodiscard]] static Result<Vm> start(const VmSpec& spec, const std::string& name,
                                        const std::vector<std::string>& uuids,
                                        std::optional<std::string> incoming = std::nullopt);
  /// A QEMU on another host, started there (QemuProcess, spec.config() with `control`)
  /// with QMP on `control` and qtest on the next port: connects QMP, retrying until
  /// `timeout`. `uuid` is its instance there. (QMP takes one client at a time: the host
  /// that started it must not connect.)
  [[nodiscard]] static Result<Vm> attach(
      const std::string& name, const std::string& uuid, const Endpoint& control,
      std::chrono::milliseconds timeout = std::chrono::seconds(60));

  Vm(Vm&&) noexcept = default;
  Vm& operator=(Vm&&) noexcept = default;

  [[nodiscard]] const std::string& name() const { return name_; }
  [[nodiscard]] const std::string& uuid() const { return uuid_; }
  [[nodiscard]] QmpClient& qmp() { return *qmp_; }
  /// Runs on another host (attach()): no process here, no signals, no log.
  [[nodiscard]] bool remote() const { return !proc_; }
  /// The local QEMU's PID; -1 for a remote one.
  [[nodiscard]] pid_t pid() const { return proc_ ? proc_->pid() : -1; }
  /// Waits for the QEMU to end: a local one's wait status; for a remote one, 0 once its
  /// QMP connection has closed. ETIMEDOUT if it has not ended within `timeout`.
  [[nodiscard]] Result<int> wait(std::chrono::milliseconds timeout);
  /// The end of a local QEMU's log; a remote one's is on its host.
  [[nodiscard]] std::string log_tail(std::size_t max) const;
  /// The qtest session, connected on first use.
  [[nodiscard]] Result<QtestClient*> qtest();

  /// query-status "status": "running", "paused", "postmigrate", "inmigrate", ...
  /// (`timeout`: for the answer, which QEMU gives only once it has its big lock).
  [[nodiscard]] Result<std::string> run_state(
      std::chrono::milliseconds timeout = QmpClient::kDefaultTimeout);
  /// Waits until run_state() is `state`.
  [[nodiscard]] Result<void> wait_run_state(const std::string& state,
                                            std::chrono::milliseconds timeout);
  /// Runs a VM that a migration left stopped (`cont` once it is out of finish-migrate)
  /// and waits until it runs.
  [[nodiscard]] Result<void> resume(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  /// QMP quit, then SIGKILL if it has not exited within `timeout`. Returns how it ended.
  std::string quit(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  /// SIGKILL now (a remote QEMU: QMP quit, the nearest thing).
  void kill();
  /// A local QEMU: until its process has exited. A remote one: while QMP answers.
  [[nodiscard]] bool running();

 private:
  Vm() = default;
  std::string name_, uuid_;
  Endpoint control_;  // a remote QEMU's QMP
  std::unique_ptr<QemuProcess> proc_;
  std::unique_ptr<QmpClient> qmp_;
  std::unique_ptr<QtestClient> qtest_;
};

}  // namespace mdevmig::qemu
