// --report FILE of migrate, qemu-migrate and stress: a picture of the run
// (tools/report), an HTML page or the bare SVG charts, chosen by FILE's suffix.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"
#include "tools/report/render.h"

namespace mdevmig::cli {

class Args;

/// The --help line of --report (`json`: stress, whose FILE.json is its JSON report).
[[nodiscard]] const char* report_help(bool json);

struct ReportFile {
  std::string path;
  std::optional<report::Format> picture;  ///< none: the JSON report (stress only)
};

/// --report's value, checked before anything is opened: FILE must end in .html or .svg
/// (or .json where `json`), must not be a directory, pipe or other non-regular file,
/// and its directory must exist. A usage error naming --report otherwise; nothing when
/// the flag is absent.
[[nodiscard]] Result<std::optional<ReportFile>> report_arg(const Args& a, bool json);

/// Writes a picture to `file`. A failure is one line on stderr and nothing more: the
/// command's result and exit status do not depend on its report.
void write_picture(std::string_view cmd, const ReportFile& file, const std::string& text);

}  // namespace mdevmig::cli
