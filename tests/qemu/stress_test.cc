// A bounded `mdevmig stress` run in QEMU mode: at least 20 rounds back and forth with
// every fault kind injected (cancel, killed destination, killed source, corrupted and
// truncated streams, live and through files), and not one round whose surviving VM was
// not verified exactly.
#include <gtest/gtest.h>

#include <cstdio>

#include "common/sysfs.h"
#include "tools/qemu/stress.h"

namespace mdevmig::qemu {
namespace {

TEST(QemuStress, TwentyFourRoundsWithFaultsAllVerified) {
  MDEVMIG_REQUIRE_LAB();
  std::vector<mdev::MdevInstance> inst;
  for (int i = 0; i < 2; ++i) {
    auto m = mdev::MdevInstance::create("eighth");
    ASSERT_TRUE(m.ok()) << m.error().message();
    inst.push_back(std::move(*m));
  }
  HarnessOptions opt;
  opt.seed = 20261121;
  opt.rates.bar2_writes_per_s = 120;
  opt.rates.descs_per_s = 25;
  opt.rates.pressure_fill_bytes = 1 << 20;
  opt.sample_pages = 8;
  opt.log = [](const std::string& s) { std::fprintf(stderr, "  [stress] %s\n", s.c_str()); };
  auto h = Harness::create(opt, std::move(inst));
  ASSERT_TRUE(h.ok()) << h.error().message();
  auto boot = (*h)->boot(0);
  ASSERT_TRUE(boot.ok()) << boot.error().message();
  ASSERT_TRUE(boot->ok()) << boot->summary();

  StressOptions so;
  so.rounds = 24;
  so.fault_rate = 0.6;
  so.file_rate = 0.25;
  so.seed = 7;
  auto report = run_stress(**h, so, opt.log);
  std::fprintf(stderr, "%s\n", report.summary().c_str());
  std::fprintf(stderr, "%s\n", report_json(report, so).dump().c_str());

  EXPECT_TRUE(report.aborted.empty()) << report.aborted;
  EXPECT_EQ(report.rounds.size(), so.rounds);
  EXPECT_EQ(report.unverified, 0u);
  EXPECT_GE(report.faults_injected, 10u);
  // Every fault kind fired at least once.
  for (FaultKind f : so.faults) {
    bool fired = false;
    for (const auto& r : report.rounds) fired |= r.fault == f && r.migration.fault_fired;
    EXPECT_TRUE(fired) << fault_name(f) << " never fired";
  }
  EXPECT_EQ(report.recoveries_verified, report.faults_injected);
}

}  // namespace
}  // namespace mdevmig::qemu
