// The migration picture: every page and chart is well-formed XML, draws one mark per
// pass (or round) in every panel, the target and the measured downtime where they
// exist and says so where they do not, and escapes whatever text came from outside.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "tests/unit/report/samples.h"
#include "tests/unit/report/xml_check.h"
#include "tools/report/convert.h"
#include "tools/report/render.h"
#include "tools/report/xml.h"

namespace mdevmig::report {
namespace {

using testing::Document;
using testing::parse_xml;

Document checked(const std::string& xml) {
  Document d = parse_xml(xml);
  EXPECT_TRUE(d.ok()) << d.error << "\n" << xml.substr(0, 2000);
  return d;
}

// Both formats of a migration, parsed.
struct Both {
  Document html, svg;
};
Both both(const Migration& m) {
  return {checked(render(m, Format::kHtml)), checked(render(m, Format::kSvg))};
}

// ---- the checker itself can fail ------------------------------------------------------------

TEST(XmlCheck, RefusesWhatIsNotWellFormed) {
  for (const char* bad : {"", "<a>", "<a></b>", "<a><b></a></b>", "<a x='1' x='2'/>", "<a x=1/>",
                          "<a>&foo;</a>", "<a>a & b</a>", "<a>1 < 2</a>", "<a/><b/>", "<a>\x01</a>",
                          "<a>\xff</a>", "<a x='<'/>", "<a/>trailing"}) {
    EXPECT_FALSE(parse_xml(bad).ok()) << "accepted: " << bad;
  }
  const Document d = parse_xml(
      "<!DOCTYPE html>\n<a k=\"&lt;&amp;\"><b class=\"x y\">t&#39;</b><b class=\"y\"/></a>");
  ASSERT_TRUE(d.ok()) << d.error;
  EXPECT_EQ(d.count("b", "y"), 2u);
  EXPECT_EQ(d.count("b", "x"), 1u);
  EXPECT_EQ(d.elements[0].attrs.at("k"), "<&");
  EXPECT_EQ(d.elements[1].text, "t'");
}

// ---- escaping and formatting ----------------------------------------------------------------

TEST(Escape, MarkupQuotesControlsAndBadUtf8) {
  EXPECT_EQ(escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&#39;");
  EXPECT_EQ(escape("tab\tnew\nline"), "tab\tnew\nline");
  EXPECT_EQ(escape("\x01"), "\xEF\xBF\xBD");
  EXPECT_EQ(escape("\xff"), "\xEF\xBF\xBD");
  EXPECT_EQ(escape("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD") << "an overlong '/'";
  EXPECT_EQ(escape("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD") << "a surrogate";
  EXPECT_EQ(escape("caf\xC3\xA9 \xE2\x82\xAC"), "caf\xC3\xA9 \xE2\x82\xAC") << "UTF-8 stays";
  EXPECT_EQ(escape("\xE2\x82"), "\xEF\xBF\xBD\xEF\xBF\xBD") << "cut short";
}

TEST(Escape, Numbers) {
  EXPECT_EQ(num(12.04), "12");
  EXPECT_EQ(num(12.25), "12.3");
  EXPECT_EQ(num(-0.01), "0");
  EXPECT_EQ(bytes_text(512), "512 B");
  EXPECT_EQ(bytes_text(1.5 * 1024 * 1024), "1.5 MiB");
  EXPECT_EQ(time_text(0.0123), "12.3 ms");
  EXPECT_EQ(time_text(2.5), "2.50 s");
  EXPECT_EQ(count_text(1234567), "1,234,567");
}

// ---- a migration ----------------------------------------------------------------------------

TEST(Migration, EveryPassHasABarInEveryPanelAndAnEstimateWhereThereIsOne) {
  const Migration m = from_engine(testing::engine_report(5), "mdevmig migrate: same host");
  ASSERT_EQ(m.passes.size(), 5u);
  const Both b = both(m);
  for (const Document* d : {&b.html, &b.svg}) {
    for (const char* panel : {"bytes", "dirty", "duration"})
      EXPECT_EQ(d->count("g", "pass", "data-panel", panel), 5u) << panel;
    // Pass 1 has no estimate yet (no bandwidth measured): four points.
    EXPECT_EQ(d->count("circle", "estimate", "data-panel", "downtime"), 4u);
    EXPECT_EQ(d->count("polyline", "estimate-line"), 1u);
    EXPECT_EQ(d->count("line", "target", "data-panel", "downtime"), 1u);
    EXPECT_EQ(d->count("rect", "measured-downtime"), 1u);
    EXPECT_EQ(d->count("text", "no-downtime"), 0u);
  }
  // The bars of a pass carry its figures.
  const auto bars = b.svg.find("rect", "device", "data-panel", "bytes");
  ASSERT_EQ(bars.size(), 5u);
  EXPECT_EQ(bars[0]->parent >= 0
                ? b.svg.elements[static_cast<std::size_t>(bars[0]->parent)].attrs.at("data-pass")
                : "",
            "1");
  EXPECT_NE(b.svg.all_text().find("pass 1: device 64.0 MiB, guest memory 16.0 MiB"),
            std::string::npos);
  // The HTML has the same figures in tables: a row per pass, a row per phase.
  EXPECT_EQ(b.html.count("tr", "", "class", "passes"), 6u);
  EXPECT_EQ(b.html.count("tr", "", "class", "phases"), 4u);
  EXPECT_NE(b.html.all_text().find("target 300.0 ms"), std::string::npos);
  // The bare SVG carries the phase table as text.
  EXPECT_NE(b.svg.all_text().find("stop-copy (downtime)"), std::string::npos);
  EXPECT_NE(b.svg.all_text().find("switchover: estimated downtime 120.0 ms fits the target 300 ms"),
            std::string::npos);
}

TEST(Migration, ATallerBarIsABiggerFigure) {
  const Migration m = from_engine(testing::engine_report(3), "t");
  const Document d = checked(render(m, Format::kSvg));
  const auto bars = d.find("rect", "bar", "data-panel", "duration");
  ASSERT_EQ(bars.size(), 3u);
  auto height = [](const testing::Element* e) { return std::stod(e->attrs.at("height")); };
  // Pass 1 took 1.9 s, pass 2 0.125 s, pass 3 0.083 s.
  EXPECT_GT(height(bars[0]), height(bars[1]));
  EXPECT_GT(height(bars[1]), height(bars[2]));
  EXPECT_GE(height(bars[2]), 1.0) << "a small figure still shows";
}

TEST(Migration, AnAbortedMigrationHasNoMeasuredDowntimeAndSaysSo) {
  const Migration m = from_qemu(testing::qemu_cancelled(), "mdevmig qemu-migrate");
  EXPECT_FALSE(m.completed);
  EXPECT_FALSE(m.downtime_s);
  const Both b = both(m);
  for (const Document* d : {&b.html, &b.svg}) {
    EXPECT_EQ(d->count("rect", "measured-downtime"), 0u);
    EXPECT_EQ(d->count("text", "no-downtime"), 1u);
    EXPECT_EQ(d->count("line", "target"), 1u) << "the target is still drawn";
    EXPECT_EQ(d->count("g", "pass", "data-panel", "bytes"), 2u);
    EXPECT_EQ(d->count("circle", "estimate"), 2u) << "QEMU's expected-downtime per row";
    EXPECT_NE(d->all_text().find("no downtime (it did not complete)"), std::string::npos);
  }
  // Durations come from the rows' times: 900 ms after the start, then 120 ms.
  ASSERT_EQ(m.passes.size(), 2u);
  EXPECT_NEAR(m.passes[1].seconds, 0.120, 1e-9);
  EXPECT_NE(b.html.all_text().find("pre-copy (until it ended)"), std::string::npos);
}

TEST(Migration, ZeroPassesDrawNoBarsAndSayWhy) {
  engine::MigrationReport r = testing::engine_report(0);
  r.downtime_target_s = 0;  // a destination knows no target
  const Migration m = from_engine(r, "mdevmig migrate: destination");
  const Both b = both(m);
  for (const Document* d : {&b.html, &b.svg}) {
    EXPECT_EQ(d->count("g", "pass"), 0u);
    EXPECT_EQ(d->count("circle", "estimate"), 0u);
    EXPECT_EQ(d->count("polyline", ""), 0u);
    EXPECT_EQ(d->count("line", "target"), 0u);
    EXPECT_EQ(d->count("rect", "measured-downtime"), 1u);
    EXPECT_EQ(d->count("text", "empty"), 3u) << "bytes, dirty pages and duration";
  }
  EXPECT_EQ(b.html.count("p", "no-passes"), 1u);
}

TEST(Migration, TextFromOutsideIsEscapedEverywhere) {
  Migration m = from_qemu(testing::qemu_cancelled(), std::string("migrate ") + testing::kHostile);
  m.facts.emplace_back(testing::kHostile, testing::kHostile);
  m.status = testing::kHostile;
  m.other_label = testing::kHostile;
  for (Format f : {Format::kHtml, Format::kSvg}) {
    const std::string out = render(m, f);
    const Document d = checked(out);
    EXPECT_EQ(d.count("script", ""), 0u);
    EXPECT_EQ(out.find("<script"), std::string::npos);
    EXPECT_NE(out.find("&lt;script&gt;"), std::string::npos);
    EXPECT_EQ(out.find('\x01'), std::string::npos);
    EXPECT_EQ(d.count("svg", ""), 1u) << "the hostile </svg> did not end the chart";
  }
}

// ---- a stress run ---------------------------------------------------------------------------

TEST(Stress, EveryRoundHasItsOutcomeFaultAndSurvivor) {
  const Stress s = from_stress(testing::stress_report(), "mdevmig stress", Driver::kQemu);
  ASSERT_EQ(s.rounds.size(), 6u);
  for (Format f : {Format::kHtml, Format::kSvg}) {
    const Document d = checked(render(s, f));
    const auto rounds = d.find("g", "round");
    ASSERT_EQ(rounds.size(), 6u);
    std::vector<std::string> classes;
    classes.reserve(rounds.size());
    for (const auto* r : rounds) classes.push_back(r->attrs.at("class"));
    EXPECT_EQ(classes, (std::vector<std::string>{"round pass", "round pass", "round pass",
                                                 "round pass", "round fail", "round fail"}));
    EXPECT_EQ(d.count("rect", "outcome"), 6u);
    // Five faults were planned, three fired; the two that did not are drawn hollow.
    EXPECT_EQ(d.count("rect", "fired"), 3u);
    std::size_t hollow = 0;
    for (const auto* e : d.find("rect", "fault")) hollow += e->attrs.count("stroke");
    EXPECT_EQ(hollow, 2u);
    EXPECT_EQ(d.count("rect", "survivor"), 6u);
    // Downtime only for the two completed rounds, against the shared 300 ms limit.
    EXPECT_EQ(d.count("rect", "bar", "data-panel", "downtime"), 2u);
    // In the page, each of the five rounds' own charts has its target line too.
    EXPECT_EQ(d.count("line", "target", "data-panel", "downtime"), f == Format::kSvg ? 1u : 6u);
    EXPECT_EQ(d.count("script", ""), 0u);
  }
  const Document html = checked(render(s, Format::kHtml));
  EXPECT_EQ(html.count("tr", "fail"), 2u);
  // Each round with figures gets its own chart: five (round 6 never started).
  EXPECT_EQ(html.count("details", ""), 5u);
  EXPECT_EQ(html.count("svg", ""), 6u);
  EXPECT_NE(html.all_text().find("wrong survivor: <dev&"), std::string::npos)
      << "the problem, escaped and read back";
  const Document svg = checked(render(s, Format::kSvg));
  EXPECT_NE(svg.all_text().find("round 5: FAILED"), std::string::npos);
}

TEST(Stress, RoundPassAndFailAreTheHarnessVerdicts) {
  const Stress s = from_stress(testing::stress_report(), "t", Driver::kQemu);
  std::vector<bool> passed;
  for (const auto& r : s.rounds) passed.push_back(r.passed);
  EXPECT_EQ(passed, (std::vector<bool>{true, true, true, true, false, false}));
  EXPECT_TRUE(s.rounds[2].recovered);
  EXPECT_EQ(s.rounds[2].survivor, "none");
  EXPECT_FALSE(s.rounds[5].migration) << "a round that never migrated has no figures";
  EXPECT_FALSE(s.rounds[3].fault_fired);
}

TEST(Stress, NoRoundsIsStillAPicture) {
  qemu::StressReport r;
  r.aborted = "the first VM did not boot";
  const Stress s = from_stress(r, "t", Driver::kEngine);
  for (Format f : {Format::kHtml, Format::kSvg}) {
    const Document d = checked(render(s, f));
    EXPECT_EQ(d.count("g", "round"), 0u);
    EXPECT_NE(d.all_text().find("stopped early: the first VM did not boot"), std::string::npos);
  }
}

// ---- the file -------------------------------------------------------------------------------

TEST(File, FormatComesFromTheSuffix) {
  EXPECT_EQ(format_of("a.html"), Format::kHtml);
  EXPECT_EQ(format_of("/tmp/x/A.HTML"), Format::kHtml);
  EXPECT_EQ(format_of("r.svg"), Format::kSvg);
  EXPECT_EQ(format_of("r.SVG"), Format::kSvg);
  for (const char* bad :
       {"a.txt", "a.htm", "a.html.txt", "a.json", "html", "svg", ".svg", "dir/.html", ""})
    EXPECT_FALSE(format_of(bad)) << bad;
}

class FileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/mdevmig-report-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(FileTest, WritesAndReplacesAtomically) {
  const std::string path = (dir_ / "r.svg").string();
  ASSERT_TRUE(write_file(path, "first").ok());
  ASSERT_TRUE(write_file(path, "second").ok());
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  EXPECT_EQ(s.str(), "second");
  // Nothing but the file is left next to it.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir_),
                          std::filesystem::directory_iterator()),
            1);
}

TEST_F(FileTest, AFailureSaysWhereAndLeavesNothing) {
  const std::string path = (dir_ / "no-such-dir" / "r.html").string();
  auto r = write_file(path, "x");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find(path), std::string::npos) << r.error().message();
  EXPECT_EQ(r.error().message().find('\n'), std::string::npos);
  // A directory where the file should go: the rename fails, the temporary file goes.
  const std::string taken = (dir_ / "taken.html").string();
  std::filesystem::create_directory(taken);
  std::filesystem::create_directory(dir_ / "taken.html" / "inside");
  auto t = write_file(taken, "x");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir_),
                          std::filesystem::directory_iterator()),
            1);
}

}  // namespace
}  // namespace mdevmig::report
