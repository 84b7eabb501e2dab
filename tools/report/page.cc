// The HTML page: polyglot XHTML (well-formed XML that browsers read as HTML), the
// charts inline, the figures in tables so they can be read and copied.
#include "tools/report/charts.h"
#include "tools/report/render.h"

namespace mdevmig::report {
namespace {

constexpr const char* kStyle =
    "body{font-family:sans-serif;margin:24px;color:#222;background:#fff}"
    "h1{font-size:20px}h2{font-size:16px;margin-top:28px}"
    "table{border-collapse:collapse;margin:8px 0}"
    "th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}"
    "th:first-child,td:first-child{text-align:left}td.text{text-align:left}"
    "tr.fail td{background:#fde2e2}table.facts th{text-align:left;background:#f4f4f4}"
    "details{margin:6px 0}summary{cursor:pointer}";

std::string page(const std::string& title, const std::string& body) {
  return "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\n"
         "<meta charset=\"utf-8\"/>\n<title>" +
         escape(title) + "</title>\n<style>" + kStyle + "</style>\n</head>\n<body>\n<h1>" +
         escape(title) + "</h1>\n" + body + "</body>\n</html>\n";
}

std::string cell(const std::string& s, bool text = false) {
  return std::string(text ? "<td class=\"text\">" : "<td>") + escape(s) + "</td>";
}

std::string facts_html(const std::vector<std::pair<std::string, std::string>>& facts) {
  if (facts.empty()) return {};
  std::string out = "<table class=\"facts\">\n";
  for (const auto& [k, v] : facts)
    out += "<tr><th>" + escape(k) + "</th>" + cell(v, true) + "</tr>\n";
  return out + "</table>\n";
}

std::string phases_table(const std::vector<Phase>& phases) {
  std::string out =
      "<table class=\"phases\">\n<tr><th>phase</th><th>time</th><th>bytes</th></tr>\n";
  for (const auto& p : phases) {
    out += "<tr>" + cell(p.name) + cell(p.seconds ? time_text(*p.seconds) : "-") +
           cell(p.bytes ? bytes_text(static_cast<double>(*p.bytes)) : "-") + "</tr>\n";
  }
  return out + "</table>\n";
}

std::string passes_table(const Migration& m) {
  if (m.passes.empty()) return "<p class=\"no-passes\">No pre-copy passes.</p>\n";
  std::string out =
      "<table class=\"passes\">\n<tr><th>pass</th><th>duration</th><th>device state</th><th>" +
      escape(m.other_label) + "</th><th>dirty pages</th><th>estimated downtime</th></tr>\n";
  for (const auto& p : m.passes) {
    out += "<tr>" + cell(std::to_string(p.number)) + cell(time_text(p.seconds)) +
           cell(bytes_text(static_cast<double>(p.device_bytes))) +
           cell(bytes_text(static_cast<double>(p.other_bytes))) +
           cell(p.dirty_pages ? count_text(static_cast<double>(*p.dirty_pages)) : "-") +
           cell(p.est_downtime_s ? time_text(*p.est_downtime_s) : "-") + "</tr>\n";
  }
  return out + "</table>\n";
}

std::string notes(const Migration& m) {
  std::string out;
  if (!m.dirty_note.empty())
    out += "<p class=\"note\">Dirty pages: " + escape(m.dirty_note) + ".</p>\n";
  if (!m.estimate_note.empty())
    out += "<p class=\"note\">Estimated downtime: " + escape(m.estimate_note) + ".</p>\n";
  return out;
}

// One migration: its chart first, then its figures under headings of `level`.
std::string migration_body(const Migration& m, int level) {
  const std::string h = "h" + std::to_string(level);
  auto heading = [&](const char* t) { return "<" + h + ">" + t + "</" + h + ">\n"; };
  return "<figure>\n" + migration_svg(m, false) + "</figure>\n" + facts_html(m.facts) +
         heading("Phases") + phases_table(m.phases) + heading("Pre-copy passes") + passes_table(m) +
         notes(m);
}

std::string rounds_table(const Stress& s) {
  std::string out =
      "<table "
      "class=\"rounds\">\n<tr><th>round</th><th>result</th><th>fault</th><th>fired</th><th>status</"
      "th>"
      "<th>holds the VM</th><th>downtime</th><th>round time</th><th>problems</th></tr>\n";
  for (const auto& r : s.rounds) {
    std::string problems;
    for (const auto& p : r.problems) problems += (problems.empty() ? "" : "; ") + p;
    std::string downtime = "-";
    if (r.migration && r.migration->downtime_s) downtime = time_text(*r.migration->downtime_s);
    out += std::string(r.passed ? "<tr>" : "<tr class=\"fail\">") + cell(std::to_string(r.number)) +
           cell(r.passed ? "passed" : "FAILED", true) + cell(r.fault, true) +
           cell(r.fault == "none" ? "-"
                : r.fault_fired   ? "yes"
                                  : "no",
                true) +
           cell(r.status, true) + cell(r.survivor + (r.recovered ? " (recovered)" : ""), true) +
           cell(downtime) + cell(time_text(r.seconds)) + cell(problems, true) + "</tr>\n";
  }
  return out + "</table>\n";
}

}  // namespace

std::string render(const Migration& m, Format f) {
  if (f == Format::kSvg)
    return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" + migration_svg(m, true);
  return page(m.title, migration_body(m, 2));
}

std::string render(const Stress& s, Format f) {
  if (f == Format::kSvg)
    return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" + stress_svg(s, true);
  std::string body = "<figure>\n" + stress_svg(s, false) + "</figure>\n";
  if (!s.aborted.empty())
    body += "<p class=\"aborted\">Stopped early: " + escape(s.aborted) + "</p>\n";
  body += facts_html(s.facts) + "<h2>Rounds</h2>\n" + rounds_table(s);
  bool any = false;
  for (const auto& r : s.rounds) {
    if (!r.migration) continue;
    if (!any) body += "<h2>Each round's migration</h2>\n";
    any = true;
    body += "<details" + std::string(r.passed ? "" : " open=\"open\"") + ">\n<summary>Round " +
            std::to_string(r.number) + ": " + escape(r.migration->status) + ", fault " +
            escape(r.fault) + (r.passed ? "" : ", FAILED") + "</summary>\n" +
            migration_body(*r.migration, 3) + "</details>\n";
  }
  return page(s.title, body);
}

}  // namespace mdevmig::report
