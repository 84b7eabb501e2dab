// Reports as the tools record them, made up for the renderer's tests: an engine
// migration with several passes, QEMU migrations completed and cancelled, a stress run
// with mixed outcomes, and text that needs escaping.
#pragma once

#include <cstdint>

#include "migration/engine/session.h"
#include "tools/qemu/stress.h"

namespace mdevmig::report::testing {

/// What text from outside may hold: markup, quotes, an ampersand, a control character
/// and a byte that is not UTF-8.
inline constexpr const char* kHostile = "<dev&\"x'> </svg><script>alert(1)</script>\x01\xff";

/// A completed engine migration of `passes` passes with guest memory and a 300 ms target.
[[nodiscard]] engine::MigrationReport engine_report(uint32_t passes);
/// A completed QEMU migration with `passes` rows.
[[nodiscard]] qemu::MigrationOutcome qemu_completed(uint32_t passes);
/// A QEMU migration cancelled during pre-copy (no downtime), its error text hostile.
[[nodiscard]] qemu::MigrationOutcome qemu_cancelled();
/// A stress run of six rounds: three verified, a kill-src recovered, a cancel that did
/// not fire, and two that failed (one with a hostile problem, one never started).
[[nodiscard]] qemu::StressReport stress_report();

}  // namespace mdevmig::report::testing
