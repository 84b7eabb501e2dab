#include "tools/qemu/vm.h"

#include <thread>

namespace mdevmig::qemu {

Result<Vm> Vm::start(const VmSpec& spec, const std::string& name, const std::string& uuid,
                     std::optional<std::string> incoming) {
  QemuConfig cfg;
  cfg.binary = spec.qemu_binary;
  cfg.bios = spec.bios;
  cfg.mem_mb = spec.mem_mb;
  cfg.mdev_uuid = uuid;
  cfg.protocol = spec.protocol;
  cfg.incoming = std::move(incoming);
  cfg.dir = spec.dir;
  cfg.name = name;
  cfg.extra_args = spec.extra_args;
  Vm vm;
  vm.name_ = name;
  vm.uuid_ = uuid;
  vm.proc_ = std::make_unique<QemuProcess>(MDEVMIG_TRY(QemuProcess::start(cfg)));
  auto qmp = vm.proc_->connect_qmp();
  if (!qmp) {
    Error e = std::move(qmp).error();
    vm.proc_->kill();
    e.context += " (" + describe_wait_status(vm.proc_->exit_status().value_or(-1)) + "; log: " +
                 vm.proc_->log_tail(400) + ")";
    return e;
  }
  vm.qmp_ = std::make_unique<QmpClient>(std::move(qmp).value());
  return vm;
}

Result<QtestClient*> Vm::qtest() {
  if (!qtest_) qtest_ = std::make_unique<QtestClient>(MDEVMIG_TRY(proc_->connect_qtest()));
  return qtest_.get();
}

Result<std::string> Vm::run_state() {
  auto r = MDEVMIG_TRY(qmp_->execute("query-status"));
  if (!r.is_object() || !r.contains("status") || !r["status"].is_string())
    return Error::make(EPROTO, "QMP query-status", "no status in " + r.dump());
  return r["status"].get<std::string>();
}

Result<void> Vm::wait_run_state(const std::string& state, std::chrono::milliseconds timeout) {
  Deadline until = deadline_in(timeout);
  std::string last;
  for (;;) {
    last = MDEVMIG_TRY(run_state());
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
  for (std::string st = MDEVMIG_TRY(run_state()); st == "finish-migrate"; st = MDEVMIG_TRY(run_state())) {
    if (Clock::now() >= until)
      return Error::make(ETIMEDOUT, "resume VM " + name_, "still in finish-migrate after the migration ended");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  MDEVMIG_TRY(qmp_->execute("cont"));
  return wait_run_state("running", timeout);
}

std::string Vm::quit(std::chrono::milliseconds timeout) {
  if (!proc_ || !proc_->running()) return proc_ ? describe_wait_status(proc_->exit_status().value_or(-1)) : "gone";
  qtest_.reset();
  (void)qmp_->execute("quit", nullptr, timeout);
  auto st = proc_->wait(timeout);
  if (st) return describe_wait_status(*st);
  proc_->kill();
  return "killed after quit timed out";
}

void Vm::kill() {
  if (proc_) proc_->kill();
}

}  // namespace mdevmig::qemu
