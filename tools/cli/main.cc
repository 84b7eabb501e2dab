// mdevmig: save, restore, inspect and live-migrate mediated devices; drive QEMU
// migrations; stress-test. `mdevmig --help` lists the subcommands.
#include <cstdio>
#include <cstring>
#include <span>
#include <string_view>

#include "tools/cli/command.h"

namespace {

int usage(FILE* out) {
  std::fprintf(out, "usage: mdevmig <command> [args...]\n       mdevmig <command> --help\n\ncommands:\n");
  for (const auto& c : mdevmig::cli::commands())
    std::fprintf(out, "  %-14.*s %.*s\n", static_cast<int>(c.name.size()), c.name.data(),
                 static_cast<int>(c.summary.size()), c.summary.data());
  return out == stdout ? mdevmig::cli::kExitOk : mdevmig::cli::kExitUsage;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage(stderr);
  std::string_view name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") return usage(stdout);
  for (const auto& c : mdevmig::cli::commands()) {
    if (c.name == name) return c.run(std::span<const char* const>(argv + 2, argc - 2));
  }
  std::fprintf(stderr, "mdevmig: unknown command '%s' (see mdevmig --help)\n", argv[1]);
  return mdevmig::cli::kExitUsage;
}
