// Lab group "two_hosts_qemu": QEMU's own live migration ("tcp:") of a VM with an mdevmig
// device from one lab host to the other and back (tools/lab/pair.sh). Host a runs the
// harness (tools/qemu): it boots the VM on its instance and drives the qtest workload.
// Host b only starts a QEMU on its instance with "-incoming defer" and its QMP and qtest
// on TCP, which a's harness attaches to: the destination is verified through its own
// qtest session, the same way as on one host. Then the VM migrates back from b's QEMU to
// a fresh QEMU on a, verified again.
//
// Both QEMUs use the versioned machine type pc-q35-7.2, which every supported QEMU
// knows, so the same test covers the upgrade pair (a: bookworm, Linux 6.1 and QEMU 7.2
// with VFIO migration v1; b: trixie, 6.12 and QEMU 10.0 with v2 and PRE_COPY). QEMU's
// VFIO stream frames device data the same way in v1 and v2 and our device's state is
// the same on both front-ends, so the VM goes over and back again, verified both ways.
#include <stdlib.h>

#include <chrono>
#include <cstdio>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "common/pair.h"
#include "common/sysfs.h"
#include "tools/qemu/harness.h"

namespace mdevmig::qemu {
namespace {

using namespace std::chrono_literals;
using lab::PairHost;

constexpr const char* kMachine = "pc-q35-7.2";
// b's QEMU: QMP on this port, qtest on the next. The relays listen on a's address.
constexpr uint16_t kControlPort = 4400, kIncomingPort = 4402, kRelayThere = 4410, kRelayBack = 4411,
                   kIncomingBack = 4412;

void say(const std::string& s) { std::fprintf(stderr, "  [harness] %s\n", s.c_str()); }

class QemuTwoHosts : public testing::Test {
 protected:
  void SetUp() override {
    MDEVMIG_REQUIRE_LAB();
    if (!h_.valid())
      GTEST_FAIL() << "no pair environment (MDEVMIG_LAB_ROLE etc.): run under tools/lab/pair.sh";
  }
  void TearDown() override {
    if (HasFailure()) lab::put(h_, h_.role + ".failed", "1");
  }

  // Host b: a QEMU on its own instance, waiting for a's harness; it ends when a is done.
  void destination_host() {
    auto inst = mdev::MdevInstance::create("quarter");
    ASSERT_TRUE(inst.ok()) << inst.error().message();
    char tmpl[] = "/tmp/mdevmig-qemu-b.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    VmSpec spec;
    spec.machine = kMachine;
    spec.dir = tmpl;
    spec.bios = spec.dir + "/halt.bin";
    ASSERT_TRUE(write_halt_bios(spec.bios).ok());
    auto protocol = resolve_vfio_protocol(VfioProtocol::kAuto, spec.qemu_binary);
    ASSERT_TRUE(protocol.ok()) << protocol.error().message();
    spec.protocol = *protocol;
    auto version = qemu_version(spec.qemu_binary);
    ASSERT_TRUE(version.ok()) << version.error().message();
    // Started, not connected to: a's harness is its one QMP client.
    auto vm = QemuProcess::start(spec.config("b1", inst->uuid(), std::string("defer"),
                                             Endpoint::tcp(h_.addr, kControlPort)));
    ASSERT_TRUE(vm.ok()) << vm.error().message();
    lab::put(h_, "b-ready", inst->uuid() + " " + std::to_string(*version));
    auto done = lab::take(h_, "a-done", 1200s);
    // a quits this QEMU once the VM has left it (or kept it, in the upgrade pair).
    auto end = vm->wait(done ? 60s : 1s);
    if (end) {
      EXPECT_EQ(describe_wait_status(*end), "exited 0");
    } else {
      ADD_FAILURE() << "b's QEMU still runs after a is done";
      vm->kill();
    }
    if (HasFailure()) std::fprintf(stderr, "b's QEMU log:\n%s\n", vm->log_tail(4000).c_str());
  }

