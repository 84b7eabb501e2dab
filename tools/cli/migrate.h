// Parts of `mdevmig migrate` that are tested on their own.
#pragma once

#include <string>

#include "migration/engine/session.h"

namespace mdevmig::cli {

/// The progress line of one pre-copy iteration (no downtime estimate until the policy
/// has one).
[[nodiscard]] std::string iteration_line(const engine::IterationStats& s);

}  // namespace mdevmig::cli
