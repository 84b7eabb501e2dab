#include "tools/report/xml.h"

#include <cmath>
#include <cstdint>
#include <cstdio>

namespace mdevmig::report {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// The length of the UTF-8 sequence at s[i] and its code point, or 0 if it is not one
// (overlong forms, surrogates and code points past U+10FFFF are not).
std::size_t utf8_at(std::string_view s, std::size_t i, uint32_t& cp) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char c = b(0);
  std::size_t n = 0;
  if (c < 0x80)
    n = 1, cp = c;
  else if ((c & 0xE0) == 0xC0)
    n = 2, cp = c & 0x1F;
  else if ((c & 0xF0) == 0xE0)
    n = 3, cp = c & 0x0F;
  else if ((c & 0xF8) == 0xF0)
    n = 4, cp = c & 0x07;
  else
    return 0;
  if (i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    if ((b(k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(k) & 0x3F);
  }
  static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

}  // namespace

std::string escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    uint32_t cp = 0;
    const std::size_t n = utf8_at(text, i, cp);
    if (n == 0) {
      out += kReplacement;
      ++i;
      continue;
    }
    switch (cp) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        // XML 1.0 allows tab, newline and carriage return of the C0 controls, and
        // neither U+FFFE nor U+FFFF.
        if ((cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r') || cp == 0xFFFE || cp == 0xFFFF)
          out += kReplacement;
        else
          out.append(text.substr(i, n));
    }
    i += n;
  }
  return out;
}

std::string num(double v) {
  if (!std::isfinite(v)) v = 0;
  char buf[32];
  const double r = std::round(v * 10) / 10;
  std::snprintf(buf, sizeof buf, r == std::floor(r) ? "%.0f" : "%.1f", r);
  return std::string(buf) == "-0" ? "0" : buf;
}

std::string bytes_text(double bytes) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) bytes /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", bytes, kUnits[u]);
  return buf;
}

std::string time_text(double seconds) {
  char buf[32];
  if (seconds < 0.001 && seconds > 0)
    std::snprintf(buf, sizeof buf, "%.0f us", seconds * 1e6);
  else if (seconds < 1)
    std::snprintf(buf, sizeof buf, "%.1f ms", seconds * 1e3);
  else
    std::snprintf(buf, sizeof buf, "%.2f s", seconds);
  return buf;
}

std::string count_text(double n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f", n);
  std::string digits = buf, out;
  const std::size_t lead = digits[0] == '-' ? 1 : 0;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > lead && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string data_attr(std::string_view name, std::string_view value) {
  return " data-" + std::string(name) + "=\"" + escape(value) + "\"";
}

SvgOut::SvgOut(double width, double height, std::string_view label) {
  out_ = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + num(width) + "\" height=\"" +
         num(height) + "\" viewBox=\"0 0 " + num(width) + " " + num(height) +
         "\" role=\"img\" aria-label=\"" + escape(label) +
         "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  // A white ground, so the chart reads the same on a dark page or viewer.
  out_ += "<rect class=\"ground\" x=\"0\" y=\"0\" width=\"" + num(width) + "\" height=\"" +
          num(height) + "\" fill=\"#ffffff\"/>\n";
}

void SvgOut::rect(double x, double y, double w, double h, std::string_view cls,
                  std::string_view fill, std::string_view tip, std::string_view extra) {
  out_ += "<rect class=\"" + escape(cls) + "\" x=\"" + num(x) + "\" y=\"" + num(y) + "\" width=\"" +
          num(w) + "\" height=\"" + num(h) + "\" fill=\"" + escape(fill) + "\"" +
          std::string(extra);
  out_ += tip.empty() ? "/>\n" : "><title>" + escape(tip) + "</title></rect>\n";
}

void SvgOut::line(double x1, double y1, double x2, double y2, std::string_view cls,
                  std::string_view stroke, std::string_view extra) {
  out_ += "<line class=\"" + escape(cls) + "\" x1=\"" + num(x1) + "\" y1=\"" + num(y1) +
          "\" x2=\"" + num(x2) + "\" y2=\"" + num(y2) + "\" stroke=\"" + escape(stroke) + "\"" +
          std::string(extra) + "/>\n";
}

void SvgOut::circle(double cx, double cy, double r, std::string_view cls, std::string_view fill,
                    std::string_view tip, std::string_view extra) {
  out_ += "<circle class=\"" + escape(cls) + "\" cx=\"" + num(cx) + "\" cy=\"" + num(cy) +
          "\" r=\"" + num(r) + "\" fill=\"" + escape(fill) + "\"" + std::string(extra);
  out_ += tip.empty() ? "/>\n" : "><title>" + escape(tip) + "</title></circle>\n";
}

void SvgOut::polyline(std::string_view points, std::string_view cls, std::string_view stroke) {
  out_ += "<polyline class=\"" + escape(cls) + "\" points=\"" + escape(points) +
          "\" fill=\"none\" stroke=\"" + escape(stroke) + "\" stroke-width=\"1.5\"/>\n";
}

void SvgOut::text(double x, double y, std::string_view s, std::string_view cls,
                  std::string_view anchor) {
  out_ += "<text class=\"" + escape(cls) + "\" x=\"" + num(x) + "\" y=\"" + num(y) +
          "\" text-anchor=\"" + escape(anchor) + "\">" + escape(s) + "</text>\n";
}

void SvgOut::open_group(std::string_view cls, std::string_view extra) {
  out_ += "<g class=\"" + escape(cls) + "\"" + std::string(extra) + ">\n";
}

void SvgOut::close_group() { out_ += "</g>\n"; }

std::string SvgOut::finish() {
  out_ += "</svg>\n";
  return std::move(out_);
}

}  // namespace mdevmig::report
