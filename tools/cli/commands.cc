// The table of subcommands. Add a subcommand: declare its arguments and body here and
// add one row.
#include "tools/cli/command.h"

#include <span>

#include "tools/cli/args.h"
#include "tools/cli/context.h"

namespace mdevmig::cli {

Args save_args();
int run_save(Context& ctx);
Args restore_args();
int run_restore(Context& ctx);
Args inspect_args();
int run_inspect(Context& ctx);
Args hold_args();
int run_hold(Context& ctx);
Args migrate_args();
int run_migrate(Context& ctx);
Args qemu_migrate_args();
int run_qemu_migrate(Context& ctx);
Args stress_args();
int run_stress(Context& ctx);

std::span<const Command> commands() {
  static const Command kCommands[] = {
      {.name = "save",
       .summary = "save a device's state to a file",
       .declare = save_args,
       .run = run_save,
       .cancellable = true},
      {.name = "restore",
       .summary = "load a save file into a device",
       .declare = restore_args,
       .run = run_restore,
       .cancellable = true},
      {.name = "inspect",
       .summary = "verify and decode a save file",
       .declare = inspect_args,
       .run = run_inspect},
      {.name = "hold",
       .summary = "keep instances open while a command runs (save, restore... by UUID)",
       .declare = hold_args,
       .run = run_hold,
       .raw_args = true},
      {.name = "migrate",
       .summary = "live-migrate a device (same host or over TCP)",
       .declare = migrate_args,
       .run = run_migrate,
       .cancellable = true},
      {.name = "qemu-migrate",
       .summary = "live-migrate a QEMU VM with an mdevmig device, verified",
       .declare = qemu_migrate_args,
       .run = run_qemu_migrate},
      {.name = "stress",
       .summary = "migrations back and forth with faults, every round verified",
       .declare = stress_args,
       .run = run_stress},
  };
  return kCommands;
}

}  // namespace mdevmig::cli
