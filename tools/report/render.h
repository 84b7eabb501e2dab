// A picture of a migration or a stress run (`--report FILE` of migrate, qemu-migrate
// and stress): an HTML page with the charts inline as SVG and the figures in tables,
// or the bare charts as an SVG file. Self-contained: no scripts, fonts or anything
// fetched. The data comes from convert.h (or any caller that fills model.h).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"
#include "tools/report/model.h"

namespace mdevmig::report {

enum class Format { kHtml, kSvg };

/// The format a file name asks for: ".html" or ".svg" (in any case); none otherwise.
[[nodiscard]] std::optional<Format> format_of(std::string_view path);

[[nodiscard]] std::string render(const Migration& m, Format f);
[[nodiscard]] std::string render(const Stress& s, Format f);

/// Writes `text` to `path` atomically: a temporary file next to it, then renamed over
/// it, so a reader never sees half a report and a failure leaves no partial file.
[[nodiscard]] Result<void> write_file(const std::string& path, std::string_view text);

}  // namespace mdevmig::report
