// QEMU end to end, in the shape of QEMU's own migration-test: a parameter struct per
// case, an expected outcome, a workload that proves a second dirty pass happened, and
// an invariant checked on whichever side must hold the VM afterwards (GuestDriver's
// cut + verify: device memory, registers, DMA-written guest RAM, the queue's
// sequence numbers, interrupts).
#include <gtest/gtest.h>

#include <cstdio>
#include <functional>

#include "common/process.h"
#include "common/sysfs.h"
#include "tools/qemu/harness.h"
#include "tools/stress/leaks.h"

#ifndef MDEVMIG_BIN
#error "MDEVMIG_BIN (the mdevmig binary) must be defined"
#endif

namespace mdevmig::qemu {
namespace {

using namespace std::chrono_literals;

// Where the VM must be after the migration.
enum class Expect { kOnDestination, kSourceContinues };

struct Case {
  std::string name;
  std::string src_type = "quarter", dst_type = "quarter";
  IrqMode irq = IrqMode::kIntx;
  MigrationPlan plan;
  WorkloadRates rates;
  Expect expect = Expect::kOnDestination;
  std::string expect_status = "completed";
  uint32_t min_device_passes = 0;  // the device's own pre-copy iterations (sysfs)
  uint64_t min_dirty_syncs = 0;    // QEMU's RAM dirty syncs
  std::string expected_kernel;     // a kernel log line the case must produce
  bool migrate_again = false;      // then migrate once more, which must succeed
  std::string
      expect_refusal;  // the plan must be refused with this in the error, the source unharmed
  std::function<void(const MigrationOutcome&)> check;  // more invariants of the outcome
};

class QemuMigration : public testing::Test {
 protected:
  void SetUp() override { MDEVMIG_REQUIRE_LAB(); }

