// A small command-line parser for subcommands: --name VALUE, --name=VALUE, boolean
// --flag, positionals, `--` ending the options, and a generated --help (-h).
//
// Every value is checked through the typed getters below, before a command touches a
// device or a file: a bad one is a usage error (exit 2) whose one line names the flag.
// Sizes and addresses share one number syntax (parse_size).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

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
  /// A size (parse_size: decimal or 0x hex, optional K/M/G/T suffix in either case)
  /// in [min, max].
  [[nodiscard]] Result<uint64_t> get_size(std::string_view name, uint64_t min = 0,
                                          uint64_t max = UINT64_MAX) const;
  /// An address: the same syntax as a size, a multiple of `align`.
  [[nodiscard]] Result<uint64_t> get_address(std::string_view name, uint64_t align) const;
  /// A count or a time in whole units: decimal or 0x hex, no suffix, in [min, max].
  [[nodiscard]] Result<uint64_t> get_uint(std::string_view name, uint64_t min = 0,
                                          uint64_t max = UINT64_MAX) const;
  /// A finite real number in [min, max] (or the open interval when `open` is set).
  [[nodiscard]] Result<double> get_double(std::string_view name, double min, double max,
                                          bool open = false) const;
  /// One of `words` (--irq intx|msi): its index in `words`, else the usage error
  /// "--name: wants a, b or c, got 'x'".
  [[nodiscard]] Result<std::size_t> get_choice(std::string_view name,
                                               std::span<const std::string_view> words) const;
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

/// Parses "4096", "0x1000", "64k", "64M", "1G", "2T", "4MiB": decimal or 0x hex digits
/// and an optional K, M, G or T (either case, optionally followed by "iB"; powers of 1024).
[[nodiscard]] Result<uint64_t> parse_size(std::string_view text);

/// "a, b or c": `words` as a usage error lists them.
[[nodiscard]] std::string choice_text(std::span<const std::string_view> words);
/// "a|b|c": `words` as --help shows an option's value.
[[nodiscard]] std::string choice_metavar(std::span<const std::string_view> words);

/// Ranges the commands share.
inline constexpr uint64_t kMaxDowntimeMs = 2'000'000;  ///< QEMU's downtime-limit bound too
inline constexpr uint64_t kMaxDelayMs = 3'600'000;     ///< waits and workload phases: an hour
inline constexpr double kMaxGuestOpsPerS = 1e6;  ///< guest BAR2 writes or DMA descriptors a second

/// A usage error (exit 2) about `--flag`: "usage: --flag: what".
[[nodiscard]] Error usage_error(std::string_view flag, std::string what);

}  // namespace mdevmig::cli
