#include <algorithm>
#include <iterator>

#include "tools/report/charts.h"

namespace mdevmig::report {
namespace {

constexpr const char* kPassFill = "#2ca02c";
constexpr const char* kFailFill = "#d62728";
constexpr const char* kDowntimeFill = "#2ca02c";
constexpr const char* kTimeFill = "#3366cc";
constexpr const char* kTargetStroke = "#cc0000";
constexpr double kRowHeight = 26;

// A colour per fault kind, by its place in s.fault_kinds ("none" first), so a column of
// rounds reads at a glance; a new kind takes the next colour.
const char* fault_fill(const Stress& s, const std::string& fault) {
  static constexpr const char* kFills[] = {"#c7c7c7", "#1f77b4", "#ff7f0e", "#9467bd", "#8c564b",
                                           "#e377c2", "#17becf", "#bcbd22", "#aec7e8", "#ffbb78"};
  const auto it = std::find(s.fault_kinds.begin(), s.fault_kinds.end(), fault);
  const auto i = static_cast<std::size_t>(it - s.fault_kinds.begin());
  return i < std::size(kFills) ? kFills[i] : "#7f7f7f";
}

const char* survivor_fill(const std::string& s) {
  return s == "destination" ? "#3366cc" : s == "source" ? "#f28e2b" : "#333333";
}

std::string round_tip(const Round& r) {
  std::string t = "round " + std::to_string(r.number) + ": " + (r.passed ? "passed" : "FAILED") +
                  "; fault " + r.fault;
  if (r.fault != "none") t += r.fault_fired ? " (fired)" : " (did not fire)";
  t += "; " + r.status + "; " + (r.survivor.empty() ? "none" : r.survivor) + " holds the VM";
  if (r.recovered) t += " (recovered from the checkpoint)";
  for (const auto& p : r.problems) t += "; " + p;
  return t;
}

// The outcome, fault and survivor rows: one cell per round.
double rows(SvgOut& svg, double top, const Stress& s, const Columns& cols) {
  const double cw = std::max(1.0, cols.w / static_cast<double>(cols.n) - 2);
  const char* names[] = {"result", "fault", "holds the VM"};
  for (int row = 0; row < 3; ++row)
    svg.text(kLeft - 6, top + row * kRowHeight + 17, names[row], "row-label", "end");
  for (std::size_t i = 0; i < s.rounds.size(); ++i) {
    const Round& r = s.rounds[i];
    const double x = cols.center(i) - cw / 2;
    const std::string tip = round_tip(r);
    svg.open_group(r.passed ? "round pass" : "round fail",
                   data_attr("round", std::to_string(r.number)));
    svg.rect(x, top + 2, cw, kRowHeight - 4, "outcome", r.passed ? kPassFill : kFailFill, tip);
    // A fault that did not fire is drawn hollow.
    const std::string hollow =
        r.fault != "none" && !r.fault_fired
            ? std::string(" stroke=\"") + fault_fill(s, r.fault) + "\" stroke-width=\"2\""
            : std::string();
    svg.rect(x + 1, top + kRowHeight + 3, cw - 2, kRowHeight - 6,
             r.fault_fired ? "fault fired" : "fault",
             hollow.empty() ? fault_fill(s, r.fault) : "#ffffff", tip, hollow);
    svg.rect(x, top + 2 * kRowHeight + 2, cw, kRowHeight - 4, "survivor", survivor_fill(r.survivor),
             tip);
    if (cols.w / static_cast<double>(cols.n) >= 28)
      svg.text(cols.center(i), top + 17, std::to_string(r.number), "round-number", "middle");
    svg.close_group();
  }
  return top + 3 * kRowHeight;
}

double legend(SvgOut& svg, double y, const Stress& s) {
  double x = kLeft;
  x = draw_legend(svg, x, y, kPassFill, "passed");
  x = draw_legend(svg, x, y, kFailFill, "failed");
  for (const std::string& f : s.fault_kinds) x = draw_legend(svg, x, y, fault_fill(s, f), f);
  y += 18;
  x = kLeft;
  x = draw_legend(svg, x, y, survivor_fill("destination"), "destination holds it");
  x = draw_legend(svg, x, y, survivor_fill("source"), "source holds it");
  draw_legend(svg, x, y, survivor_fill("none"), "neither (recovered or lost)");
  return y + 12;
}

// One bar per round that has the figure.
template <typename Get>
void round_panel(SvgOut& svg, double top, const Stress& s, std::string_view name,
                 std::string_view title, const char* fill, Get value, bool target) {
  double max = 0;
  std::optional<double> shared_target;
  bool one_target = true;
  for (const auto& r : s.rounds) {
    if (auto v = value(r)) max = std::max(max, *v);
    if (target && r.migration && r.migration->target_s) {
      if (shared_target && *shared_target != *r.migration->target_s) one_target = false;
      shared_target = r.migration->target_s;
    }
  }
  if (!one_target) shared_target.reset();
  if (shared_target) max = std::max(max, *shared_target);
  svg.open_group("panel", data_attr("panel", name));
  const Plot plot = draw_axes(svg, top, title, max, time_text, false);
  const Columns cols{plot.x, plot.w, s.rounds.size()};
  std::vector<std::string> labels;
  for (std::size_t i = 0; i < s.rounds.size(); ++i) {
    labels.push_back(std::to_string(s.rounds[i].number));
    const auto v = value(s.rounds[i]);
    if (!v) continue;
    const double h = plot.height_of(*v);
    svg.rect(cols.bar_x(i), plot.y + plot.h - h, cols.bar_width(), h, "bar", fill,
             "round " + std::to_string(s.rounds[i].number) + ": " + time_text(*v),
             data_attr("round", std::to_string(s.rounds[i].number)));
  }
  if (shared_target) {
    const double y = plot.y_of(*shared_target);
    svg.line(plot.x, y, plot.x + plot.w, y, "target", kTargetStroke,
             " stroke-dasharray=\"6 4\" stroke-width=\"1.5\"");
    svg.text(plot.x + 4, y - 4, "target " + time_text(*shared_target), "target-label");
  }
  if (s.rounds.empty()) draw_empty(svg, plot, "no rounds");
  draw_x_labels(svg, plot, cols, labels);
  svg.close_group();
}

}  // namespace

std::string stress_svg(const Stress& s, bool text) {
  std::size_t passed = 0, fired = 0;
  for (const auto& r : s.rounds) passed += r.passed, fired += r.fault_fired;
  std::string status = std::to_string(s.rounds.size()) + " rounds: " + std::to_string(passed) +
                       " passed, " + std::to_string(s.rounds.size() - passed) + " failed; " +
                       std::to_string(fired) + " faults fired";
  if (!s.aborted.empty()) status += "; stopped early: " + s.aborted;
  std::vector<std::string> lines;
  if (text) {
    for (const auto& [k, v] : s.facts) lines.push_back(k + ": " + v);
    for (const auto& r : s.rounds)
      if (!r.passed) lines.push_back(round_tip(r));
  }
  const double header = 52, rows_h = 3 * kRowHeight + 48;
  const double height = header + rows_h + 2 * kPanelHeight +
                        (text ? 16.0 * static_cast<double>(lines.size()) + 24 : 0);
  SvgOut svg(kWidth, height, s.title);
  svg.text(kLeft, 22, s.title, "title");
  svg.text(kLeft, 42, status, "status");
  const Columns cols{kLeft, kWidth - kLeft - kRight, std::max<std::size_t>(1, s.rounds.size())};
  double y = rows(svg, header, s, cols);
  y = legend(svg, y + 18, s);
  y = header + rows_h;
  round_panel(
      svg, y, s, "downtime", "Downtime per round (completed migrations)", kDowntimeFill,
      [](const Round& r) { return r.migration ? r.migration->downtime_s : std::nullopt; }, true);
  y += kPanelHeight;
  round_panel(
      svg, y, s, "time", "Migration time per round", kTimeFill,
      [](const Round& r) { return r.migration ? r.migration->total_s : std::nullopt; }, false);
  y += kPanelHeight;
  if (text) draw_text_block(svg, y, lines);
  return svg.finish();
}

}  // namespace mdevmig::report
