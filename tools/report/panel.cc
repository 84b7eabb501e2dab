#include <algorithm>
#include <cmath>

#include "tools/report/charts.h"

namespace mdevmig::report {
namespace {

constexpr double kTitleHeight = 26;
constexpr double kPlotHeight = 136;

// The smallest of 1, 2, 2.5, 5 times a power of ten that is >= v (v > 0).
double nice(double v) {
  const double p = std::pow(10.0, std::floor(std::log10(v)));
  for (double f : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (f * p >= v * (1 - 1e-9)) return f * p;
  return 10 * p;
}

}  // namespace

double Plot::y_of(double v) const { return y + h - std::clamp(v / max, 0.0, 1.0) * h; }

double Plot::height_of(double v) const {
  if (!(v > 0)) return 0;
  return std::max(1.0, std::clamp(v / max, 0.0, 1.0) * h);
}

double Columns::bar_width() const {
  return std::max(1.0, std::min(48.0, w / static_cast<double>(n) * 0.7));
}

std::size_t Columns::label_step() const {
  if (n == 0) return 1;
  const double per = w / static_cast<double>(n);
  return per >= 28 ? 1 : static_cast<std::size_t>(std::ceil(28 / per));
}

Plot draw_axes(SvgOut& svg, double top, std::string_view title, double max, ValueText fmt,
               bool bytes_axis) {
  Plot p;
  p.x = kLeft;
  p.y = top + kTitleHeight;
  p.w = kWidth - kLeft - kRight;
  p.h = kPlotHeight;
  // Bytes get a binary unit first (so the labels read 1.5 MiB, not 1.4 MiB), then a
  // round number of it.
  double unit = 1;
  if (bytes_axis)
    while (max / unit >= 1024) unit *= 1024;
  p.max = max > 0 ? nice(max / unit) * unit : 1;
  svg.text(kLeft, top + 16, title, "panel-title");
  for (int i = 0; i <= 4; ++i) {
    const double v = p.max * i / 4;
    const double y = p.y_of(v);
    svg.line(p.x, y, p.x + p.w, y, i == 0 ? "axis" : "grid", i == 0 ? "#444444" : "#e4e4e4");
    svg.text(p.x - 6, y + 4, fmt(v), "tick", "end");
  }
  return p;
}

void draw_x_labels(SvgOut& svg, const Plot& plot, const Columns& cols,
                   const std::vector<std::string>& labels) {
  const std::size_t step = cols.label_step();
  for (std::size_t i = 0; i < labels.size() && i < cols.n; ++i) {
    // The last column is always labelled (it is the one people look for).
    if (i % step != 0 && i + 1 != labels.size()) continue;
    if (i + 1 == labels.size() && i % step != 0 && (i % step) * 2 < step)
      continue;  // too close to the previous
    svg.text(cols.center(i), plot.y + plot.h + 15, labels[i], "tick", "middle");
  }
}

void draw_empty(SvgOut& svg, const Plot& plot, std::string_view why) {
  svg.text(plot.x + plot.w / 2, plot.y + plot.h / 2, why, "empty", "middle");
}

double draw_text_block(SvgOut& svg, double top, const std::vector<std::string>& lines) {
  svg.open_group("text-block",
                 " font-family=\"monospace\" xml:space=\"preserve\" style=\"white-space:pre\"");
  // An SVG text does not wrap: a long line (an error message) is cut to the width.
  constexpr std::size_t kMaxLine = 130;
  double y = top;
  for (const auto& l : lines) {
    y += 16;
    std::size_t cut = l.size() <= kMaxLine ? l.size() : kMaxLine;
    while (cut < l.size() && cut > 0 && (static_cast<unsigned char>(l[cut]) & 0xC0) == 0x80)
      --cut;  // whole characters
    svg.text(kLeft, y, cut < l.size() ? l.substr(0, cut) + "..." : l, "line");
  }
  svg.close_group();
  return y + 8;
}

double draw_legend(SvgOut& svg, double x, double y, std::string_view fill, std::string_view name) {
  svg.rect(x, y - 10, 12, 12, "swatch", fill);
  svg.text(x + 16, y, name, "legend");
  return x + 16 + 7.0 * static_cast<double>(name.size()) + 18;
}

}  // namespace mdevmig::report
