#include "tools/qemu/vm.h"

#include <thread>

namespace mdevmig::qemu {
namespace {

// How long a QEMU just started may take to open its QMP socket: under TCG inside a
// loaded lab guest, more than a minute.
constexpr std::chrono::seconds kStartTimeout{120};

}  // namespace

QemuConfig VmSpec::config(const std::string& name, const std::string& uuid,
                          std::optional<std::string> incoming,
                          std::optional<Endpoint> control) const {
  QemuConfig cfg;
  cfg.binary = qemu_binary;
  cfg.machine = machine;
  cfg.control = std::move(control);
  cfg.bios = bios;
  cfg.mem_mb = mem_mb;
  cfg.pci_addr = pci_addr;
  cfg.mdev_uuid = uuid;
  cfg.protocol = protocol;
  cfg.incoming = std::move(incoming);
  cfg.dir = dir;
  cfg.name = name;
  cfg.extra_args = extra_args;
  return cfg;
}

Result<Vm> Vm::start(const VmSpec& spec, const std::string& name, const std::string& uuid,
                     std::optional<std::string> incoming) {
  return start(spec, name, std::vector<std::string>{uuid}, std::move(incoming));
}

Result<Vm> Vm::start(const VmSpec& spec, const std::string& name,
                     const std::vector<std::string>& uuids, std::optional<std::string> incoming) {
  if (uuids.empty()) return Error::make(EINVAL, "start QEMU " + name, "no mdev instance");
  QemuConfig cfg = spec.config(name, uuids[0], std::move(incoming));
  cfg.more_mdevs.assign(uuids.begin() + 1, uuids.end());
  Vm vm;
  vm.name_ = name;
  vm.uuid_ = uuids[0];
  vm.proc_ = std::make_unique<QemuProcess>(MDEVMIG_TRY(QemuProcess::start(cfg)));
  auto qmp = vm.proc_->connect_qmp(kStartTimeout);
  if (!qmp) {
    Error e = std::move(qmp).error();
    vm.proc_->kill();
    e.context += " (" + describe_wait_status(vm.proc_->exit_status().value_or(-1)) +
                 "; log: " + vm.proc_->log_tail(400) + ")";
    return e;
  }
  vm.qmp_ = std::make_unique<QmpClient>(std::move(qmp).value());
  return vm;
}

Result<Vm> Vm::attach(const std::string& name, const std::string& uuid, const Endpoint& control,
                      std::chrono::milliseconds timeout) {
  Vm vm;
  vm.name_ = name;
  vm.uuid_ = uuid;
  vm.control_ = control;
  auto qmp = QmpClient::connect(control, timeout);
  if (!qmp) {
    Error e = std::move(qmp).error();
    e.add_context("QEMU " + name + " on another host");
    return e;
  }
  vm.qmp_ = std::make_unique<QmpClient>(std::move(qmp).value());
  return vm;
}

Result<QtestClient*> Vm::qtest() {
  if (!qtest_)
    qtest_ = std::make_unique<QtestClient>(
        MDEVMIG_TRY(proc_ ? proc_->connect_qtest() : QtestClient::connect(qtest_beside(control_))));
  return qtest_.get();
}

Result<int> Vm::wait(std::chrono::milliseconds timeout) {
  if (proc_) return proc_->wait(timeout);
  Deadline until = deadline_in(timeout);
  for (;;) {
    if (!running()) return 0;
    if (Clock::now() >= until) return Error::make(ETIMEDOUT, "wait for QEMU " + name_ + " to end");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

std::string Vm::log_tail(std::size_t max) const {
  return proc_ ? proc_->log_tail(max) : "(the log is on the QEMU's host)";
}

bool Vm::running() {
  if (proc_) return proc_->running();
  // A remote QEMU that ended has closed its monitor.
  return qmp_ && qmp_->execute("query-status", nullptr, std::chrono::seconds(5)).ok();
}

Result<std::string> Vm::run_state(std::chrono::milliseconds timeout) {
  auto r = MDEVMIG_TRY(qmp_->execute("query-status", nullptr, timeout));
  if (!r.is_object() || !r.contains("status") || !r["status"].is_string())
    return Error::make(EPROTO, "QMP query-status", "no status in " + r.dump());
  return r["status"].get<std::string>();
}

Result<void> Vm::wait_run_state(const std::string& state, std::chrono::milliseconds timeout) {
  Deadline until = deadline_in(timeout);
  std::string last;
  for (;;) {
    last = MDEVMIG_TRY(run_state(time_left(until)));
    if (last == state) return ok();
    if (Clock::now() >= until)
      return Error::make(ETIMEDOUT, "wait for VM " + name_ + " to be " + state, "it is " + last);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

Result<void> Vm::resume(std::chrono::milliseconds timeout) {
  // A migration reports "completed" a moment before the VM leaves finish-migrate, and
  // QEMU refuses `cont` until it has (QEMU 11: "Migration is not finalized yet").
  Deadline until = deadline_in(timeout);
  for (std::string st = MDEVMIG_TRY(run_state(time_left(until))); st == "finish-migrate";
       st = MDEVMIG_TRY(run_state(time_left(until)))) {
    if (Clock::now() >= until)
      return Error::make(ETIMEDOUT, "resume VM " + name_,
                         "still in finish-migrate after the migration ended");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  MDEVMIG_TRY(qmp_->execute("cont"));
  return wait_run_state("running", timeout);
}

std::string Vm::quit(std::chrono::milliseconds timeout) {
  if (!proc_) {
    qtest_.reset();
    if (!qmp_ || !running()) return "gone";
    (void)qmp_->execute("quit", nullptr, timeout);
    return wait(timeout) ? "quit" : "still answering after quit";
  }
  if (!proc_->running()) return describe_wait_status(proc_->exit_status().value_or(-1));
  qtest_.reset();
  (void)qmp_->execute("quit", nullptr, timeout);
  auto st = proc_->wait(timeout);
  if (st) return describe_wait_status(*st);
  proc_->kill();
  return "killed after quit timed out";
}

void Vm::kill() {
  if (proc_)
    proc_->kill();
  else if (qmp_)
    (void)qmp_->execute("quit", nullptr, std::chrono::seconds(5));
}

}  // namespace mdevmig::qemu
