// One run_migration() (migration.h) as an object: its set-up (migration.cc), the loop
// that follows the migration and the figures at its end (migration_follow.cc). Private
// to tools/qemu.
#pragma once

#include <sys/stat.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tools/qemu/migration.h"
#include "tools/qemu/proxy.h"
#include "tools/qtest/codec.h"

namespace mdevmig::qemu::detail {

using json = nlohmann::json;

inline uint64_t num(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<uint64_t>() : 0;
}

inline double wall_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

inline uint64_t file_size(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

inline uint64_t sysfs_number(const Result<std::string>& text) {
  return text ? parse_c_uint(*text).value_or(0) : 0;
}

// RAM bytes sent so far. QEMU 7.2's "transferred" counts RAM only; later QEMUs count
// everything the main channel carried (the VFIO device's data too) plus the multifd
// channels, so take the RAM-only counters (QEMU >= 7.0) and multifd's, which in pre-copy
// carry RAM only (QEMU 10.0 sends just the device's stop-copy data over multifd).
inline uint64_t ram_sent(const json& ram) {
  if (!ram.contains("precopy-bytes")) return num(ram, "transferred");
  return num(ram, "precopy-bytes") + num(ram, "downtime-bytes") + num(ram, "postcopy-bytes") +
         num(ram, "multifd-bytes");
}

// One run_migration(): the set-up, the loop that follows it, and the figures at its end.
class MigrationRun {
 public:
  MigrationRun(Vm& src, Vm* dst, const mdev::MdevInstance* src_instance, uint64_t device_mem,
               const MigrationPlan& plan, const SwitchoverHooks& hooks, const LogFn& log)
      : src_(src),
        dst_(dst),
        src_instance_(src_instance),
        device_mem_(device_mem),
        plan_(plan),
        hooks_(hooks),
        log_(log) {
    out_.fault = plan.fault;
    out_.downtime_limit_ms = plan.downtime_limit_ms;
  }

  Result<MigrationOutcome> run(const std::string& dir);

 private:
  void say(const std::string& s) const {
    if (log_) log_(s);
  }
  // The source device's own counters, when it is on this host.
  uint64_t field(const char* key) const {
    return src_instance_ ? sysfs_number(src_instance_->migration_field(key)) : 0;
  }
  // Stream bytes sent so far.
  uint64_t wire() const { return proxy_ ? proxy_->bytes_forward() : file_size(plan_.file); }
  Result<void> check_plan() const;
  Result<void> set_up(bool live, bool switch_at_once);
  // The transport: the proxy of a live migration, and the URI the source migrates to.
  Result<std::string> connect(const std::string& dir);
  // Polls until the migration ends (out_.status set).
  Result<void> follow();
  // A fault the harness fires itself, during pre-copy, once the stream passed its point.
  Result<void> fire_fault(uint64_t w);
  // A new dirty sync: one pass of pre-copy ended.
  void record_pass(Clock::time_point now, uint64_t w, uint64_t syncs);
  Result<void> continue_switchover();
  // Allows the switchover once the plan's moment came.
  Result<void> allow_switchover(Clock::time_point now, uint64_t w, uint64_t syncs);
  // Where QEMU's threads and ours wait, for an error that timed out.
  Error with_threads(Error e) const;
  void collect_wire();
  Result<void> collect_totals();

  Vm& src_;
  Vm* dst_;
  const mdev::MdevInstance* src_instance_;
  const uint64_t device_mem_;
  const MigrationPlan& plan_;
  const SwitchoverHooks& hooks_;
  const LogFn& log_;

  MigrationOutcome out_;
  std::unique_ptr<MigrationProxy> proxy_;
  uint64_t device_bytes_before_ = 0;
  Clock::time_point t0_{};
  double wall0_ = 0;
  Deadline until_{};
  std::vector<WirePoint> samples_;  // wire bytes over time (files have no proxy timeline)
  json q_;                          // the last query-migrate
  bool continued_ = false;          // migrate-continue sent (QEMU's status lags behind it)
  bool initial_done_ = false, switched_ = false;
  uint64_t syncs_at_initial_ = 0, last_syncs_ = 0, last_ram_ = 0, last_wire_ = 0;
  uint64_t last_ram_pages_ = 0;
  Clock::time_point t_initial_{};
};

}  // namespace mdevmig::qemu::detail
