#include "tools/cli/context.h"

#include <cstdio>

#include "tools/cli/device_arg.h"

namespace mdevmig::cli {
namespace {

// Whether `flag` comes before the `--` that ends the options (after it, it is an argument
// or belongs to the command `hold` runs).
bool before_end(std::span<const char* const> argv, std::initializer_list<std::string_view> flags) {
  for (std::string_view a : argv) {
    if (a == "--") return false;
    for (std::string_view f : flags)
      if (a == f) return true;
  }
  return false;
}

}  // namespace

Context::Context(const Command& cmd, std::span<const char* const> argv)
    : name_(cmd.name), args_(cmd.declare()), argv_(argv) {}

int Context::fail(const Error& e) const { return report_error(name_, e); }

int Context::usage(std::string_view flag, std::string what) const {
  return fail(usage_error(flag, std::move(what)));
}

void Context::print_json(const Json& doc) const { std::printf("%s\n", json_text(doc).c_str()); }

int run_command(const Command& cmd, std::span<const char* const> argv) {
  // With --json even a bad command line is answered in JSON.
  set_json_errors(before_end(argv, {"--json"}));
  Context ctx(cmd, argv);
  if (cmd.raw_args) {
    // Only what comes before `--` is ours; the body parses the rest.
    if (before_end(argv, {"--help", "-h"})) {
      std::fputs(ctx.args_.usage().c_str(), stdout);
      return kExitOk;
    }
  } else {
    if (auto r = ctx.args_.parse(argv); !r.ok()) return ctx.fail(r.error());
    if (ctx.args_.help_requested()) return kExitOk;
  }
  if (!cmd.cancellable) return cmd.run(ctx);
  auto cancel = io::Cancel::create();
  if (!cancel.ok()) return ctx.fail(cancel.error());
  ctx.cancel_ = cancel->get();
  const io::CancelOnSignals on_signals(**cancel);
  return cmd.run(ctx);
}

}  // namespace mdevmig::cli
