// The fault table: every kind once, named, parsed back, with its expected survivor.
#include "tools/stress/faults.h"

#include <set>
#include <string>

#include <gtest/gtest.h>

namespace mdevmig::stress {
namespace {

TEST(FaultTable, ListsEveryKindOnceInEnumOrderWithADistinctName) {
  std::set<std::string> names;
  std::size_t i = 0;
  for (const FaultSpec& s : fault_table()) {
    EXPECT_EQ(static_cast<std::size_t>(s.kind), i++);
    ASSERT_NE(s.name, nullptr);
    EXPECT_FALSE(std::string(s.name).empty());
    EXPECT_TRUE(names.insert(s.name).second) << s.name << " twice";
    EXPECT_EQ(&fault_spec(s.kind), &s);
  }
  EXPECT_EQ(fault_table().front().kind, FaultKind::kNone);
  EXPECT_EQ(fault_table().back().kind, FaultKind::kTruncate);
}

TEST(FaultTable, NamesAreTheCliSpellings) {
  EXPECT_STREQ(fault_name(FaultKind::kNone), "none");
  EXPECT_STREQ(fault_name(FaultKind::kCancel), "cancel");
  EXPECT_STREQ(fault_name(FaultKind::kKillDst), "kill-dst");
  EXPECT_STREQ(fault_name(FaultKind::kKillSrc), "kill-src");
  EXPECT_STREQ(fault_name(FaultKind::kCorrupt), "corrupt");
  EXPECT_STREQ(fault_name(FaultKind::kTruncate), "truncate");
}

TEST(FaultTable, ParsesEveryNameBack) {
  for (const FaultSpec& s : fault_table()) {
    auto f = parse_fault(s.name);
    ASSERT_TRUE(f.ok()) << s.name;
    EXPECT_EQ(*f, s.kind);
  }
}

TEST(FaultTable, RejectsUnknownNamesSayingWhatIsKnown) {
  for (const char* bad : {"explode", "", "Cancel", "kill", "cancel ", "kill_dst"}) {
    auto f = parse_fault(bad);
    ASSERT_FALSE(f.ok()) << "'" << bad << "'";
    EXPECT_EQ(f.error().errnum, EINVAL);
    EXPECT_NE(f.error().message().find("none, cancel, kill-dst, kill-src, corrupt, truncate"),
              std::string::npos)
        << f.error().message();
  }
}

TEST(FaultTable, ListsParseDropNoneAndPrintBack) {
  auto l = parse_fault_list("cancel,none,truncate");
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(*l, (std::vector<FaultKind>{FaultKind::kCancel, FaultKind::kTruncate}));
  EXPECT_EQ(fault_list_text(*l), "cancel,truncate");
  EXPECT_EQ(fault_list_text(*l, ", "), "cancel, truncate");
  EXPECT_TRUE(parse_fault_list("none")->empty());
  EXPECT_FALSE(parse_fault_list("cancel,,truncate").ok());
  EXPECT_FALSE(parse_fault_list("cancel,explode").ok());
  auto all = parse_fault_list(fault_list_text(default_faults()));
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(*all, default_faults());
  EXPECT_EQ(fault_names(default_faults()),
            (std::vector<std::string>{"cancel", "kill-dst", "kill-src", "corrupt", "truncate"}));
}

TEST(FaultTable, DefaultsAreEveryInjectableFault) {
  EXPECT_EQ(default_faults(), injectable_faults());
  EXPECT_EQ(default_faults().size(), fault_table().size() - 1);
}

TEST(FaultTable, ExpectedSurvivorPerKind) {
  EXPECT_EQ(expected_survivor(FaultKind::kNone), Survivor::kDestination);
  EXPECT_EQ(expected_survivor(FaultKind::kCancel), Survivor::kSource);
  EXPECT_EQ(expected_survivor(FaultKind::kKillDst), Survivor::kSource);
  EXPECT_EQ(expected_survivor(FaultKind::kKillSrc), Survivor::kNone);
  EXPECT_EQ(expected_survivor(FaultKind::kCorrupt), Survivor::kSource);
  EXPECT_EQ(expected_survivor(FaultKind::kTruncate), Survivor::kSource);
}

TEST(FaultTable, LateCancelAndBlindFlipsMayCompleteNothingElse) {
  for (const FaultSpec& s : fault_table()) {
    for (bool blind : {false, true}) {
      EXPECT_TRUE(survivor_acceptable(s.kind, s.survivor, blind)) << s.name;
      const bool may_complete = s.kind == FaultKind::kCancel ||
                                (blind && s.kind == FaultKind::kCorrupt) ||
                                s.kind == FaultKind::kNone;
      EXPECT_EQ(survivor_acceptable(s.kind, Survivor::kDestination, blind), may_complete)
          << s.name << " " << blind;
    }
  }
  EXPECT_FALSE(survivor_acceptable(FaultKind::kKillDst, Survivor::kNone, true));
  EXPECT_FALSE(survivor_acceptable(FaultKind::kKillSrc, Survivor::kSource, true));
  // What an aimed injector's destination must refuse.
  for (const FaultSpec& s : fault_table())
    EXPECT_EQ(destination_must_refuse(s.kind), s.kind == FaultKind::kKillDst ||
                                                   s.kind == FaultKind::kCorrupt ||
                                                   s.kind == FaultKind::kTruncate)
        << s.name;
}

TEST(FaultTable, WhereEachFaultApplies) {
  EXPECT_TRUE(fault_spec(FaultKind::kCorrupt).in_stream);
  EXPECT_TRUE(fault_spec(FaultKind::kTruncate).in_stream);
  for (FaultKind f : {FaultKind::kCancel, FaultKind::kKillDst, FaultKind::kKillSrc})
    EXPECT_FALSE(fault_spec(f).in_stream) << fault_name(f);
  // No destination runs while a file is written.
  EXPECT_FALSE(fault_spec(FaultKind::kKillDst).applies_to_file);
  for (FaultKind f :
       {FaultKind::kCancel, FaultKind::kKillSrc, FaultKind::kCorrupt, FaultKind::kTruncate})
    EXPECT_TRUE(fault_spec(f).applies_to_file) << fault_name(f);
  EXPECT_EQ(fault_spec(FaultKind::kKillDst).site, FaultSite::kDestination);
  EXPECT_EQ(fault_spec(FaultKind::kKillSrc).site, FaultSite::kSource);
  EXPECT_EQ(fault_spec(FaultKind::kCancel).site, FaultSite::kSourceRun);
}

TEST(Survivor, Names) {
  EXPECT_STREQ(survivor_name(Survivor::kDestination), "destination");
  EXPECT_STREQ(survivor_name(Survivor::kSource), "source");
  EXPECT_STREQ(survivor_name(Survivor::kNone), "none");
}

}  // namespace
}  // namespace mdevmig::stress
