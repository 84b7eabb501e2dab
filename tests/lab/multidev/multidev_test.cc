// Several mdevmig devices in one QEMU VM. QEMU >= 8.1 (VFIO migration v2) migrates a VM
// with more than one VFIO device only if every one of them supports the P2P states
// (VFIO_MIGRATION_P2P: it moves all devices to RUNNING_P2P / PRE_COPY_P2P before any is
// stopped); the module advertises them, so QEMU 10.0 must migrate the VM and every
// device must hold exactly what its guest driver issued. QEMU 7.2 (v1) has no such rule
// and migrates the VM too. Then, on QEMU >= 10.0, once more back with multifd.
#include <gtest/gtest.h>

#include <cstdio>

#include "common/sysfs.h"
#include "tools/qemu/multidev.h"
#include "tools/stress/leaks.h"

namespace mdevmig::qemu {
namespace {

using namespace std::chrono_literals;

constexpr std::size_t kDevices = 2;

class MultiDevice : public testing::Test {
 protected:
  void SetUp() override { MDEVMIG_REQUIRE_LAB(); }
};

void expect_verified(const MultiDeviceRound& r, std::size_t devices) {
  EXPECT_EQ(r.migration.status, "completed") << r.migration.error;
  EXPECT_EQ(r.survivor, Survivor::kDestination);
  EXPECT_TRUE(r.problems.empty()) << testing::PrintToString(r.problems);
  ASSERT_EQ(r.devices.size(), devices);
  for (std::size_t i = 0; i < devices; ++i) {
    EXPECT_TRUE(r.devices[i].ok()) << "device " << i << ": " << r.devices[i].summary();
    EXPECT_TRUE(r.devices[i].irq_delivered) << "device " << i;
    EXPECT_EQ(r.ops_landed[i], r.ops_pending[i]) << "device " << i;
    // Every device had DMA work going during pre-copy.
    EXPECT_GT(r.workload[i].descs, 0u) << "device " << i;
  }
}

TEST_F(MultiDevice, TwoDevicesMigrateLiveAndEachHoldsItsState) {
  stress::KmsgWatcher kmsg;
  auto version = qemu_version(VmSpec{}.qemu_binary);
  ASSERT_TRUE(version.ok()) << version.error().message();
  // 2 VMs x 2 devices of the "eighth" type (8 MiB of the default 64 MiB parent each),
  // plus a third set for the multifd round.
  auto sets = make_instance_sets(3, kDevices, "eighth");
  ASSERT_TRUE(sets.ok()) << sets.error().message();
  MultiDeviceOptions opt;
  opt.rates.bar2_writes_per_s = 100;
  opt.rates.descs_per_s = 20;
  opt.log = [](const std::string& s) { std::fprintf(stderr, "  [harness] %s\n", s.c_str()); };
  auto h = MultiDeviceHarness::create(opt, std::move(*sets));
  ASSERT_TRUE(h.ok()) << h.error().message();
  auto boot = (*h)->boot(0);
  ASSERT_TRUE(boot.ok()) << boot.error().message();
  for (const auto& v : *boot) ASSERT_TRUE(v.ok()) << v.summary();
  ASSERT_TRUE((*h)->run_workload(300ms).ok());

  MigrationPlan plan;
  plan.min_passes = 2;
  plan.max_bandwidth = 32ull << 20;
  auto r = (*h)->migrate(1, plan);
  ASSERT_TRUE(r.ok()) << r.error().message();
  std::fprintf(stderr, "%s\n", r->to_json().dump(2).c_str());
  expect_verified(*r, kDevices);
  EXPECT_EQ((*h)->current_set(), 1u);
  EXPECT_GE(r->migration.device_iterations, 1u) << "the first device iterated pre-copy";

  // The VM goes on with both devices.
  ASSERT_TRUE((*h)->run_workload(300ms).ok());
  auto again = (*h)->verify();
  ASSERT_TRUE(again.ok()) << again.error().message();
  for (const auto& v : *again) EXPECT_TRUE(v.ok()) << v.summary();

  if (*version >= 1000) {
    // Back with multifd: the devices' stop-copy data over the multifd channels.
    MigrationPlan mf = plan;
    mf.multifd_channels = 2;
    auto r2 = (*h)->migrate(2, mf);
    ASSERT_TRUE(r2.ok()) << r2.error().message();
    std::fprintf(stderr, "%s\n", r2->to_json().dump(2).c_str());
    expect_verified(*r2, kDevices);
    EXPECT_EQ(r2->migration.wire_connections, 3u) << "the main channel and two multifd channels";
  }
  (*h)->shutdown();
  for (const auto& line : kmsg.take()) std::fprintf(stderr, "  [kernel] %s\n", line.c_str());
}

}  // namespace
}  // namespace mdevmig::qemu
