// A small command-line parser for subcommands: --name VALUE, --name=VALUE, boolean
// --flag, positionals, `--` ending the options, and a generated --help (-h).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "migration/base/result.h"

namespace mdevmig::cli {

/// Declares the options of one subcommand, then parses its arguments.
class Args {
 public:
  /// `usage` is the synopsis after "mdevmig", e.g. "save DEVICE FILE [options]".
  Args(std::string usage, std::string description);

  /// A boolean flag (--json).
  void flag(std::string name, std::string help);
  /// An option with a value (--to HOST:PORT); `fallback` is used when absent.
  void option(std::string name, std::string metavar, std::string help,
              std::optional<std::string> fallback = std::nullopt);
  /// A positional argument; `required` positionals come first.
  void positional(std::string name, std::string help, bool required = true);
  /// Text shown after the options in --help (e.g. the exit codes).
  void epilogue(std::string text) { epilogue_ = std::move(text); }

  /// Parses; on --help or -h prints usage and sets help_requested(). After `--` every
  /// argument is a positional. Errors name the argument.
  [[nodiscard]] Result<void> parse(std::span<const char* const> args);

  [[nodiscard]] bool help_requested() const { return help_; }
  [[nodiscard]] bool has(std::string_view name) const;
  [[nodiscard]] std::optional<std::string> get(std::string_view name) const;
  /// The value parsed as an unsigned integer with an optional K/M/G suffix (powers of 1024).
  [[nodiscard]] Result<uint64_t> get_size(std::string_view name) const;
  [[nodiscard]] Result<uint64_t> get_uint(std::string_view name) const;
  [[nodiscard]] Result<double> get_double(std::string_view name) const;
  [[nodiscard]] std::string usage() const;

 private:
  struct Spec {
    std::string name, metavar, help;
    bool is_flag = false, is_positional = false, required = false;
    std::optional<std::string> fallback;
  };
  const Spec* find(std::string_view name) const;

  std::string usage_, description_, epilogue_;
  std::vector<Spec> specs_;
  std::vector<std::pair<std::string, std::string>> values_;
  bool help_ = false;
};

/// Parses "64M", "4096", "1G" (powers of 1024).
[[nodiscard]] Result<uint64_t> parse_size(std::string_view text);

}  // namespace mdevmig::cli
