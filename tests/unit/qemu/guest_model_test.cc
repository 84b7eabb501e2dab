// The harness's expected state on the host: ops replayed into the device model
// (tools/guest's Replay), and find_cut(): for a
// workload recorded against a fake qtest peer, replaying every prefix of its command
// stream into a fresh fake must make find_cut() name exactly the ops of that prefix.
#include "tools/qemu/guest.h"

#include <algorithm>
#include <cinttypes>
#include <cstring>

#include <gtest/gtest.h>

#include "tests/unit/qemu/fake_peer.h"
#include "tests/unit/qemu/fake_qtest.h"
#include "tools/guest/descriptors.h"
#include "tools/qemu/migration.h"
#include "tools/qemu/process.h"
#include "tools/qemu/stress.h"

namespace mdevmig::qemu {
namespace {

using namespace std::chrono_literals;
using testing::FakePeer;
using testing::FakeQtest;

constexpr uint64_t kMem = 1 << 20;

constexpr guest::Layout kGuest = layout::kGuest;

Op submit(uint64_t desc, mdevmig_dma_desc d) {
  Op op;
  op.kind = Op::Kind::kSubmit;
  op.desc = desc;
  d.cmpl = kGuest.cmpl(static_cast<uint32_t>(desc % layout::kRingEntries));
  op.d = d;
  return op;
}

mdevmig_dma_cmpl completion(const ExpectedState& s, uint64_t desc) {
  mdevmig_dma_cmpl c;
  std::memcpy(
      &c,
      s.device.guest(kGuest.cmpl(static_cast<uint32_t>(desc % layout::kRingEntries)), sizeof c)
          .data(),
      sizeof c);
  return c;
}

// The expected state is the device model's after the same accesses: what the ops put
// where (source buffers, descriptors, BAR2, scratch) reaches the model, and what the
// model did with them is vendor/'s business (tests/unit/vendor checks that).
TEST(ExpectedState, ReplaysOpsIntoTheModel) {
  ExpectedState s(kMem, 99);
  s.apply(submit(0, guest::copy_to_dev(kGuest.src(1), 8192, 1000)));
  std::vector<uint8_t> src(1000);
  source_buffer(99, 0, src);
  EXPECT_EQ(std::memcmp(s.device.mem().data() + 8192, src.data(), src.size()), 0);

  s.apply(submit(1, guest::copy_from_dev(8192, kGuest.dst(3), 1000)));
  EXPECT_EQ(std::memcmp(s.device.guest(kGuest.dst(3), 1000).data(), src.data(), src.size()), 0);
  auto d = guest::hash(0, kMem, kGuest.result(2));
  d.user_data = 0x1234;
  s.apply(submit(2, d));
  auto c = completion(s, 2);
  EXPECT_EQ(c.status, uint32_t{MDEVMIG_DMA_ST_OK});
  EXPECT_EQ(c.seq, 2u);
  EXPECT_EQ(c.user_data, 0x1234u);
  EXPECT_EQ(c.bytes_done, kMem);

  // Out of range: the model completes it with an error and counts it.
  auto before = std::vector<uint8_t>(s.device.mem().begin(), s.device.mem().end());
  s.apply(submit(3, guest::fill(kMem, 4096, 1)));
  EXPECT_TRUE(std::equal(before.begin(), before.end(), s.device.mem().begin()));
  EXPECT_EQ(completion(s, 3).status, uint32_t{MDEVMIG_DMA_ST_BAD_RANGE});
  EXPECT_EQ(s.descs, 4u);
  EXPECT_EQ(s.device.reg(MDEVMIG_REG_SEQ), 4u);
  EXPECT_EQ(s.device.reg(MDEVMIG_REG_ERR_DESC), 1u);
  // The ring holds what the guest wrote.
  mdevmig_dma_desc r;
  std::memcpy(&r, s.device.guest(kGuest.ring() + 3 * sizeof r, sizeof r).data(), sizeof r);
  EXPECT_EQ(r.dst, kMem);

  Op w;
  w.kind = Op::Kind::kBar2Write;
  w.offset = 512 * 1024;
  w.value = 0x5700000000000001ull;
  s.apply(w);
  uint64_t got;
  std::memcpy(&got, s.device.mem().data() + w.offset, 8);
  EXPECT_EQ(got, w.value);
  Op sc;
  sc.kind = Op::Kind::kScratch;
  sc.offset = 5;
  sc.value = 0x80000007;
  s.apply(sc);
  EXPECT_EQ(s.device.reg(MDEVMIG_REG_SCRATCH(5)), 0x80000007u);
  EXPECT_EQ(s.ops, 6u);
  EXPECT_EQ(s.bar2_writes, 1u);
}

TEST(FindCut, NamesExactlyTheOpsOfEveryPrefix) {
  // Record a workload against a fake device that never consumes descriptors (HEAD
  // stays 0, so at most kMaxOutstanding are submitted).
  WorkloadRates rates;
  rates.bar2_writes_per_s = 2000;
  rates.descs_per_s = 1000;
  rates.scratch_per_s = 500;
  GuestDriver driver(kMem, IrqMode::kMsi, 5, rates);
  FakeQtest source;
  {
    auto [ch, fd] = testing::make_pair(1u << 26);
    FakePeer peer(std::move(fd));
    peer.run([&](FakePeer& p) { source.serve(p); });
    QtestClient qt(std::move(ch));
    driver.start_clock();
    for (int i = 0; i < 60; ++i) {
      auto next = driver.step(qt);
      ASSERT_TRUE(next.ok()) << next.error().message();
      std::this_thread::sleep_for(1ms);
    }
  }
  const uint64_t ops = driver.pending();
  ASSERT_GT(ops, 20u);

  // For every prefix of the command stream: a fake holding just that prefix, whose
  // device has consumed every descriptor rung. The op count of a prefix: ops whose
  // last command is in it (a write op is one command; a submit ends with its doorbell).
  const std::vector<std::string>& log = source.log;
  char tail[64];
  std::snprintf(tail, sizeof tail, "writel 0x%" PRIx64 " ",
                uint64_t{layout::kBar0 + MDEVMIG_REG_RING_TAIL});
  auto is_doorbell = [&](const std::string& c) { return c.rfind(tail, 0) == 0; };
  uint64_t complete_ops = 0;
  std::vector<uint64_t> ops_after(log.size() + 1, 0);
  for (std::size_t i = 0; i < log.size(); ++i) {
    const std::string& c = log[i];
    if (c.rfind("writeq ", 0) == 0 || c.rfind("writel ", 0) == 0) {
      ++complete_ops;  // a BAR2 write, a scratch register, or a doorbell (ends a submit)
    } else if (c.rfind("read", 0) != 0 && c.rfind("write ", 0) != 0 &&
               c.rfind("b64write ", 0) != 0) {
      FAIL() << "unexpected command "
             << c;  // reads, descriptor and buffer writes are not ops of their own
    }
    ops_after[i + 1] = complete_ops;
  }
  ASSERT_EQ(complete_ops, ops);

  for (std::size_t prefix = 0; prefix <= log.size(); ++prefix) {
    FakeQtest dest;
    uint64_t rung = 0;
    for (std::size_t i = 0; i < prefix; ++i) {
      dest.answer(log[i]);
      rung += is_doorbell(log[i]);
    }
    // The device consumed what was rung: SEQ counts it (a fresh driver has no
    // bring-up FILL, so SEQ starts at 0 here).
    char seq[64];
    std::snprintf(seq, sizeof seq, "writel 0x%" PRIx64 " 0x%llx",
                  uint64_t{layout::kBar0 + MDEVMIG_REG_SEQ}, static_cast<unsigned long long>(rung));
    dest.answer(seq);
    auto [ch, fd] = testing::make_pair(1u << 26);
    FakePeer peer(std::move(fd));
    peer.run([&](FakePeer& p) { dest.serve(p); });
    QtestClient qt(std::move(ch));
    GuestDriver copy = driver;
    auto cut = copy.find_cut(qt);
    ASSERT_TRUE(cut.ok()) << cut.error().message();
    EXPECT_EQ(*cut, ops_after[prefix]) << "prefix of " << prefix << " commands";
  }
}

TEST(Parsing, NamesRoundTrip) {
  for (FaultKind f : {FaultKind::kNone, FaultKind::kCancel, FaultKind::kKillDst,
                      FaultKind::kKillSrc, FaultKind::kCorrupt, FaultKind::kTruncate})
    EXPECT_EQ(parse_fault(fault_name(f)).value_or(FaultKind::kNone), f);
  EXPECT_FALSE(parse_fault("explode").ok());
  EXPECT_EQ(parse_irq_mode("msi").value_or(IrqMode::kIntx), IrqMode::kMsi);
  EXPECT_FALSE(parse_irq_mode("msix").ok());
  EXPECT_EQ(parse_vfio_protocol("v2").value_or(VfioProtocol::kV1), VfioProtocol::kV2);
  EXPECT_FALSE(parse_vfio_protocol("v3").ok());
  EXPECT_EQ(parse_vfio_protocol("auto").value_or(VfioProtocol::kV1), VfioProtocol::kAuto);
}

TEST(VfioProtocol, FollowsTheQemuVersion) {
  EXPECT_EQ(vfio_protocol_for(702).value_or(VfioProtocol::kAuto), VfioProtocol::kV1);
  EXPECT_EQ(vfio_protocol_for(801).value_or(VfioProtocol::kAuto), VfioProtocol::kV2);
  EXPECT_EQ(vfio_protocol_for(1101).value_or(VfioProtocol::kAuto), VfioProtocol::kV2);
  auto eight = vfio_protocol_for(800);
  ASSERT_FALSE(eight.ok());
  EXPECT_EQ(eight.error().errnum, ENOTSUP);
  // The installed QEMU (setup installs it) reports its version; auto follows it.
  auto v = qemu_version("qemu-system-x86_64");
  ASSERT_TRUE(v.ok()) << v.error().message();
  EXPECT_GE(*v, 702u);
  EXPECT_EQ(resolve_vfio_protocol(VfioProtocol::kAuto, "qemu-system-x86_64")
                .value_or(VfioProtocol::kAuto),
            vfio_protocol_for(*v).value_or(VfioProtocol::kAuto));
  EXPECT_EQ(
      resolve_vfio_protocol(VfioProtocol::kV1, "/nonexistent/qemu").value_or(VfioProtocol::kAuto),
      VfioProtocol::kV1);
  EXPECT_FALSE(qemu_version("/nonexistent/qemu").ok());
  EXPECT_FALSE(qemu_version("true").ok()) << "no version text";
}

TEST(QemuConfig, ProtocolDecidesHowMigrationIsEnabled) {
  QemuConfig c;
  c.bios = "/b/halt.bin";
  c.mdev_uuid = "11111111-2222-4333-8444-555555555555";
  c.dir = "/w";
  c.name = "src";
  c.incoming = "defer";
  auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += x + " ";
    return s;
  };
  std::string v1 = join(c.argv());
  EXPECT_NE(
      v1.find(
          "-device "
          "vfio-pci,sysfsdev=/sys/bus/mdev/devices/11111111-2222-4333-8444-555555555555,addr=0x3,"
          "x-enable-migration=on "),
      std::string::npos)
      << v1;
  EXPECT_NE(v1.find("-qtest unix:/w/src.qtest,server=on,wait=off"), std::string::npos);
  EXPECT_NE(v1.find("-qmp unix:/w/src.qmp,server=on,wait=off"), std::string::npos);
  EXPECT_NE(v1.find("-incoming defer"), std::string::npos);
  EXPECT_NE(v1.find("-accel tcg -bios /b/halt.bin"), std::string::npos);
  c.protocol = VfioProtocol::kV2;
  std::string v2 = join(c.argv());
  EXPECT_NE(v2.find(",enable-migration=on "), std::string::npos);
  EXPECT_EQ(v2.find("x-enable-migration"), std::string::npos);
}

// qemu-migrate --no-device: the same VM, only without the vfio-pci device.
TEST(QemuConfig, WithoutAnInstanceTheCommandLineLosesOnlyTheDevice) {
  for (auto protocol : {VfioProtocol::kV1, VfioProtocol::kV2}) {
    for (auto incoming : {std::optional<std::string>(), std::optional<std::string>("defer")}) {
      QemuConfig with;
      with.bios = "/b/halt.bin";
      with.mem_mb = 512;
      with.mdev_uuid = "11111111-2222-4333-8444-555555555555";
      with.protocol = protocol;
      with.incoming = incoming;
      with.dir = "/w";
      with.name = "vm2";
      with.extra_args = {"-trace", "migration_*"};
      QemuConfig without = with;
      without.mdev_uuid.clear();
      const std::vector<std::string> a = with.argv(), b = without.argv();
      ASSERT_EQ(a.size(), b.size() + 2);
      std::vector<std::string> rest = a;
      const auto dev = std::find(rest.begin(), rest.end(), "-device");
      ASSERT_NE(dev, rest.end());
      ASSERT_EQ((dev + 1)->rfind("vfio-pci,", 0), 0u) << *(dev + 1);
      rest.erase(dev, dev + 2);
      EXPECT_EQ(rest, b) << "everything but the device must be the same";
      for (const auto& arg : b) EXPECT_EQ(arg.find("vfio"), std::string::npos) << arg;
    }
  }
}

TEST(Distribution, Percentiles) {
  auto d = Distribution::of({5, 1, 4, 2, 3, 10, 7, 6, 9, 8});
  EXPECT_EQ(d.count, 10u);
  EXPECT_EQ(d.min, 1);
  EXPECT_EQ(d.max, 10);
  EXPECT_DOUBLE_EQ(d.mean, 5.5);
  EXPECT_EQ(d.p50, 6);
  EXPECT_EQ(d.p90, 9);
  EXPECT_EQ(Distribution::of({}).count, 0u);
}

}  // namespace
}  // namespace mdevmig::qemu