  // Host a: the harness.
  void source_host() {
    std::vector<mdev::MdevInstance> inst;
    for (int i = 0; i < 2; ++i) {
      auto m = mdev::MdevInstance::create("quarter");
      ASSERT_TRUE(m.ok()) << m.error().message();
      inst.push_back(std::move(*m));
    }
    HarnessOptions opt;
    opt.vm.machine = kMachine;
    opt.irq = IrqMode::kMsi;
    opt.seed = 7;
    opt.log = say;
    auto h = Harness::create(opt, std::move(inst));
    ASSERT_TRUE(h.ok()) << h.error().message();
    Harness& harness = **h;
    auto boot = harness.boot(0);
    ASSERT_TRUE(boot.ok()) << boot.error().message();
    ASSERT_TRUE(boot->ok()) << boot->summary();
    ASSERT_TRUE(harness.run_workload(300ms).ok());
    auto here = qemu_version(harness.options().vm.qemu_binary);
    ASSERT_TRUE(here.ok()) << here.error().message();

    auto ready = lab::take(h_, "b-ready", 600s);
    ASSERT_TRUE(ready);
    std::istringstream words(*ready);
    std::string uuid;
    uint32_t there = 0;
    words >> uuid >> there;
    ASSERT_GT(there, 0u) << "b-ready: " << *ready;
    say("b runs QEMU " + std::to_string(there / 100) + "." + std::to_string(there % 100) +
        ", a runs " + std::to_string(*here / 100) + "." + std::to_string(*here % 100));
    auto remote = Vm::attach("b1", uuid, Endpoint::tcp(h_.peer, kControlPort));
    ASSERT_TRUE(remote.ok()) << remote.error().message();

    // a -> b: QEMU's tcp: migration, through the relay on a (which counts the stream).
    MigrationPlan plan;
    plan.transport = Transport::kTcp;
    plan.tcp_relay = Endpoint::tcp(h_.addr, kRelayThere);
    plan.tcp_incoming = Endpoint::tcp(h_.peer, kIncomingPort);
    plan.min_passes = 2;
    plan.max_bandwidth = 24ull << 20;
    auto r = harness.migrate_to(std::move(*remote), plan);
    ASSERT_TRUE(r.ok()) << r.error().message();
    std::fprintf(stderr, "a -> b: %s\n", r->to_json().dump(2).c_str());
    EXPECT_EQ(r->migration.status, "completed") << r->migration.error;
    EXPECT_EQ(r->survivor, Survivor::kDestination);
    EXPECT_TRUE(r->verified()) << testing::PrintToString(r->problems);
    EXPECT_GT(r->migration.device_bytes, 0u) << "the source device's own count of what it sent";
    EXPECT_GE(r->migration.ram_dirty_syncs, 2u) << "pre-copy ran more than one pass";
    ASSERT_EQ(harness.current_instance(), Harness::kRemote);
    // The VM runs on b: more workload there, verified through b's qtest.
    ASSERT_TRUE(harness.run_workload(300ms).ok());
    auto v = harness.verify();
    ASSERT_TRUE(v.ok()) << v.error().message();
    EXPECT_TRUE(v->ok()) << v->summary();

    // b -> a: b's QEMU migrates to a fresh QEMU on a's other instance.
    MigrationPlan back = plan;
    back.tcp_relay = Endpoint::tcp(h_.addr, kRelayBack);
    back.tcp_incoming = Endpoint::tcp("127.0.0.1", kIncomingBack);
    auto r2 = harness.migrate(1, back);
    ASSERT_TRUE(r2.ok()) << r2.error().message();
    std::fprintf(stderr, "b -> a: %s\n", r2->to_json().dump(2).c_str());
    EXPECT_EQ(r2->migration.status, "completed") << r2->migration.error;
    EXPECT_EQ(r2->survivor, Survivor::kDestination);
    EXPECT_TRUE(r2->verified()) << testing::PrintToString(r2->problems);
    EXPECT_EQ(harness.current_instance(), 1u);
    ASSERT_TRUE(harness.run_workload(300ms).ok());
    auto v2 = harness.verify();
    ASSERT_TRUE(v2.ok()) << v2.error().message();
    EXPECT_TRUE(v2->ok()) << v2->summary();
    harness.shutdown();
    lab::put(h_, "a-done", "1");
  }

  PairHost h_ = lab::pair_host();
};

TEST_F(QemuTwoHosts, MigratesFromAToBAndBackOverTcp) {
  if (h_.role == "a")
    source_host();
  else
    destination_host();
}

}  // namespace
}  // namespace mdevmig::qemu
