// The run report: a round's verdict, the counts a run adds up, the survivor check.
#include "tools/stress/report.h"

#include <gtest/gtest.h>

namespace mdevmig::stress {
namespace {

RoundReport round_with(FaultKind f, bool fired, Survivor s, bool verified) {
  RoundReport r;
  r.fault = f;
  r.migration.fault = f;
  r.migration.fault_fired = fired;
  r.survivor = s;
  r.verification = Verification{};
  if (!verified) r.verification->mismatches.emplace_back("SEQ = 0x1, want 0x2");
  return r;
}

TEST(StressReport, AddCountsFaultsRecoveriesAndUnverifiedRounds) {
  StressReport rep;
  rep.add(round_with(FaultKind::kNone, false, Survivor::kDestination, true));
  rep.add(round_with(FaultKind::kCancel, true, Survivor::kSource, true));
  rep.add(round_with(FaultKind::kKillDst, true, Survivor::kSource, false));
  rep.add(round_with(FaultKind::kCorrupt, false, Survivor::kDestination, true));
  EXPECT_EQ(rep.rounds.size(), 4u);
  EXPECT_EQ(rep.faults_injected, 2u);
  EXPECT_EQ(rep.recoveries_verified, 1u);
  EXPECT_EQ(rep.unverified, 1u);
  const auto j = rep.to_json("local", {{"seed", 1}});
  EXPECT_EQ(j["mode"], "local");
  EXPECT_EQ(j["options"]["seed"], 1);
  EXPECT_EQ(j["by_fault"]["cancel"]["fired"], 1);
  EXPECT_EQ(j["by_fault"]["corrupt"]["fired"], 0);
  EXPECT_EQ(j["round_reports"].size(), 4u);
}

TEST(StressReport, SurvivorProblemFollowsTheTable) {
  EXPECT_EQ(survivor_problem(round_with(FaultKind::kKillDst, true, Survivor::kSource, true), false),
            "");
  EXPECT_EQ(
      survivor_problem(round_with(FaultKind::kKillDst, true, Survivor::kDestination, true), true),
      "fault kill-dst left the VM on the destination, expected the source");
  EXPECT_EQ(
      survivor_problem(round_with(FaultKind::kCancel, true, Survivor::kDestination, true), false),
      "");
  EXPECT_NE(
      survivor_problem(round_with(FaultKind::kCorrupt, true, Survivor::kDestination, true), false),
      "");
  EXPECT_EQ(
      survivor_problem(round_with(FaultKind::kCorrupt, true, Survivor::kDestination, true), true),
      "");
  // A fault that did not fire says nothing here.
  EXPECT_EQ(
      survivor_problem(round_with(FaultKind::kKillSrc, false, Survivor::kDestination, true), false),
      "");
}

TEST(RoundReport, VerifiedNeedsAVerificationAndNoProblems) {
  RoundReport r = round_with(FaultKind::kNone, false, Survivor::kDestination, true);
  EXPECT_TRUE(r.verified());
  r.problems.emplace_back("leak");
  EXPECT_FALSE(r.verified());
  RoundReport none;
  EXPECT_FALSE(none.verified());
}

}  // namespace
}  // namespace mdevmig::stress
