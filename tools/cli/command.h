// A subcommand of the mdevmig CLI, and the exit codes every subcommand uses.
#pragma once

#include <span>
#include <string_view>

namespace mdevmig::cli {

/// Exit codes: distinct for usage errors, device errors and corrupt input, so scripts
/// can tell them apart.
enum ExitCode : int {
  kExitOk = 0,
  kExitFailed = 1,   ///< the operation ran and failed (e.g. verification mismatch)
  kExitUsage = 2,    ///< bad command line
  kExitDevice = 3,   ///< a device, VFIO or system call failed
  kExitCorrupt = 4,  ///< input (file, stream, peer) is malformed or incompatible
  kExitInterrupted =
      130,  ///< stopped by SIGINT/SIGTERM/SIGHUP after recovering the device (128 + SIGINT)
};

/// The exit codes, for the --help of commands that change device state.
inline constexpr const char* kExitCodesHelp =
    "\nExit status: 0 done, 1 failed (e.g. the peer), 2 usage, 3 device or system error,\n"
    "4 corrupt or incompatible input, 130 interrupted (Ctrl-C, SIGTERM or SIGHUP: the work\n"
    "stops cleanly, a saving device runs again, a loading one is reset, a partial file is\n"
    "removed).";

class Args;
class Context;

/// One subcommand: what `mdevmig --help` lists, what its --help shows, and its body,
/// which run_command() (context.h) calls with the arguments parsed.
struct Command {
  std::string_view name;
  std::string_view summary;  ///< one line, for `mdevmig --help`
  Args (*declare)();         ///< usage, description, arguments and options
  int (*run)(Context& ctx);  ///< returns the exit code
  /// SIGINT, SIGTERM and SIGHUP fire ctx.cancel() while `run` runs, rather than kill.
  bool cancellable = false;
  /// The arguments are not parsed by `declare`'s Args (they end with a command line of
  /// their own): only --help (-h) before `--` is answered, and `run` reads ctx.argv().
  bool raw_args = false;
};

/// Every subcommand, in the order `mdevmig --help` lists them (commands.cc).
std::span<const Command> commands();

}  // namespace mdevmig::cli
