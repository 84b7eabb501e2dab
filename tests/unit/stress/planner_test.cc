// The round planner: reproducible, round robin over the faults, the fault rate kept,
// faults that do not apply skipped.
#include "tools/stress/planner.h"

#include <map>
#include <vector>

#include <gtest/gtest.h>

namespace mdevmig::stress {
namespace {

TEST(RoundPlanner, SameSeedSameDraws) {
  RoundPlanner a(7, default_faults(), 0.5), b(7, default_faults(), 0.5),
      c(8, default_faults(), 0.5);
  bool differs = false;
  for (int i = 0; i < 200; ++i) {
    const double x = a.uniform(0, 1);
    EXPECT_EQ(x, b.uniform(0, 1));
    differs |= x != c.uniform(0, 1);
    const FaultKind f = a.draw_fault();
    EXPECT_EQ(f, b.draw_fault());
    (void)c.draw_fault();
  }
  EXPECT_TRUE(differs);
}

TEST(RoundPlanner, EveryFaultInEachWindowAtTheRate) {
  RoundPlanner p(3, default_faults(), 0.5);
  std::vector<FaultKind> faulted;
  int none = 0;
  for (int i = 0; i < 400; ++i) {
    const FaultKind f = p.draw_fault();
    if (f == FaultKind::kNone)
      ++none;
    else
      faulted.push_back(f);
  }
  for (std::size_t i = 0; i + 5 <= faulted.size(); i += 5) {
    std::map<FaultKind, int> w;
    for (std::size_t k = i; k < i + 5; ++k) ++w[faulted[k]];
    EXPECT_EQ(w.size(), 5u) << "window at " << i;
  }
  EXPECT_GT(none, 120);
  EXPECT_LT(none, 280);
}

TEST(RoundPlanner, RatesZeroAndOneAndNoFaults) {
  RoundPlanner never(1, default_faults(), 0), always(1, default_faults(), 1), empty(1, {}, 1);
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(never.draw_fault(), FaultKind::kNone);
    EXPECT_NE(always.draw_fault(), FaultKind::kNone);
    EXPECT_EQ(empty.draw_fault(), FaultKind::kNone);
  }
}

TEST(RoundPlanner, SkipsFaultsThatDoNotApply) {
  RoundPlanner p(5, default_faults(), 1);
  const auto file_ok = [](FaultKind f) { return fault_spec(f).applies_to_file; };
  std::map<FaultKind, int> seen;
  for (int i = 0; i < 100; ++i) ++seen[p.draw_fault(file_ok)];
  EXPECT_EQ(seen.count(FaultKind::kKillDst), 0u);
  EXPECT_EQ(seen.count(FaultKind::kNone), 0u);
  EXPECT_EQ(seen.size(), 4u);
  RoundPlanner only(5, {FaultKind::kKillDst}, 1);
  EXPECT_EQ(only.draw_fault(file_ok), FaultKind::kNone);
}

TEST(RoundPlanner, BoundedDraws) {
  RoundPlanner p(9, {}, 0);
  for (int i = 0; i < 1000; ++i) {
    EXPECT_LT(p.below(7), 7u);
    const double x = p.uniform(0.1, 0.7);
    EXPECT_GE(x, 0.1);
    EXPECT_LT(x, 0.7);
  }
}

}  // namespace
}  // namespace mdevmig::stress
