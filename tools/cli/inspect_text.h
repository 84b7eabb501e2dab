// inspect's text output (inspect.cc builds its JSON documents).
#pragma once

#include <string>

#include "migration/engine/savefile.h"
#include "tools/cli/inspect_damaged.h"
#include "tools/devstream/stream_decode.h"

namespace mdevmig::cli {

/// A save file that verified: container header, device identity, the chunk table (the
/// first four, or all with `all_chunks`), checksums, and for our device (`ours`) its
/// records decoded and `trial_outcome`, what the trial load said.
void print_text(const std::string& file, const engine::FileSummary& f,
                const devstream::StreamSummary& s, bool ours, const std::string& trial_outcome,
                bool all_chunks);

/// A save file that did not verify: what could still be read (`s`), then `verdict`.
void print_damaged(const std::string& file, const Salvage& s, const std::string& verdict);

}  // namespace mdevmig::cli
