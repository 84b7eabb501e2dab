// The frame every subcommand runs in. A Command declares its arguments and a body; the
// Context does what each body would otherwise repeat: parsing and --help, the choice of
// JSON for errors (--json), the cancel token fired by SIGINT/SIGTERM/SIGHUP, and the
// mapping of an error to its message and exit code (command.h).
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "base/result.h"
#include "migration/io/cancel.h"
#include "tools/cli/args.h"
#include "tools/cli/command.h"
#include "tools/cli/json_out.h"

namespace mdevmig::cli {

/// What run_command() hands a Command's body: its parsed arguments and the services
/// every subcommand shares.
class Context {
 public:
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  /// The subcommand's name, as its error lines and JSON documents spell it.
  [[nodiscard]] std::string_view name() const { return name_; }
  /// The arguments, parsed by the declared Args (for a Command with raw_args, only
  /// declared: its body reads argv()).
  [[nodiscard]] const Args& args() const { return args_; }
  /// The arguments after the subcommand's name, as given.
  [[nodiscard]] std::span<const char* const> argv() const { return argv_; }
  /// Whether --json was given: the body prints its report as JSON.
  [[nodiscard]] bool json() const { return args_.has("json"); }
  /// Fired by SIGINT, SIGTERM or SIGHUP while the body runs; nullptr unless the Command
  /// is cancellable.
  [[nodiscard]] io::Cancel* cancel() const { return cancel_; }

  /// Reports `e` ("mdevmig NAME: ..." on stderr, and a JSON error document on stdout
  /// under --json) and returns its exit code.
  int fail(const Error& e) const;
  /// fail() with a usage error about `flag` (exit 2).
  int usage(std::string_view flag, std::string what) const;
  /// Prints a finished --json document on stdout, one line break after it.
  void print_json(const Json& doc) const;

 private:
  friend int run_command(const Command& cmd, std::span<const char* const> argv);
  Context(const Command& cmd, std::span<const char* const> argv);

  std::string_view name_;
  Args args_;
  std::span<const char* const> argv_;
  io::Cancel* cancel_ = nullptr;  // owned by run_command for the body's duration
};

/// Runs `cmd` on `argv` (the arguments after its name): selects JSON errors when --json
/// comes before any `--`, parses (a bad command line is a usage error, exit 2), answers
/// --help (-h) with the usage on stdout (exit 0), arms the cancel token for a
/// cancellable command, then runs its body and returns its exit code.
int run_command(const Command& cmd, std::span<const char* const> argv);

}  // namespace mdevmig::cli
