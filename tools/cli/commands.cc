// The table of subcommands. Add a subcommand: declare its run function here and add
// one row.
#include "tools/cli/command.h"

#include <array>

namespace mdevmig::cli {

std::span<const Command> commands() {
  static constexpr std::array<Command, 0> kCommands = {};
  return kCommands;
}

}  // namespace mdevmig::cli
