// The fault table: every fault a stress round can inject, once, with its CLI spelling,
// where it strikes and who must hold the VM once it fired. The QEMU driver
// (tools/qemu) and the local-engine driver (tools/cli/stress_local) both read it; a
// new fault is a row here and a case in each driver's injector.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace mdevmig::stress {

enum class FaultKind {
  kNone,
  kCancel,    ///< cancel the migration on the source during pre-copy
  kKillDst,   ///< SIGKILL the destination during pre-copy
  kKillSrc,   ///< SIGKILL the source during pre-copy (nothing survives)
  kCorrupt,   ///< flip a byte of the stream in flight (or of the saved file)
  kTruncate,  ///< cut the stream in flight (or truncate the saved file)
};

/// Which side holds the VM after a round.
enum class Survivor { kDestination, kSource, kNone };
[[nodiscard]] const char* survivor_name(Survivor s);

/// What a fault strikes.
enum class FaultSite {
  kNothing,      ///< kNone
  kSourceRun,    ///< the source's migration (its controller cancels it)
  kDestination,  ///< the destination process
  kSource,       ///< the source process
  kStream,       ///< the bytes between them (a live stream, or the saved file)
};

struct FaultSpec {
  FaultKind kind;
  const char* name;  ///< the CLI spelling (--faults) and the reports'
  FaultSite site;
  /// The relay applies it to the bytes it passes on (or the harness to a saved file);
  /// else the driver fires it when the stream passes the round's fault point.
  bool in_stream;
  /// Also applies to a migration saved to a file and restored (no destination runs
  /// while the file is written).
  bool applies_to_file;
  /// Who must hold the VM once it fired.
  Survivor survivor;
  /// Fired after the switchover point, it comes too late and the migration completes.
  bool may_come_late;
  /// A byte flipped blindly (not aimed at device data) may land where it has no
  /// meaning, and the migration completes.
  bool blind_may_pass;
  /// In the default --faults list.
  bool by_default;
};

/// Every fault kind, kNone first, in FaultKind order.
[[nodiscard]] std::span<const FaultSpec> fault_table();
[[nodiscard]] const FaultSpec& fault_spec(FaultKind f);
[[nodiscard]] const char* fault_name(FaultKind f);
[[nodiscard]] Result<FaultKind> parse_fault(std::string_view text);
/// A comma-separated list of names; "none" items are dropped.
[[nodiscard]] Result<std::vector<FaultKind>> parse_fault_list(std::string_view text);
/// "cancel,kill-dst,...": the names of `faults`, comma-separated.
[[nodiscard]] std::string fault_list_text(std::span<const FaultKind> faults,
                                          std::string_view separator = ",");
/// The names of `faults`, in order (the reports' "faults").
[[nodiscard]] std::vector<std::string> fault_names(std::span<const FaultKind> faults);
/// The faults rounds draw from unless told otherwise.
[[nodiscard]] std::vector<FaultKind> default_faults();
/// Every fault that can be injected (all but kNone).
[[nodiscard]] std::vector<FaultKind> injectable_faults();

/// Who must hold the VM after a round whose fault `f` fired (kNone: a clean round).
[[nodiscard]] Survivor expected_survivor(FaultKind f);
/// Whether `got` is a correct end for a round whose fault `f` fired; `blind`: the
/// injector flips bytes without aiming at device data.
[[nodiscard]] bool survivor_acceptable(FaultKind f, Survivor got, bool blind);
/// The destination must refuse the migration whenever `f` fired (an aimed injector).
[[nodiscard]] bool destination_must_refuse(FaultKind f);

}  // namespace mdevmig::stress
