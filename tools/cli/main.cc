// mdevmig: save, restore, inspect and live-migrate mediated devices; drive QEMU
// migrations; stress-test. `mdevmig --help` lists the subcommands.
#include <cstdio>
#include <cstring>
#include <span>
#include <string_view>

#include "tools/cli/command.h"
#include "tools/cli/context.h"

// The project version (CMake's project(VERSION)), defined for every target by the top-level
// CMakeLists.txt.
#ifndef MDEVMIG_VERSION
#error "MDEVMIG_VERSION must be defined by the build"
#endif

namespace {

int usage(FILE* out) {
  std::fprintf(out,
               "usage: mdevmig <command> [args...]\n"
               "       mdevmig <command> --help     (or -h, or mdevmig help <command>)\n"
               "       mdevmig --version\n\ncommands:\n");
  for (const auto& c : mdevmig::cli::commands())
    std::fprintf(out, "  %-14.*s %.*s\n", static_cast<int>(c.name.size()), c.name.data(),
                 static_cast<int>(c.summary.size()), c.summary.data());
  return out == stdout ? mdevmig::cli::kExitOk : mdevmig::cli::kExitUsage;
}

const mdevmig::cli::Command* find(std::string_view name) {
  for (const auto& c : mdevmig::cli::commands())
    if (c.name == name) return &c;
  return nullptr;
}

int unknown(std::string_view name) {
  std::fprintf(stderr, "mdevmig: unknown command '%.*s' (see mdevmig --help)\n",
               static_cast<int>(name.size()), name.data());
  return mdevmig::cli::kExitUsage;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage(stderr);
  std::string_view name = argv[1];
  if (name == "--version" || name == "-V") {
    std::printf("mdevmig %s\n", MDEVMIG_VERSION);
    return mdevmig::cli::kExitOk;
  }
  if (name == "--help" || name == "-h" || (name == "help" && argc == 2)) return usage(stdout);
  if (name == "help") {
    // `mdevmig help CMD` is `mdevmig CMD --help`.
    if (argc > 3) {
      std::fprintf(stderr, "mdevmig help: one command at a time (see mdevmig --help)\n");
      return mdevmig::cli::kExitUsage;
    }
    const auto* c = find(argv[2]);
    if (c == nullptr) return unknown(argv[2]);
    static const char* const kHelp[] = {"--help"};
    return mdevmig::cli::run_command(*c, kHelp);
  }
  if (const auto* c = find(name)) {
    return mdevmig::cli::run_command(*c, std::span<const char* const>(argv + 2, argc - 2));
  }
  return unknown(name);
}
