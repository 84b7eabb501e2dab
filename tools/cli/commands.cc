// The table of subcommands. Add a subcommand: declare its run function here and add
// one row.
#include "tools/cli/command.h"

#include <span>

namespace mdevmig::cli {

int run_save(std::span<const char* const> args);
int run_restore(std::span<const char* const> args);
int run_inspect(std::span<const char* const> args);
int run_hold(std::span<const char* const> args);
int run_migrate(std::span<const char* const> args);
int run_qemu_migrate(std::span<const char* const> args);
int run_stress(std::span<const char* const> args);

std::span<const Command> commands() {
  static constexpr Command kCommands[] = {
      {"save", "save a device's state to a file", run_save},
      {"restore", "load a save file into a device", run_restore},
      {"inspect", "verify and decode a save file", run_inspect},
      {"hold", "keep instances open while a command runs (save, restore... by UUID)", run_hold},
      {"migrate", "live-migrate a device (same host or over TCP)", run_migrate},
      {"qemu-migrate", "live-migrate a QEMU VM with an mdevmig device, verified", run_qemu_migrate},
      {"stress", "migrations back and forth with faults, every round verified", run_stress},
  };
  return kCommands;
}

}  // namespace mdevmig::cli
