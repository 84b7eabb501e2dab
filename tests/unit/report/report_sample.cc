// Writes the sample reports for the browser test (render_check.sh) the way the CLI
// does: the tools' reports through convert.h and render.h, written by write_file().
//   report_sample DIR   -> DIR/migration.html, migration.svg, stress.html, stress.svg
//                          and blank.html (a page with nothing on it, the control)
#include <cstdio>
#include <string>

#include "tests/unit/report/samples.h"
#include "tools/report/convert.h"
#include "tools/report/render.h"

using namespace mdevmig;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: report_sample DIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  const report::Migration m =
      report::from_engine(report::testing::engine_report(6), "mdevmig migrate: same host");
  const report::Stress s = report::from_stress(report::testing::stress_report(),
                                               "mdevmig stress --mode qemu", report::Driver::kQemu);
  const std::pair<std::string, std::string> files[] = {
      {"migration.html", report::render(m, report::Format::kHtml)},
      {"migration.svg", report::render(m, report::Format::kSvg)},
      {"stress.html", report::render(s, report::Format::kHtml)},
      {"stress.svg", report::render(s, report::Format::kSvg)},
      {"blank.html",
       "<!DOCTYPE html>\n<html><head><meta "
       "charset=\"utf-8\"/><title>blank</title></head><body></body></html>\n"},
  };
  for (const auto& [name, text] : files) {
    if (auto r = report::write_file(dir + "/" + name, text); !r.ok()) {
      std::fprintf(stderr, "report_sample: %s\n", r.error().message().c_str());
      return 1;
    }
  }
  return 0;
}
