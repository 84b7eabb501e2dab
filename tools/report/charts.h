// The charts as SVG elements (inside the library: render.h is the interface). A chart
// is one <svg> element that stands alone (a .svg file) or sits inline in the page.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "tools/report/model.h"
#include "tools/report/xml.h"

namespace mdevmig::report {

/// The migration's passes: bytes, dirty pages, duration, the downtime estimate against
/// the target and the measured downtime. `text`: the phase table and the facts as text
/// below the charts (for a bare .svg, where no HTML table goes with it).
[[nodiscard]] std::string migration_svg(const Migration& m, bool text);
/// The rounds of a stress run: outcome, fault, survivor, downtime and time per round.
[[nodiscard]] std::string stress_svg(const Stress& s, bool text);

/// The lines of the phase table, aligned for a monospace font.
[[nodiscard]] std::vector<std::string> phase_lines(const std::vector<Phase>& phases);

// ---- the drawing pieces both charts use --------------------------------------------

inline constexpr double kWidth = 960;
inline constexpr double kLeft = 90;  ///< room for the y axis labels
inline constexpr double kRight = 24;
inline constexpr double kPanelHeight = 196;  ///< title, plot and x labels

using ValueText = std::string (*)(double);

/// A plot area with a y axis from 0 to `max`.
struct Plot {
  double x = 0, y = 0, w = 0, h = 0, max = 1;
  [[nodiscard]] double y_of(double v) const;
  /// The height of a bar of value v: at least one pixel when v > 0, so it shows.
  [[nodiscard]] double height_of(double v) const;
};

/// `n` columns across a plot: where each column's bar goes.
struct Columns {
  double x0 = 0, w = 0;
  std::size_t n = 0;
  [[nodiscard]] double center(std::size_t i) const {
    return x0 + (static_cast<double>(i) + 0.5) * w / static_cast<double>(n);
  }
  [[nodiscard]] double bar_width() const;
  [[nodiscard]] double bar_x(std::size_t i) const { return center(i) - bar_width() / 2; }
  /// Every how many columns a label fits.
  [[nodiscard]] std::size_t label_step() const;
};

/// Draws a panel's title, axis and gridlines from y = `top`, its y axis up to at least
/// `max` (rounded up), labelled with `fmt`; returns the plot area.
Plot draw_axes(SvgOut& svg, double top, std::string_view title, double max, ValueText fmt,
               bool bytes_axis);
/// Labels the x axis of `plot` below it: `labels[i]` at column i, where one fits.
void draw_x_labels(SvgOut& svg, const Plot& plot, const Columns& cols,
                   const std::vector<std::string>& labels);
/// Grey text in the middle of an empty plot.
void draw_empty(SvgOut& svg, const Plot& plot, std::string_view why);
/// Monospace lines from y = `top`; returns the y after them.
double draw_text_block(SvgOut& svg, double top, const std::vector<std::string>& lines);
/// A legend entry (a swatch and its name) at x, y; returns the x after it.
double draw_legend(SvgOut& svg, double x, double y, std::string_view fill, std::string_view name);

}  // namespace mdevmig::report
