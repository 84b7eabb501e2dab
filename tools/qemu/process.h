// Starting and stopping a QEMU for the harness: the command line (q35, TCG, a HLT-only
// BIOS, vfio-pci on an mdev with migration enabled, QMP and qtest sockets), the
// process, its log, and its end.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "tools/qemu/qmp.h"
#include "tools/qtest/endpoint.h"
#include "tools/qtest/qtest.h"

namespace mdevmig::qemu {

/// The VFIO migration protocol the QEMU speaks, which decides how migration is
/// switched on for vfio-pci.
enum class VfioProtocol {
  kAuto,  ///< decided from the QEMU binary's version (resolve_vfio_protocol)
  kV1,    ///< QEMU <= 7.2: the v1 migration region, `x-enable-migration=on`
  kV2,    ///< QEMU >= 8.1: the v2 data_fd, `enable-migration=on`
};

[[nodiscard]] const char* vfio_protocol_name(VfioProtocol p);
/// "auto", "v1" or "v2".
[[nodiscard]] Result<VfioProtocol> parse_vfio_protocol(std::string_view text);

/// A QEMU version as major * 100 + minor (10.0.13 -> 1000), from `binary --version`.
[[nodiscard]] Result<uint32_t> qemu_version(const std::string& binary);
/// The protocol of a QEMU of `version` (major * 100 + minor): v1 up to 7.2, v2 from 8.1.
/// 8.0 (v2 behind the experimental x-enable-migration, no pre-copy) is refused.
[[nodiscard]] Result<VfioProtocol> vfio_protocol_for(uint32_t version);
/// `p` itself, or for kAuto the protocol of `binary`.
[[nodiscard]] Result<VfioProtocol> resolve_vfio_protocol(VfioProtocol p, const std::string& binary);

/// Where qtest listens beside a QMP control address (QemuConfig::control): the next port.
[[nodiscard]] inline Endpoint qtest_beside(const Endpoint& qmp) { return qmp.next(1, ".qtest"); }

/// One QEMU's configuration.
struct QemuConfig {
  std::string binary = "qemu-system-x86_64";
  /// The machine type: "q35" is the QEMU's newest; a versioned one ("pc-q35-7.2") lets
  /// QEMUs of different versions migrate to each other.
  std::string machine = "q35";
  std::string bios;  ///< path of a HLT-only BIOS image (write_halt_bios)
  uint32_t mem_mb = 128;
  /// The instance given to the VM as vfio-pci; empty: a VM without a device (the same
  /// command line with no -device, for `qemu-migrate --no-device`).
  std::string mdev_uuid;
  std::string pci_addr = "0x3";  ///< slot of the vfio-pci function on bus 0
  /// More instances in the same VM, each a vfio-pci function of its own in the slots
  /// after pci_addr (a number, then): pci_addr + 1, + 2, ...
  std::vector<std::string> more_mdevs;
  VfioProtocol protocol = VfioProtocol::kV1;  ///< resolved: kV1 or kV2
  std::optional<std::string> incoming;        ///< "-incoming" value ("defer", "unix:...")
  std::string dir;                            ///< where the sockets and the log go
  std::string name;                           ///< "src", "dst": names the sockets and the log
  /// Where QMP listens when it is not a unix socket in `dir`: a TCP address (host:port)
  /// for a harness on another host; qtest then listens on port + 1.
  std::optional<Endpoint> control;
  std::vector<std::string> extra_args;

  [[nodiscard]] Endpoint qmp_endpoint() const {
    return control ? *control : Endpoint::unix_socket(dir + "/" + name + ".qmp");
  }
  [[nodiscard]] Endpoint qtest_endpoint() const {
    return control ? qtest_beside(*control) : Endpoint::unix_socket(dir + "/" + name + ".qtest");
  }
  [[nodiscard]] std::string log_path() const { return dir + "/" + name + ".log"; }
  /// The full argv, binary first.
  [[nodiscard]] std::vector<std::string> argv() const;
};

/// Writes the BIOS the harness VMs boot: `size` bytes of 0xF4 (HLT). At reset the CPU
/// runs from the top of it with interrupts off, halts and stays halted, so the VM is
/// running but its CPU does nothing; qtest does the CPU's work.
[[nodiscard]] Result<void> write_halt_bios(const std::string& path,
                                           std::size_t size = std::size_t{64} * 1024);

/// Makes `dir` ready for a harness's VMs: a fresh `/tmp/<prefix>.XXXXXX` when it is empty
/// (returns true: the caller owns it and removes it with remove_vm_dir), else creates it
/// if missing (false); writes the HLT BIOS there when `bios` is empty.
[[nodiscard]] Result<bool> prepare_vm_dir(std::string& dir, std::string& bios,
                                          const std::string& prefix);
/// Removes a directory prepare_vm_dir made, and the files in it.
void remove_vm_dir(const std::string& dir);

/// A running QEMU, killed (SIGKILL) and reaped on destruction if still running. The
/// child gets PR_SET_PDEATHSIG, so it cannot outlive the thread that started it: start
/// QEMUs from the harness's main thread.
class QemuProcess {
 public:
  [[nodiscard]] static Result<QemuProcess> start(const QemuConfig& config);

  QemuProcess(QemuProcess&& other) noexcept;
  QemuProcess& operator=(QemuProcess&& other) noexcept;
  QemuProcess(const QemuProcess&) = delete;
  QemuProcess& operator=(const QemuProcess&) = delete;
  ~QemuProcess();

  [[nodiscard]] pid_t pid() const { return pid_; }
  [[nodiscard]] const QemuConfig& config() const { return config_; }

  [[nodiscard]] Result<QmpClient> connect_qmp(
      std::chrono::milliseconds timeout = std::chrono::seconds(30)) const;
  [[nodiscard]] Result<QtestClient> connect_qtest(
      std::chrono::milliseconds timeout = std::chrono::seconds(30)) const;

  /// True until the process has exited (reaps it if it has).
  [[nodiscard]] bool running();
  /// Sends `sig` if still running.
  void signal(int sig);
  /// Waits for the exit; the wait status (as waitpid gives it), or ETIMEDOUT.
  [[nodiscard]] Result<int> wait(std::chrono::milliseconds timeout);
  /// SIGKILL and reap; returns the wait status.
  int kill();
  /// The wait status once it has exited.
  [[nodiscard]] std::optional<int> exit_status() const { return status_; }
  /// The last `max` bytes of the log (QEMU's stderr and stdout).
  [[nodiscard]] std::string log_tail(std::size_t max = 2000) const;

 private:
  QemuProcess(QemuConfig config, pid_t pid) : config_(std::move(config)), pid_(pid) {}
  void reap(bool block);

  QemuConfig config_;
  pid_t pid_ = -1;
  std::optional<int> status_;
};

/// "exited 1", "killed by signal 9".
[[nodiscard]] std::string describe_wait_status(int status);

/// What the threads of process `pid` are doing, from /proc, for an error about a QEMU (or
/// a relay) that stopped answering: "name state wchan" for each thread, and for a thread
/// that is not running the system call it waits in with the file behind its descriptor
/// and its kernel frames in VFIO or this project's module ("qemu-system-x86 S do_sys_poll
/// ppoll, live_migration S pipe_read read(fd 31 anon_inode:[...]) [...], ..."). Empty if
/// /proc has nothing for it.
[[nodiscard]] std::string describe_threads(pid_t pid);

}  // namespace mdevmig::qemu
