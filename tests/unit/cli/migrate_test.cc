// Parts of `mdevmig migrate` on their own: the progress line of a pre-copy iteration.
#include <gtest/gtest.h>

#include "tools/cli/migrate.h"

namespace mdevmig::cli {
namespace {

TEST(MigrateProgress, NoDowntimeEstimateIsShownAsNone) {
  engine::IterationStats s;
  s.iteration = 1;
  s.verdict = "pre-copy disabled";
  ASSERT_LT(s.est_downtime_s, 0) << "no estimate yet";
  const std::string line = iteration_line(s);
  EXPECT_EQ(line.find("-1000"), std::string::npos) << line;
  EXPECT_NE(line.find("no downtime estimate yet"), std::string::npos) << line;
  s.est_downtime_s = 0.0125;
  EXPECT_NE(iteration_line(s).find("est. downtime 12.5 ms"), std::string::npos)
      << iteration_line(s);
}

}  // namespace
}  // namespace mdevmig::cli
