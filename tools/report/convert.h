// The report's model (model.h) from what the tools recorded: the engine's
// MigrationReport (`mdevmig migrate`), QEMU's figures (`mdevmig qemu-migrate`) and a
// stress run's rounds (`mdevmig stress`). Figures are taken as recorded; where a
// source has none (a destination has no passes, an aborted migration no downtime)
// the model says so rather than making one up.
#pragma once

#include <string>

#include "tools/report/model.h"

namespace mdevmig::engine {
struct MigrationReport;
}
namespace mdevmig::stress {
struct MigrationOutcome;
struct StressReport;
}  // namespace mdevmig::stress

namespace mdevmig::report {

/// A completed migration of the engine, as its source or destination reported it.
[[nodiscard]] Migration from_engine(const engine::MigrationReport& r, std::string title);

/// Where a stress::MigrationOutcome came from.
enum class Driver {
  kQemu,    ///< QEMU's query-migrate rows, the source instance's dirty tracker
  kEngine,  ///< stress --mode local: the engine's passes carried in the same struct
};
/// One QEMU migration (or a stress round's), completed or not.
[[nodiscard]] Migration from_qemu(const stress::MigrationOutcome& m, std::string title,
                                  Driver driver = Driver::kQemu);

/// A stress run: every round, with its migration's figures where it has any.
[[nodiscard]] Stress from_stress(const stress::StressReport& r, std::string title, Driver driver);

}  // namespace mdevmig::report
