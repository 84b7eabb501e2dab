#include <algorithm>
#include <cstdio>

#include "tools/report/charts.h"

namespace mdevmig::report {
namespace {

constexpr const char* kDeviceFill = "#3366cc";
constexpr const char* kOtherFill = "#f28e2b";
constexpr const char* kDirtyFill = "#8e44ad";
constexpr const char* kDurationFill = "#16a085";
constexpr const char* kEstimateStroke = "#1f5fa8";
constexpr const char* kTargetStroke = "#cc0000";
constexpr const char* kMeasuredFill = "#2ca02c";

std::string ms_text(double s) { return time_text(s); }
std::string count_axis(double n) { return count_text(n); }

std::vector<std::string> pass_labels(const Migration& m) {
  std::vector<std::string> l;
  for (const auto& p : m.passes) l.push_back(std::to_string(p.number));
  return l;
}

std::string pass_attr(const Pass& p) { return data_attr("pass", std::to_string(p.number)); }

void bytes_panel(SvgOut& svg, double top, const Migration& m) {
  double max = 0;
  for (const auto& p : m.passes)
    max = std::max(max, static_cast<double>(p.device_bytes + p.other_bytes));
  svg.open_group("panel", data_attr("panel", "bytes"));
  const Plot plot =
      draw_axes(svg, top, "Bytes sent per pass (device state and " + m.other_label + ")", max,
                bytes_text, true);
  const Columns cols{plot.x, plot.w, m.passes.size()};
  for (std::size_t i = 0; i < m.passes.size(); ++i) {
    const Pass& p = m.passes[i];
    svg.open_group("pass", pass_attr(p));
    const std::string tip = "pass " + std::to_string(p.number) + ": device " +
                            bytes_text(static_cast<double>(p.device_bytes)) + ", " + m.other_label +
                            " " + bytes_text(static_cast<double>(p.other_bytes));
    const double hd = plot.height_of(static_cast<double>(p.device_bytes));
    const double ho = plot.height_of(static_cast<double>(p.other_bytes));
    svg.rect(cols.bar_x(i), plot.y + plot.h - hd, cols.bar_width(), hd, "bar device", kDeviceFill,
             tip);
    svg.rect(cols.bar_x(i), plot.y + plot.h - hd - ho, cols.bar_width(), ho, "bar other",
             kOtherFill, tip);
    svg.close_group();
  }
  if (m.passes.empty()) draw_empty(svg, plot, "no pre-copy passes");
  draw_x_labels(svg, plot, cols, pass_labels(m));
  const double ly = top + 16;
  draw_legend(svg, draw_legend(svg, kWidth - 330, ly, kDeviceFill, "device state"), ly, kOtherFill,
              m.other_label);
  svg.close_group();
}

// One bar per pass of `value` (none where it is not recorded).
template <typename Get>
void pass_bar_panel(SvgOut& svg, double top, const Migration& m, std::string_view name,
                    std::string_view title, const char* fill, ValueText fmt, Get value,
                    std::string_view unrecorded) {
  double max = 0;
  bool any = false;
  for (const auto& p : m.passes)
    if (auto v = value(p)) max = std::max(max, *v), any = true;
  svg.open_group("panel", data_attr("panel", name));
  const Plot plot = draw_axes(svg, top, title, max, fmt, false);
  const Columns cols{plot.x, plot.w, m.passes.size()};
  for (std::size_t i = 0; i < m.passes.size(); ++i) {
    const auto v = value(m.passes[i]);
    if (!v) continue;
    svg.open_group("pass", pass_attr(m.passes[i]));
    const double h = plot.height_of(*v);
    svg.rect(cols.bar_x(i), plot.y + plot.h - h, cols.bar_width(), h, "bar", fill,
             "pass " + std::to_string(m.passes[i].number) + ": " + fmt(*v));
    svg.close_group();
  }
  if (m.passes.empty())
    draw_empty(svg, plot, "no pre-copy passes");
  else if (!any)
    draw_empty(svg, plot, unrecorded);
  draw_x_labels(svg, plot, cols, pass_labels(m));
  svg.close_group();
}

// The estimate after each pass, the target across, and the measured downtime in a
// column of its own after the passes.
void downtime_panel(SvgOut& svg, double top, const Migration& m) {
  double max = m.target_s.value_or(0);
  if (m.downtime_s) max = std::max(max, *m.downtime_s);
  for (const auto& p : m.passes)
    if (p.est_downtime_s) max = std::max(max, *p.est_downtime_s);
  svg.open_group("panel", data_attr("panel", "downtime"));
  const Plot plot = draw_axes(
      svg, top, "Downtime: the estimate after each pass, the target, the measured downtime", max,
      ms_text, false);
  const Columns cols{plot.x, plot.w, m.passes.size() + 1};
  std::string points;
  for (std::size_t i = 0; i < m.passes.size(); ++i) {
    const Pass& p = m.passes[i];
    if (!p.est_downtime_s) continue;
    const double x = cols.center(i), y = plot.y_of(*p.est_downtime_s);
    points += (points.empty() ? "" : " ") + num(x) + "," + num(y);
  }
  if (!points.empty()) svg.polyline(points, "estimate-line", kEstimateStroke);
  for (std::size_t i = 0; i < m.passes.size(); ++i) {
    const Pass& p = m.passes[i];
    if (!p.est_downtime_s) continue;
    svg.circle(
        cols.center(i), plot.y_of(*p.est_downtime_s), 4, "estimate", kEstimateStroke,
        "pass " + std::to_string(p.number) + ": estimated downtime " + time_text(*p.est_downtime_s),
        pass_attr(p));
  }
  const std::size_t last = m.passes.size();
  if (m.downtime_s) {
    const double h = plot.height_of(*m.downtime_s);
    svg.rect(cols.bar_x(last), plot.y + plot.h - h, cols.bar_width(), h, "measured-downtime",
             kMeasuredFill, "measured downtime " + time_text(*m.downtime_s));
  } else {
    svg.text(cols.center(last), plot.y + plot.h - 6, "none", "no-downtime", "middle");
  }
  if (m.target_s) {
    const double y = plot.y_of(*m.target_s);
    svg.line(plot.x, y, plot.x + plot.w, y, "target", kTargetStroke,
             " stroke-dasharray=\"6 4\" stroke-width=\"1.5\"");
    svg.text(plot.x + 4, y - 4, "target " + time_text(*m.target_s), "target-label");
  }
  std::vector<std::string> labels = pass_labels(m);
  labels.emplace_back(m.downtime_s ? "measured" : "-");
  draw_x_labels(svg, plot, cols, labels);
  double lx = kWidth - 420;
  const double ly = top + 16;
  lx = draw_legend(svg, lx, ly, kEstimateStroke, "estimate");
  lx = draw_legend(svg, lx, ly, kTargetStroke, m.target_s ? "target" : "no target");
  draw_legend(svg, lx, ly, kMeasuredFill, "measured");
  svg.close_group();
}

std::string status_line(const Migration& m) {
  std::string s = m.status + ", " + std::to_string(m.passes.size()) +
                  (m.passes.size() == 1 ? " pass" : " passes");
  if (m.downtime_s)
    s += ", downtime " + time_text(*m.downtime_s);
  else
    s += ", no downtime (it did not complete)";
  if (m.target_s) s += " (target " + time_text(*m.target_s) + ")";
  if (m.total_s) s += ", total " + time_text(*m.total_s);
  return s;
}

}  // namespace

std::vector<std::string> phase_lines(const std::vector<Phase>& phases) {
  std::vector<std::string> out;
  char buf[160];
  std::snprintf(buf, sizeof buf, "%-24s %12s %12s", "phase", "time", "bytes");
  out.emplace_back(buf);
  for (const auto& p : phases) {
    std::snprintf(buf, sizeof buf, "%-24s %12s %12s", p.name.c_str(),
                  p.seconds ? time_text(*p.seconds).c_str() : "-",
                  p.bytes ? bytes_text(static_cast<double>(*p.bytes)).c_str() : "-");
    out.emplace_back(buf);
  }
  return out;
}

std::string migration_svg(const Migration& m, bool text) {
  std::vector<std::string> lines;
  if (text) {
    lines = phase_lines(m.phases);
    lines.emplace_back();
    for (const auto& [k, v] : m.facts) lines.push_back(k + ": " + v);
    if (!m.dirty_note.empty()) lines.push_back("dirty pages: " + m.dirty_note);
    if (!m.estimate_note.empty()) lines.push_back("estimate: " + m.estimate_note);
  }
  const double header = 52;
  const double height =
      header + 4 * kPanelHeight + (text ? 16.0 * static_cast<double>(lines.size()) + 24 : 0);
  SvgOut svg(kWidth, height, m.title);
  svg.text(kLeft, 22, m.title, "title");
  svg.text(kLeft, 42, status_line(m), "status");
  double y = header;
  bytes_panel(svg, y, m);
  y += kPanelHeight;
  pass_bar_panel(
      svg, y, m, "dirty", "Dirty pages per pass", kDirtyFill, count_axis,
      [](const Pass& p) -> std::optional<double> {
        if (!p.dirty_pages) return std::nullopt;
        return static_cast<double>(*p.dirty_pages);
      },
      "dirty pages not recorded");
  y += kPanelHeight;
  pass_bar_panel(
      svg, y, m, "duration", "Duration per pass", kDurationFill, ms_text,
      [](const Pass& p) -> std::optional<double> { return p.seconds; }, "");
  y += kPanelHeight;
  downtime_panel(svg, y, m);
  y += kPanelHeight;
  if (text) draw_text_block(svg, y, lines);
  return svg.finish();
}

}  // namespace mdevmig::report