  void run(const Case& c) {
    stress::KmsgWatcher kmsg;
    std::vector<mdev::MdevInstance> inst;
    for (const auto& type : {c.src_type, c.dst_type, c.src_type}) {
      auto i = mdev::MdevInstance::create(type);
      ASSERT_TRUE(i.ok()) << i.error().message();
      inst.push_back(std::move(*i));
    }
    HarnessOptions opt;
    opt.irq = c.irq;
    opt.rates = c.rates;
    opt.seed = std::hash<std::string>()(c.name);
    opt.log = [](const std::string& s) { std::fprintf(stderr, "  [harness] %s\n", s.c_str()); };
    auto h = Harness::create(opt, std::move(inst));
    ASSERT_TRUE(h.ok()) << h.error().message();
    auto boot = (*h)->boot(0);
    ASSERT_TRUE(boot.ok()) << boot.error().message();
    ASSERT_TRUE(boot->ok()) << boot->summary();
    ASSERT_TRUE((*h)->run_workload(300ms).ok());

    auto r = (*h)->migrate(1, c.plan);
    if (!c.expect_refusal.empty()) {
      ASSERT_FALSE(r.ok()) << "the plan ran: " << r->to_json().dump(2);
      EXPECT_NE(r.error().message().find(c.expect_refusal), std::string::npos)
          << r.error().message();
      EXPECT_EQ((*h)->current_instance(), 0u);
      ASSERT_TRUE((*h)->run_workload(300ms).ok());
      auto v = (*h)->verify();
      ASSERT_TRUE(v.ok()) << v.error().message();
      EXPECT_TRUE(v->ok()) << v->summary();
      return;
    }
    ASSERT_TRUE(r.ok()) << r.error().message();
    std::fprintf(stderr, "%s\n", r->to_json().dump(2).c_str());
    EXPECT_TRUE(r->problems.empty()) << testing::PrintToString(r->problems);
    ASSERT_TRUE(r->verification.has_value());
    EXPECT_TRUE(r->verification->ok()) << r->verification->summary();
    EXPECT_TRUE(r->verification->irq_delivered);
    EXPECT_EQ(r->migration.status, c.expect_status) << r->migration.error;
    if (c.expect == Expect::kOnDestination) {
      EXPECT_EQ(r->survivor, Survivor::kDestination);
      EXPECT_EQ((*h)->current_instance(), 1u);
    } else {
      EXPECT_EQ(r->survivor, Survivor::kSource);
      EXPECT_EQ((*h)->current_instance(), 0u);
      EXPECT_EQ(r->ops_landed, r->ops_pending) << "the source must hold every op issued on it";
      EXPECT_NE(r->dst_end.find("exited"), std::string::npos) << "destination: " << r->dst_end;
    }
    EXPECT_GE(r->migration.device_iterations, c.min_device_passes);
    EXPECT_GE(r->migration.ram_dirty_syncs, c.min_dirty_syncs);
    if (c.check) c.check(r->migration);
    if (!c.expected_kernel.empty()) {
      bool seen = false;
      for (const auto& line : kmsg.take())
        seen |= line.find(c.expected_kernel) != std::string::npos;
      EXPECT_TRUE(seen) << "no kernel line with '" << c.expected_kernel << "'";
    }
    // The VM goes on where it is: more workload, verified again.
    ASSERT_TRUE((*h)->run_workload(300ms).ok());
    auto again = (*h)->verify();
    ASSERT_TRUE(again.ok()) << again.error().message();
    EXPECT_TRUE(again->ok()) << again->summary();
    if (c.migrate_again) {
      MigrationPlan plan;
      plan.min_passes = 1;
      auto r2 = (*h)->migrate(2, plan);
      ASSERT_TRUE(r2.ok()) << r2.error().message();
      EXPECT_EQ(r2->migration.status, "completed");
      EXPECT_TRUE(r2->verified()) << r2->to_json().dump(2);
    }
  }
};

TEST_F(QemuMigration, LiveWithBusyDeviceIteratesPreCopy) {
  Case c;
  c.name = "live";
  c.plan.min_passes = 3;
  c.plan.max_bandwidth = 24ull << 20;
  c.rates.bar2_writes_per_s = 150;
  c.rates.descs_per_s = 30;
  c.min_device_passes = 2;
  c.min_dirty_syncs = 2;
  run(c);
}

TEST_F(QemuMigration, SaveToFileAndRestoreIntoAFreshInstance) {
  Case c;
  c.name = "file";
  c.irq = IrqMode::kMsi;
  c.plan.transport = Transport::kFile;
  c.plan.min_passes = 2;
  c.plan.max_bandwidth = 24ull << 20;
  c.min_device_passes = 1;
  run(c);
}

TEST_F(QemuMigration, IncompatibleDestinationIsRefusedAndTheSourceRuns) {
  Case c;
  c.name = "incompatible";
  c.dst_type = "half";  // twice the device memory: the COMPAT record must not match
  c.expect = Expect::kSourceContinues;
  c.expect_status = "failed";
  c.expected_kernel = "resume rejected";
  c.migrate_again = true;
  run(c);
}

// QEMU >= 10.0: with multifd the device's stop-copy data goes over the multifd channels
// (vfio-pci's x-migration-multifd-transfer is "auto"), its pre-copy data over the main
// channel. QEMU 7.2 (VFIO migration v1) has no multifd device state: the plan is refused
// before anything starts and the source goes on.
TEST_F(QemuMigration, MultifdCarriesTheDeviceStopCopyData) {
  auto version = qemu_version(VmSpec{}.qemu_binary);
  ASSERT_TRUE(version.ok()) << version.error().message();
  Case c;
  c.name = "multifd";
  c.plan.multifd_channels = 2;
  c.plan.min_passes = 2;
  c.plan.max_bandwidth = 24ull << 20;
  if (*version < 1000) {
    c.expect_refusal = "multifd device-state transfer needs QEMU >= 10.0";
    run(c);
    return;
  }
  c.min_device_passes = 1;
  c.check = [](const MigrationOutcome& m) {
    EXPECT_EQ(m.wire_connections, 3u) << "the main channel and two multifd channels";
    EXPECT_GT(m.device_main_bytes, 0u) << "pre-copy data goes over the main channel";
    // Without multifd the main channel carries every byte the device sent.
    EXPECT_LT(m.device_main_bytes, m.device_bytes) << "none of the device's data went over multifd";
    EXPECT_GT(m.device_downtime_bytes, 0u) << "the device's final state";
  };
  run(c);
}

TEST_F(QemuMigration, CancelMidPreCopyLeavesTheSourceUnharmed) {
  Case c;
  c.name = "cancel";
  c.plan.fault = FaultKind::kCancel;
  c.plan.fault_point = 0.4;
  c.plan.max_bandwidth = 16ull << 20;
  // Without the return path: QEMU 10.0's migrate_cancel shuts the return path down before
  // it enters "cancelling", and the return-path thread's error can then end the migration
  // as "failed" instead of "cancelled" (later QEMUs shut it down after). The source must
  // continue either way; this case checks the cancel itself.
  c.plan.return_path = false;
  c.expect = Expect::kSourceContinues;
  c.expect_status = "cancelled";
  c.migrate_again = true;
  run(c);
}

// `mdevmig qemu-migrate --no-device`: the same VM without the device, migrated by the CLI
// as the device-cost bench does it; what is checked without a device is checked (the
// destination runs, the filled RAM arrived) and QEMU's figures are in the report.
TEST_F(QemuMigration, NoDeviceMigratesTheSameVmWithItsFilledRam) {
  const auto r =
      lab::run(MDEVMIG_BIN, {"qemu-migrate", "--no-device", "--guest-fill", "24", "--bandwidth",
                             "1G", "--downtime", "300", "--passes", "0", "--json"});
  std::fprintf(stderr, "%s\n%s\n", r.out.c_str(), r.err.c_str());
  ASSERT_EQ(r.rc, 0) << r.err;
  const nlohmann::json j = r.json();
  ASSERT_TRUE(j.is_object()) << r.out;
  EXPECT_EQ(j["command"], "qemu-migrate");
  EXPECT_EQ(j["ok"], true);
  EXPECT_TRUE(j["device"].is_null());
  EXPECT_EQ(j["guest"]["fill_mb"], 24);
  const auto& m = j["migration"];
  EXPECT_EQ(m["status"], "completed");
  EXPECT_EQ(j["survivor"], "destination");
  EXPECT_GT(m["total_ms"].get<double>(), 0);
  EXPECT_GT(m["ram"]["dirty_syncs"].get<uint64_t>(), 0u);
  // The filled pages went as normal pages, and the stream is RAM plus a little framing.
  EXPECT_GE(m["ram"]["normal_pages"].get<uint64_t>(), 24u * 256);
  const uint64_t ram = m["ram"]["transferred"], wire = m["wire"]["bytes"];
  EXPECT_GE(ram, 24ull << 20);
  EXPECT_GE(wire, ram);
  EXPECT_LT(wire - ram, 1ull << 20) << "no device: nothing but RAM in the stream";
  EXPECT_EQ(m["device"]["bytes"], 0);
  EXPECT_EQ(j["verification"]["ok"], true);
  EXPECT_EQ(j["verification"]["pages_sampled"], 16);
}

}  // namespace
}  // namespace mdevmig::qemu
