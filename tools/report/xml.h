// Building XML text by hand: escaping, number formatting, and a small SVG writer. Every
// string that comes from input (device names, error messages, QEMU's replies) goes
// through escape(); the writer escapes what it is given, so a caller cannot forget.
#pragma once

#include <string>
#include <string_view>

namespace mdevmig::report {

/// `text` as XML character data or attribute value: & < > " ' escaped; bytes that are
/// not UTF-8 and the control characters XML 1.0 forbids become U+FFFD.
[[nodiscard]] std::string escape(std::string_view text);
/// A coordinate or length with at most one decimal ("12.5", "3").
[[nodiscard]] std::string num(double v);
/// "512 B", "12.3 KiB", "1.5 GiB".
[[nodiscard]] std::string bytes_text(double bytes);
/// "850 us", "12.3 ms", "4.56 s".
[[nodiscard]] std::string time_text(double seconds);
/// "1234567" as "1,234,567" (counts of pages).
[[nodiscard]] std::string count_text(double n);

/// Appends SVG elements to a string. Attribute values and text are escaped here.
class SvgOut {
 public:
  /// Opens the root <svg> element (with its namespace, so it stands alone or inline).
  SvgOut(double width, double height, std::string_view label);
  /// `cls` is the element's class (what tests and style sheets find it by); `tip` is a
  /// <title> child (a tooltip in a browser), none when empty; `extra` is more
  /// attributes, already escaped (e.g. data_attr()).
  void rect(double x, double y, double w, double h, std::string_view cls, std::string_view fill,
            std::string_view tip = {}, std::string_view extra = {});
  void line(double x1, double y1, double x2, double y2, std::string_view cls,
            std::string_view stroke, std::string_view extra = {});
  void circle(double cx, double cy, double r, std::string_view cls, std::string_view fill,
              std::string_view tip = {}, std::string_view extra = {});
  void polyline(std::string_view points, std::string_view cls, std::string_view stroke);
  /// `anchor`: start, middle or end.
  void text(double x, double y, std::string_view s, std::string_view cls,
            std::string_view anchor = "start");
  void open_group(std::string_view cls, std::string_view extra = {});
  void close_group();
  /// Closes the root element and returns the document fragment.
  [[nodiscard]] std::string finish();

 private:
  std::string out_;
};

/// ` data-NAME="VALUE"` for SvgOut's `extra`.
[[nodiscard]] std::string data_attr(std::string_view name, std::string_view value);

}  // namespace mdevmig::report
