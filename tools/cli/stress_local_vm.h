// A VM of `mdevmig stress --mode local`: a process that owns one instance like a VMM
// (device, container, guest memory, the workload and its expected state) and is
// driven by messages on its control socket: verify, checkpoint, migrate (as the
// source, over a connection passed with the message), cancel, quit. A destination
// runs the engine's incoming side over the connection it was started with.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/fd.h"
#include "migration/engine/session.h"
#include "tools/cli/device_arg.h"
#include "tools/cli/guest_memory_port.h"
#include "tools/cli/stress_local.h"
#include "tools/cli/stress_local_model.h"
#include "tools/cli/stress_local_workload.h"
#include "tools/guest/ring.h"

namespace mdevmig::cli::local {

enum class VmRole { kBoot, kIncoming, kRestore };

struct VmSpec {
  std::string uuid;
  VmRole role = VmRole::kBoot;
  std::string checkpoint_file;
  const SharedState* shared = nullptr;
  const LocalStressOptions* options = nullptr;
};

class VmProcess {
 public:
  VmProcess(VmSpec spec, int ctrl) : spec_(std::move(spec)), ctrl_(ctrl) {}
  /// The process's life; its exit status. `mig_fd`: a destination's connection.
  int main(int mig_fd);

 private:
  void reply(const nlohmann::json& j);
  [[nodiscard]] Result<void> open();
  [[nodiscard]] const vfio::Device& dev() const { return dev_->dev(); }
  [[nodiscard]] std::span<std::byte> guest_bytes() const { return {guest_->data(), kGuestBytes}; }
  [[nodiscard]] Result<void> boot();
  [[nodiscard]] Result<void> restore();
  // A destination takes the expected state over at its first use.
  [[nodiscard]] Result<Expected*> expected();
  void incoming(UniqueFd sock);
  void migrate(const nlohmann::json& m, UniqueFd sock);
  [[nodiscard]] nlohmann::json migrated(const engine::MigrationReport& rep) const;
  void cancel();
  [[nodiscard]] nlohmann::json verify();
  [[nodiscard]] nlohmann::json compare(Expected& e);
  void compare_device_memory(const Expected& e, std::vector<std::string>& bad, uint64_t& hash);
  void compare_guest_memory(const Expected& e, std::vector<std::string>& bad);
  [[nodiscard]] nlohmann::json checkpoint();

  VmSpec spec_;
  int ctrl_;
  std::mutex reply_mu_;
  std::unique_ptr<OpenedDevice> dev_;
  schema::DeviceIdentity id_;
  std::optional<engine::GuestMemory> guest_;
  std::optional<GuestMemoryPort> port_;
  guest::Ring ring_{kLayout, kRingEntries, /*prefill=*/true};
  vfio::Mapping bar2_;
  std::unique_ptr<Expected> expected_;
  std::optional<GuestWorkload> workload_;
  std::thread source_;
  std::mutex sock_mu_;  // sock_fd_
  int sock_fd_ = -1;
};

}  // namespace mdevmig::cli::local
