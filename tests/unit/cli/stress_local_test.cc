// The pure parts of `mdevmig stress --mode local`: the relay's stream faults at every
// position of a chunked stream, and the draws of its rounds.
#include "tools/cli/stress_local.h"
#include "tools/cli/stress_local_relay.h"

#include <map>
#include <vector>

#include <gtest/gtest.h>

namespace mdevmig::cli {
namespace {

using stress::FaultKind;

std::vector<std::byte> stream(std::size_t n) {
  std::vector<std::byte> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>(i * 7 + 1);
  return v;
}

// Feeds `data` through `f` in pieces of `piece` bytes; what the relay passes on.
struct Relayed {
  std::vector<std::byte> out;
  bool cut = false;
  int fires = 0;
  std::size_t fire_at = 0;  // bytes passed on when it fired
};
Relayed feed(StreamFault& f, std::vector<std::byte> data, std::size_t piece) {
  Relayed r;
  for (std::size_t at = 0; at < data.size() && !r.cut; at += piece) {
    std::span<std::byte> s(data.data() + at, std::min(piece, data.size() - at));
    const auto step = f.apply(s);
    r.out.insert(r.out.end(), s.begin(), s.begin() + static_cast<std::ptrdiff_t>(step.forward));
    if (step.fire) {
      ++r.fires;
      r.fire_at = at + s.size();
    }
    r.cut = step.cut;
  }
  return r;
}

TEST(StreamFault, CorruptFlipsExactlyTheByteAtTheOffsetInAnyPieces) {
  const auto in = stream(1000);
  for (std::size_t piece : {1u, 7u, 64u, 1000u}) {
    for (uint64_t off : {0u, 1u, 63u, 64u, 500u, 999u}) {
      StreamFault f(FaultKind::kCorrupt, off);
      const Relayed r = feed(f, in, piece);
      ASSERT_EQ(r.out.size(), in.size());
      EXPECT_FALSE(r.cut);
      EXPECT_EQ(r.fires, 0);
      EXPECT_TRUE(f.fired());
      for (std::size_t i = 0; i < in.size(); ++i)
        EXPECT_EQ(r.out[i] != in[i], i == off) << piece << " " << off << " " << i;
    }
  }
}

TEST(StreamFault, TruncateCutsAtTheOffset) {
  const auto in = stream(1000);
  for (std::size_t piece : {1u, 3u, 256u, 1000u}) {
    for (uint64_t off : {0u, 1u, 255u, 256u, 999u}) {
      StreamFault f(FaultKind::kTruncate, off);
      const Relayed r = feed(f, in, piece);
      EXPECT_TRUE(r.cut);
      ASSERT_EQ(r.out.size(), off) << piece;
      EXPECT_TRUE(std::equal(r.out.begin(), r.out.end(), in.begin()));
      EXPECT_EQ(f.position(), off);
    }
  }
}

TEST(StreamFault, OtherFaultsFireOnceWhenTheStreamPassesTheOffset) {
  const auto in = stream(1000);
  for (FaultKind k : {FaultKind::kCancel, FaultKind::kKillDst, FaultKind::kKillSrc}) {
    StreamFault f(k, 300);
    const Relayed r = feed(f, in, 128);
    EXPECT_EQ(r.out, in);
    EXPECT_EQ(r.fires, 1);
    EXPECT_EQ(r.fire_at, 384u);  // the piece holding byte 300
    EXPECT_FALSE(r.cut);
  }
}

TEST(StreamFault, NothingHappensBeforeTheOffsetOrWithoutAFault) {
  const auto in = stream(100);
  for (FaultKind k : {FaultKind::kCorrupt, FaultKind::kTruncate, FaultKind::kKillSrc}) {
    StreamFault f(k, 100);  // one past the end
    const Relayed r = feed(f, in, 10);
    EXPECT_EQ(r.out, in);
    EXPECT_FALSE(f.fired());
    EXPECT_EQ(r.fires, 0);
  }
  StreamFault none(FaultKind::kNone, 0);
  EXPECT_EQ(feed(none, in, 10).out, in);
  EXPECT_FALSE(none.fired());
}

TEST(RoundPlanner, DrawsWithinBoundsRoundRobinAndReproducibly) {
  LocalStressOptions o;
  o.fault_rate = 0.5;
  o.max_iterations = 4;
  o.downtime_ms = 300;
  o.seed = 7;
  stress::RoundPlanner p = local_planner(o), again = local_planner(o);
  std::map<FaultKind, int> count;
  std::vector<FaultKind> faulted;
  int to_cap = 0;
  for (int i = 0; i < 400; ++i) {
    const LocalRoundPlan r = plan_local_round(p, o);
    const LocalRoundPlan r2 = plan_local_round(again, o);
    EXPECT_EQ(r.fault, r2.fault);
    EXPECT_EQ(r.fault_point, r2.fault_point);
    EXPECT_GE(r.max_iterations, 1u);
    EXPECT_LE(r.max_iterations, 4u);
    EXPECT_LE(r.downtime_ms, 301u);
    EXPECT_GE(r.fault_point, 0.1);
    EXPECT_LT(r.fault_point, 0.7);
    to_cap += r.downtime_ms == 0;
    ++count[r.fault];
    if (r.fault != FaultKind::kNone) faulted.push_back(r.fault);
  }
  // Round robin: every fault within each window of five faulted rounds.
  for (std::size_t i = 0; i + 5 <= faulted.size(); i += 5) {
    std::map<FaultKind, int> w;
    for (std::size_t k = i; k < i + 5; ++k) ++w[faulted[k]];
    EXPECT_EQ(w.size(), 5u);
  }
  EXPECT_GT(count[FaultKind::kNone], 120);
  EXPECT_LT(count[FaultKind::kNone], 280);
  EXPECT_GT(to_cap, 40);
  // No faults to draw from: never a fault.
  o.faults.clear();
  stress::RoundPlanner quiet = local_planner(o);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(plan_local_round(quiet, o).fault, FaultKind::kNone);
}

}  // namespace
}  // namespace mdevmig::cli
