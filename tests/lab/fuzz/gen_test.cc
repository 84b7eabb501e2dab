// The fuzzer's generator and case files, on the host: a seed always gives the same
// sequence, and a sequence survives its text form unchanged (so regression cases and
// printed findings replay exactly).
#include <gtest/gtest.h>

#include "fuzz/fuzz.h"

namespace mdevmig::fuzz {
namespace {

TEST(FuzzGen, SameSeedSameSequence) {
  for (uint64_t seed : {0ULL, 1ULL, 0x46291144b90a6979ULL, ~0ULL}) {
    EXPECT_EQ(to_text(generate(seed, 3)), to_text(generate(seed, 3))) << seed;
  }
  EXPECT_NE(to_text(generate(1, 3)), to_text(generate(2, 3)));
}

TEST(FuzzGen, TextRoundTrip) {
  for (uint64_t seed = 0; seed < 200; ++seed) {
    const Sequence s = generate(mix64(seed), kMaxThreads);
    std::string err;
    auto back = parse(to_text(s), &err);
    ASSERT_TRUE(back.has_value()) << err;
    EXPECT_EQ(to_text(*back), to_text(s));
  }
}

TEST(FuzzGen, EveryKindIsGenerated) {
  std::vector<int> seen(static_cast<size_t>(Kind::kCount));
  std::vector<int> seen_global(static_cast<size_t>(GlobalKind::kCount));
  for (uint64_t seed = 0; seed < 500; ++seed) {
    for (const auto& ph : generate(seed, 3).phases) {
      for (const auto& ops : ph.threads)
        for (const auto& op : ops) ++seen[static_cast<size_t>(op.kind)];
      if (ph.after) ++seen_global[static_cast<size_t>(ph.after->kind)];
    }
  }
  for (size_t k = 0; k < seen.size(); ++k) EXPECT_GT(seen[k], 0) << kind_name(static_cast<Kind>(k));
  for (size_t k = 0; k < seen_global.size(); ++k)
    EXPECT_GT(seen_global[k], 0) << global_kind_name(static_cast<GlobalKind>(k));
}

TEST(FuzzGen, ParseRejectsBadCases) {
  std::string err;
  EXPECT_FALSE(parse("", &err));
  EXPECT_FALSE(parse("t0 reset 0 0 0 0 0 0\n", &err));  // before any phase
  EXPECT_NE(err.find("line 1"), std::string::npos);
  EXPECT_FALSE(parse("phase\nt0 no_such_op 0 0 0 0 0 0\n", &err));
  EXPECT_FALSE(parse("phase\nt0 reset 0 0\n", &err));
  EXPECT_FALSE(parse("phase\nt99 reset 0 0 0 0 0 0\n", &err));
  EXPECT_FALSE(parse("phase\ng no_such_global 0 0 0 0 0 0\n", &err));
  auto ok = parse(
      "# a comment\nseed 0x10\ntype eighth\nphase\nt1 reset 0 0 0 0 0 0 # trailing\ng reopen 1 2 3 "
      "4 5 6\n",
      &err);
  ASSERT_TRUE(ok.has_value()) << err;
  EXPECT_EQ(ok->seed, 0x10u);
  EXPECT_EQ(ok->type, "eighth");
  ASSERT_EQ(ok->phases.size(), 1u);
  EXPECT_EQ(ok->phases[0].threads.size(), 2u);
  EXPECT_TRUE(ok->phases[0].threads[0].empty());
  ASSERT_TRUE(ok->phases[0].after.has_value());
  EXPECT_EQ(ok->phases[0].after->a[5], 6u);
}

}  // namespace
}  // namespace mdevmig::fuzz
