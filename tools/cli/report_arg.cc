#include "tools/cli/report_arg.h"

#include <sys/stat.h>

#include <cstdio>

#include "tools/cli/args.h"
#include "tools/cli/device_arg.h"

namespace mdevmig::cli {

const char* report_help(bool json) {
  return json ? "FILE.json: the JSON report; FILE.html or FILE.svg: a picture of the rounds (a "
                "page, or the bare "
                "charts; failing to write a picture never changes the exit status)"
              : "write a picture of the migration: FILE.html (a page: charts and tables) or "
                "FILE.svg (the charts); "
                "failing to write it never changes the exit status";
}

Result<std::optional<ReportFile>> report_arg(const Args& a, bool json) {
  const auto path = a.get("report");
  if (!path) return std::optional<ReportFile>();
  ReportFile f{*path, report::format_of(*path)};
  const bool is_json = json && path->size() > 5 && path->ends_with(".json");
  if (!f.picture && !is_json)
    return usage_error("--report", std::string("wants a FILE ending in .html or .svg") +
                                       (json ? " (or .json)" : "") + ", got '" + *path + "'");
  struct stat st {};
  if (::stat(path->c_str(), &st) == 0 && !S_ISREG(st.st_mode))
    return usage_error("--report",
                       "'" + *path + "' is " +
                           (S_ISDIR(st.st_mode) ? "a directory" : "not a regular file") +
                           "; name a file");
  const auto slash = path->rfind('/');
  const std::string dir = slash == std::string::npos ? "."
                          : slash == 0               ? "/"
                                                     : path->substr(0, slash);
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return usage_error("--report", "no directory '" + dir + "' to write '" + *path + "' in");
  return std::optional<ReportFile>(std::move(f));
}

void write_picture(std::string_view cmd, const ReportFile& file, const std::string& text) {
  if (auto r = report::write_file(file.path, text); !r.ok())
    std::fprintf(stderr, "mdevmig %.*s: %s\n", static_cast<int>(cmd.size()), cmd.data(),
                 r.error().message().c_str());
}

}  // namespace mdevmig::cli
