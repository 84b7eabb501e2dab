// Benchmark "multidev_measure" (issue 16, item 4; BENCHMARKS.md, "Several devices in one
// VM"): total time and downtime of a live migration of one QEMU VM with 1, 2 and 4
// mdevmig devices (8 MiB each, DMA work and BAR2 writes on every one), QEMU's own
// migrate; on QEMU >= 10.0 also with two multifd channels. Every run is verified device
// by device on the destination; the table says so. Label "measure": run by hand (see
// CMakeLists.txt).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>

#include "common/sysfs.h"
#include "tools/qemu/multidev.h"

namespace mdevmig::qemu {
namespace {

using namespace std::chrono_literals;

TEST(MultiDeviceMeasure, TotalTimeAndDowntimeByDeviceCount) {
  MDEVMIG_REQUIRE_LAB();
  auto version = qemu_version(VmSpec{}.qemu_binary);
  ASSERT_TRUE(version.ok()) << version.error().message();
  const char* env = std::getenv("MDEVMIG_MEASURE_RUNS");
  const int runs = env ? std::atoi(env) : 2;
  std::vector<uint32_t> multifd = {0};
  if (*version >= 1000) multifd.push_back(2);
  std::printf("QEMU %u.%u\n", *version / 100, *version % 100);
  std::printf("%-8s %-8s %-4s %-10s %-12s %-12s %-10s %s\n", "devices", "multifd", "run",
              "total_ms", "downtime_ms", "dirty_syncs", "round_ms", "verified");
  for (std::size_t devices : {1u, 2u, 4u}) {
    for (uint32_t channels : multifd) {
      for (int run = 1; run <= runs; ++run) {
        auto sets = make_instance_sets(2, devices, "eighth");
        ASSERT_TRUE(sets.ok()) << sets.error().message();
        MultiDeviceOptions opt;
        opt.seed = devices * 100 + channels * 10 + static_cast<uint64_t>(run);
        auto h = MultiDeviceHarness::create(opt, std::move(*sets));
        ASSERT_TRUE(h.ok()) << h.error().message();
        auto boot = (*h)->boot(0);
        ASSERT_TRUE(boot.ok()) << boot.error().message();
        ASSERT_TRUE((*h)->run_workload(300ms).ok());
        MigrationPlan plan;
        plan.min_passes = 2;
        plan.max_bandwidth = 32ull << 20;
        plan.multifd_channels = channels;
        auto r = (*h)->migrate(1, plan);
        ASSERT_TRUE(r.ok()) << r.error().message();
        EXPECT_TRUE(r->verified()) << r->to_json().dump(2);
        std::printf("%-8zu %-8u %-4d %-10.0f %-12.0f %-12lu %-10.0f %s\n", devices, channels, run,
                    r->migration.total_ms, r->migration.downtime_ms,
                    static_cast<unsigned long>(r->migration.ram_dirty_syncs), r->round_ms,
                    r->verified() ? "yes" : "NO");
        std::fflush(stdout);
      }
    }
  }
}

}  // namespace
}  // namespace mdevmig::qemu
