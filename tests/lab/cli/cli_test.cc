// Lab group "cli": the real `mdevmig` binary against real instances. The test process
// opens the instances (open_mdev) and passes their device fds down as fd:N, so it can
// look at device memory and registers before and after (a closed instance forgets its
// state); `migrate --from UUID --to UUID` opens them itself and verifies with --verify.
//   save -> inspect -> restore: identical memory (XXH3) and registers, through v2 and v1
//   corrupt, truncated, wrong-version and wrong-device files: exit 4, device untouched
//   migrate on one host with a live workload: several pre-copy iterations (v1 region on
//   6.1), with and without DMA traffic and guest memory
//   migrate between two processes over loopback TCP
//   the destination killed mid-migration: the source is RUNNING again, nothing lost
//   hold: restore then save by UUID inside one hold saves the restored state (without
//   hold, the save sees a reset device); a device left stopped is run again; exit
//   status and signals pass through; another instance's fds are not adopted
//   migrate over TLS (kernel TLS, module `tls`): a verified migration; 64 MiB across a
//   kernel TLS socket pair intact; a source from another CA, a plaintext source and a
//   TLS source to a plaintext listener all fail with the source RUNNING
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/mdevmig.h>
#include <linux/tls.h>
#include <linux/vfio.h>
#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/device_state.h"
#include "common/instance.h"
#include "common/open_instance.h"
#include "common/process.h"
#include "common/sysfs.h"
#include "migration/io/net.h"
#include "migration/io/tls.h"
#include "migration/io/uring.h"
#include "migration/vfio/mdev.h"
#include "migration/vfio/mig_state.h"
#include "tests/unit/report/xml_check.h"

#ifndef MDEVMIG_BIN
#error "MDEVMIG_BIN (the mdevmig binary) must be defined"
#endif
#ifndef MDEVMIG_MAKE_TLS_CERTS
#error "MDEVMIG_MAKE_TLS_CERTS (tests/unit/migration/make_tls_certs.sh) must be defined"
#endif

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

namespace mdevmig::lab {
namespace {

using namespace std::chrono_literals;
using vfio::MigState;

constexpr uint64_t kQuarter = 16u << 20;  // a quarter of the default 64 MiB sim parent

// ---- running the CLI ------------------------------------------------------------------------

using CliRun = Exit;

Proc spawn(const std::vector<std::string>& args, const std::vector<int>& keep_fds = {}) {
  return lab::spawn(MDEVMIG_BIN, args, keep_fds);
}

CliRun cli(const std::vector<std::string>& args, const std::vector<int>& keep_fds = {}) {
  Proc p = spawn(args, keep_fds);
  CliRun r = wait(p);
  if (r.rc != 0)
    std::fprintf(stderr, "[mdevmig %s ...] rc=%d: %s", args[0].c_str(), r.rc, r.err.c_str());
  return r;
}

// ---- instances --------------------------------------------------------------------------------

using Side = OpenInstance;
Side open_side(const std::string& type, const std::string& parent = "mdevmig_sim0") {
  return open_instance(type, parent);
}
std::string fd_arg(const Side& s) { return "fd:" + std::to_string(s.dev().fd()); }

std::string tmp_file(const std::string& name) { return "/tmp/mdevmig-cli-" + name; }

class CliTest : public testing::Test {
 protected:
  void SetUp() override {
    MDEVMIG_REQUIRE_LAB();
    loopback_up();
  }
};

// ---- save, inspect, restore ---------------------------------------------------------------

TEST_F(CliTest, SaveInspectRestoreGiveIdenticalMemoryAndRegistersThroughV2AndV1) {
  Side a = open_side("quarter"), b = open_side("quarter"), c = open_side("quarter");
  ASSERT_TRUE(a.m && b.m && c.m);
  scribble(a.dev(), kQuarter, 7);
  const uint64_t before = mem_hash(a.dev(), kQuarter);
  const std::string file = tmp_file("save.mdevmig");

  CliRun s = cli({"save", fd_arg(a), file, "--json"}, {a.dev().fd()});
  ASSERT_EQ(s.rc, 0) << s.err;
  // Without a terminal, progress is at most a plain line every few seconds: no bar
  // redrawn in place.
  EXPECT_EQ(s.err.find_first_of("\r\033"), std::string::npos)
      << "terminal progress without a terminal: " << s.err;
  EXPECT_TRUE(s.err.empty() || s.err.rfind("save ", 0) == 0) << s.err;
  auto sj = s.json();
  EXPECT_EQ(sj["channel"], "v2-stop-copy");
  EXPECT_GT(sj["stream_bytes"].get<uint64_t>(), kQuarter);
  EXPECT_EQ(state(a.dev()), MigState::kRunning) << "the source runs again after save";
  EXPECT_EQ(mem_hash(a.dev(), kQuarter), before) << "save changed the device";

  CliRun i = cli({"inspect", file, "--json"});
  ASSERT_EQ(i.rc, 0) << i.err;
  auto ij = i.json();
  EXPECT_EQ(ij["device"]["uuid"], "");  // passed as an fd
  EXPECT_EQ(ij["device"]["compat"]["mem_size"].get<uint64_t>(), kQuarter);
  EXPECT_TRUE(ij["checksums_verified"].get<bool>());
  auto ds = ij["device_stream"];
  EXPECT_TRUE(ds["complete"].get<bool>());
  EXPECT_EQ(ds["problem"], "");
  EXPECT_EQ(ds["unique_pages"].get<uint64_t>(), kQuarter / MDEVMIG_PAGE_SIZE);
  EXPECT_EQ(ds["registers"]["scratch3"].get<uint32_t>(), 7003u);
  EXPECT_EQ(ds["registers"]["int_mask"].get<uint32_t>(), 6u);
  CliRun it = cli({"inspect", file});
  ASSERT_EQ(it.rc, 0);
  EXPECT_NE(it.out.find("checksums:"), std::string::npos) << it.out;
  EXPECT_NE(it.out.find("REGS"), std::string::npos) << it.out;

  CliRun r = cli({"restore", fd_arg(b), file}, {b.dev().fd()});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(state(b.dev()), MigState::kRunning);
  expect_same_state(a.dev(), b.dev(), kQuarter);

  // The v1 region both ways: save through it, restore through it.
  const std::string file1 = tmp_file("save-v1.mdevmig");
  CliRun s1 = cli({"save", fd_arg(a), file1, "--channel", "v1", "--json"}, {a.dev().fd()});
  ASSERT_EQ(s1.rc, 0) << s1.err;
  EXPECT_EQ(s1.json()["channel"], "v1-region");
  CliRun r1 = cli({"restore", fd_arg(c), file1, "--channel", "v1"}, {c.dev().fd()});
  ASSERT_EQ(r1.rc, 0) << r1.err;
  expect_same_state(a.dev(), c.dev(), kQuarter);
  EXPECT_EQ(state(c.dev()), MigState::kRunning);
  ::unlink(file.c_str());
  ::unlink(file1.c_str());
}

TEST_F(CliTest, DamagedOrForeignFilesExitWith4AndLeaveTheDeviceUntouched) {
  Side a = open_side("quarter"), b = open_side("quarter"), e = open_side("eighth");
  ASSERT_TRUE(a.m && b.m && e.m);
  scribble(a.dev(), kQuarter, 3);
  scribble(b.dev(), kQuarter, 4);
  scribble(e.dev(), 8u << 20, 5);
  const std::string good = tmp_file("good.mdevmig"), other = tmp_file("eighth.mdevmig");
  ASSERT_EQ(cli({"save", fd_arg(a), good}, {a.dev().fd()}).rc, 0);
  ASSERT_EQ(cli({"save", fd_arg(e), other}, {e.dev().fd()}).rc, 0);
  std::ifstream in(good, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(bytes.size(), kQuarter);

  struct Case {
    const char* what;
    std::string content;
  };
  std::vector<Case> cases;
  cases.push_back({"truncated in the middle", bytes.substr(0, bytes.size() / 2)});
  cases.push_back({"truncated by one byte", bytes.substr(0, bytes.size() - 1)});
  cases.push_back({"truncated inside the header", bytes.substr(0, 100)});
  std::string flip = bytes;
  flip[bytes.size() * 2 / 3] ^= 0x01;
  cases.push_back({"one bit flipped", flip});
  std::string late = bytes;
  late[bytes.size() - 100] ^= 0x80;
  cases.push_back({"a bit flipped in the trailer", late});
  std::string version = bytes;
  version[8] = 9;
  cases.push_back({"another format version", version});
  cases.push_back({"empty", ""});

  const uint64_t b_hash = mem_hash(b.dev(), kQuarter);
  const uint32_t b_scratch = reg(b.dev(), MDEVMIG_REG_SCRATCH(0));
  const std::string bad = tmp_file("bad.mdevmig");
  auto check_untouched = [&](const char* what) {
    EXPECT_EQ(state(b.dev()), MigState::kRunning) << what;
    EXPECT_EQ(mem_hash(b.dev(), kQuarter), b_hash) << what << ": device memory changed";
    EXPECT_EQ(reg(b.dev(), MDEVMIG_REG_SCRATCH(0)), b_scratch) << what << ": registers changed";
  };
  for (const Case& c : cases) {
    std::ofstream(bad, std::ios::binary | std::ios::trunc) << c.content;
    CliRun r = cli({"restore", fd_arg(b), bad}, {b.dev().fd()});
    EXPECT_EQ(r.rc, 4) << c.what << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line: " << r.err;
    EXPECT_NE(r.err.find("mdevmig restore: "), std::string::npos) << r.err;
    check_untouched(c.what);
    CliRun i = cli({"inspect", bad});
    EXPECT_EQ(i.rc, 4) << c.what << ": " << i.err;
  }
  // A whole, valid file of another instance type: refused as incompatible.
  CliRun w = cli({"restore", fd_arg(b), other}, {b.dev().fd()});
  EXPECT_EQ(w.rc, 4) << w.err;
  EXPECT_NE(w.err.find("compatib"), std::string::npos) << w.err;
  check_untouched("wrong device");
  // Usage and device errors have their own codes.
  EXPECT_EQ(cli({"restore", "not-a-device", good}).rc, 2);
  EXPECT_EQ(cli({"restore", "00000000-0000-0000-0000-000000000000", good}).rc, 3);
  EXPECT_EQ(cli({"restore", fd_arg(b), tmp_file("missing")}, {b.dev().fd()}).rc, 3);
  // And the good file still restores.
  ASSERT_EQ(cli({"restore", fd_arg(b), good}, {b.dev().fd()}).rc, 0);
  expect_same_state(a.dev(), b.dev(), kQuarter);
  for (const auto& f : {good, other, bad}) ::unlink(f.c_str());
}

// ---- migrate ---------------------------------------------------------------------------------

TEST_F(CliTest, MigrateOnOneHostWithABar2WorkloadIteratesAndVerifies) {
  Instance a("mdevmig_sim0", "quarter"), b("mdevmig_sim0", "quarter");
  ASSERT_TRUE(a.ok() && b.ok());
  const std::string picture = "/tmp/lab-cli-migrate.svg";
  CliRun r = cli({"migrate", "--from", a.uuid(), "--to", b.uuid(), "--workload", "bar2",
                  "--dirty-rate", "5", "--downtime", "0", "--max-iterations", "6", "--verify",
                  "--json", "--report", picture});
  ASSERT_EQ(r.rc, 0) << r.err;
  auto j = r.json();
  ASSERT_FALSE(j.is_discarded()) << r.out;
  // v2 PRE_COPY exists from Linux 6.2; before it the module offers pre-copy through the v1 region.
  EXPECT_EQ(j["channel"], kernel_release() >= 602 ? "v2-pre-copy" : "v1-region");
  EXPECT_EQ(j["iterations"].get<int>(), 6);
  EXPECT_GT(j["workload"]["bar2_pages_written"].get<uint64_t>(), 0u);
  EXPECT_GE(j["bytes"]["precopy_device"].get<uint64_t>(), kQuarter);
  EXPECT_GT(j["bytes"]["stopcopy_device"].get<uint64_t>(), 0u);
  EXPECT_LT(j["bytes"]["stopcopy_device"].get<uint64_t>(), kQuarter / 2)
      << "stop-copy resent most of memory";
  EXPECT_EQ(j["verify"].get<std::string>().substr(0, 2), "ok") << j["verify"];
  EXPECT_GT(j["downtime_s"].get<double>(), 0.0);

  // --report: the picture of the same run, well-formed, a bar per pass in every pass
  // panel, the measured downtime, and no target line (--downtime 0: none).
  std::ifstream in(picture);
  ASSERT_TRUE(in) << "no picture at " << picture;
  std::stringstream text;
  text << in.rdbuf();
  const auto doc = mdevmig::report::testing::parse_xml(text.str());
  ASSERT_TRUE(doc.ok()) << doc.error;
  for (const char* panel : {"bytes", "dirty", "duration"})
    EXPECT_EQ(doc.count("g", "pass", "data-panel", panel), 6u) << panel;
  EXPECT_EQ(doc.count("rect", "measured-downtime"), 1u);
  EXPECT_EQ(doc.count("line", "target"), 0u);
  ::unlink(picture.c_str());
}

// A target the rest of the first pass fits in as soon as a rate is measured: the source
// switches over within that pass, the device (still RUNNING in pre-copy, its workload
// writing) goes to STOP_COPY with most of its memory unsent, and the stop-copy carries it
// (verified); with guest memory, all of it too, which no pass sent (the DMA workload's
// in-flight work makes --verify skip, so the bytes say it).
TEST_F(CliTest, MigrateSwitchesOverWithinTheFirstPassAndVerifies) {
  for (const bool dma : {false, true}) {
    SCOPED_TRACE(dma ? "bar2,dma with 4 MiB of guest memory" : "bar2");
    Instance a("mdevmig_sim0", "quarter"), b("mdevmig_sim0", "quarter");
    ASSERT_TRUE(a.ok() && b.ok());
    std::vector<std::string> args = {"migrate",      "--from", a.uuid(),   "--to",
                                     b.uuid(),       "--dirty-rate", "10", "--downtime",
                                     "60000",        "--verify",     "--json"};
    for (const char* arg : {"--workload", dma ? "bar2,dma" : "bar2"}) args.push_back(arg);
    if (dma) args.insert(args.end(), {"--guest-mem", "4M"});
    CliRun r = cli(args);
    ASSERT_EQ(r.rc, 0) << r.err;
    auto j = r.json();
    ASSERT_FALSE(j.is_discarded()) << r.out;
    EXPECT_EQ(j["iterations"].get<int>(), 1);
    EXPECT_NE(j["switchover_reason"].get<std::string>().find("within a pass"),
              std::string::npos)
        << j["switchover_reason"];
    EXPECT_LT(j["bytes"]["precopy_device"].get<uint64_t>(), kQuarter / 2);
    EXPECT_GT(j["bytes"]["stopcopy_device"].get<uint64_t>(), kQuarter / 2);
    EXPECT_GT(j["stopcopy_rate_bps"].get<double>(), 0);
    if (dma) {
      EXPECT_EQ(j["bytes"]["precopy_guest"].get<uint64_t>(), 0u);
      EXPECT_GE(j["bytes"]["stopcopy_guest"].get<uint64_t>(), 4u << 20)
          << "guest memory that no pass sent must go in the stop-copy";
    } else {
      EXPECT_EQ(j["verify"].get<std::string>().substr(0, 2), "ok") << j["verify"];
    }
  }
}

TEST_F(CliTest, MigrateWithDmaTrafficCarriesGuestMemory) {
  Instance a("mdevmig_sim0", "quarter"), b("mdevmig_sim0", "quarter");
  ASSERT_TRUE(a.ok() && b.ok());
  CliRun r = cli({"migrate", "--from", a.uuid(), "--to", b.uuid(), "--workload", "bar2,dma",
                  "--guest-mem", "4M", "--downtime", "0", "--max-iterations", "4", "--json"});
  ASSERT_EQ(r.rc, 0) << r.err;
  auto j = r.json();
  ASSERT_FALSE(j.is_discarded()) << r.out;
  EXPECT_GE(j["bytes"]["precopy_guest"].get<uint64_t>(), 4u << 20)
      << "the first pass sends all guest memory";
  EXPECT_GT(j["workload"]["dma_descriptors"].get<uint64_t>(), 0u);
  EXPECT_GT(j["iterations"].get<int>(), 1);
}

TEST_F(CliTest, MigrateBetweenTwoProcessesOverLoopbackTcp) {
  Side a = open_side("quarter"), b = open_side("quarter");
  ASSERT_TRUE(a.m && b.m);
  scribble(a.dev(), kQuarter, 11);
  Proc dst =
      spawn({"migrate", "--listen", "127.0.0.1:0", "--to", fd_arg(b), "--json"}, {b.dev().fd()});
  std::string dst_err;
  auto line = wait_for_line(dst.err, "listening on 127.0.0.1:", dst_err, 60s);
  ASSERT_TRUE(line) << dst_err;
  const std::string port = line->substr(line->rfind(':') + 1);
  CliRun src =
      cli({"migrate", "--from", fd_arg(a), "--to", "127.0.0.1:" + port, "--json"}, {a.dev().fd()});
  CliRun d = wait(dst);
  ASSERT_EQ(src.rc, 0) << src.err;
  ASSERT_EQ(d.rc, 0) << dst_err << d.err;
  EXPECT_EQ(src.json()["stream_xxh3"], d.json()["stream_xxh3"]);
  EXPECT_EQ(state(b.dev()), MigState::kRunning);
  EXPECT_EQ(state(a.dev()), MigState::kStop) << "a migrated source stays stopped";
  expect_same_state(a.dev(), b.dev(), kQuarter);
}

TEST_F(CliTest, KillingTheDestinationMidMigrationLeavesTheSourceRunningWithNothingLost) {
  Side a = open_side("quarter"), b = open_side("quarter");
  ASSERT_TRUE(a.m && b.m);
  scribble(a.dev(), kQuarter, 13);
  // This test is the "guest": it keeps writing the source's memory through BAR2 and
  // remembers what it wrote, so pre-copy never converges and the result is checkable.
  auto bar2 = a.dev().mmap_region(kBar2, 0);
  ASSERT_TRUE(bar2.ok());
  auto* mem = static_cast<uint64_t*>(bar2->data());
  std::vector<uint64_t> shadow(kQuarter / 8);
  ASSERT_TRUE(a.dev().read(kBar2, 0, std::as_writable_bytes(std::span(shadow))).ok());
  std::atomic<bool> stop{false};
  std::thread guest([&] {
    for (uint64_t n = 1; !stop; ++n) {
      const uint64_t at = (n * 7919 * 512) % shadow.size();
      mem[at] = n;
      shadow[at] = n;
      std::this_thread::sleep_for(1ms);
    }
  });
  Proc dst = spawn({"migrate", "--listen", "127.0.0.1:0", "--to", fd_arg(b)}, {b.dev().fd()});
  std::string dst_err;
  auto line = wait_for_line(dst.err, "listening on 127.0.0.1:", dst_err, 60s);
  ASSERT_TRUE(line) << dst_err;
  const std::string port = line->substr(line->rfind(':') + 1);
  Proc src = spawn({"migrate", "--from", fd_arg(a), "--to", "127.0.0.1:" + port, "--downtime", "0",
                    "--max-iterations", "100000", "--verbose"},
                   {a.dev().fd()});
  std::string src_err;
  auto it = wait_for_line(src.err, "iteration 3:", src_err, 300s);
  ASSERT_TRUE(it) << "the source never reached iteration 3: " << src_err;
  ::kill(dst.pid, SIGKILL);
  CliRun d = wait(dst);
  EXPECT_EQ(d.rc, 128 + SIGKILL);
  CliRun s = wait(src);
  s.err = src_err + s.err;
  stop = true;
  guest.join();
  EXPECT_EQ(s.rc, 1) << s.err;
  EXPECT_NE(s.err.find("recovered to RUNNING"), std::string::npos) << s.err;
  EXPECT_EQ(state(a.dev()), MigState::kRunning);
  std::vector<uint64_t> now(shadow.size());
  ASSERT_TRUE(a.dev().read(kBar2, 0, std::as_writable_bytes(std::span(now))).ok());
  EXPECT_TRUE(now == shadow) << "source memory differs from what the guest wrote";
  // The source works: a second migration attempt succeeds. The killed destination's
  // device is held open by this test, so nothing reset it: reset it as a VMM would.
  ASSERT_TRUE(b.dev().reset().ok());
  Proc dst2 = spawn({"migrate", "--listen", "127.0.0.1:0", "--to", fd_arg(b)}, {b.dev().fd()});
  std::string dst2_err;
  auto line2 = wait_for_line(dst2.err, "listening on 127.0.0.1:", dst2_err, 60s);
  ASSERT_TRUE(line2) << dst2_err;
  CliRun again = cli(
      {"migrate", "--from", fd_arg(a), "--to", "127.0.0.1:" + line2->substr(line2->rfind(':') + 1)},
      {a.dev().fd()});
  CliRun d2 = wait(dst2);
  EXPECT_EQ(again.rc, 0) << again.err;
  EXPECT_EQ(d2.rc, 0) << d2.err;
  expect_same_state(a.dev(), b.dev(), kQuarter);
}

// ---- hold ------------------------------------------------------------------------------------

// `sh -c SCRIPT mdevmig`: in SCRIPT, "$0" is the mdevmig binary.
std::vector<std::string> hold_sh(const std::vector<std::string>& uuids, const std::string& script) {
  std::vector<std::string> args = {"hold"};
  args.insert(args.end(), uuids.begin(), uuids.end());
  for (const char* a : {"--", "sh", "-c"}) args.emplace_back(a);
  args.push_back(script);
  args.emplace_back(MDEVMIG_BIN);
  return args;
}

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

nlohmann::json inspect_stream(const std::string& file) {
  CliRun i = cli({"inspect", file, "--json"});
  EXPECT_EQ(i.rc, 0) << file << ": " << i.err;
  return i.json()["device_stream"];
}

TEST_F(CliTest, HoldKeepsTheInstanceSoASaveAfterARestoreSavesTheRestoredState) {
  Side a = open_side("quarter");
  Instance h("mdevmig_sim0", "quarter");
  ASSERT_TRUE(a.m && h.ok());
  scribble(a.dev(), kQuarter, 7);
  const std::string file = tmp_file("hold-src.mdevmig"), without = tmp_file("hold-without.mdevmig"),
                    with = tmp_file("hold-with.mdevmig");
  ASSERT_EQ(cli({"save", fd_arg(a), file}, {a.dev().fd()}).rc, 0);
  const auto src = inspect_stream(file);
  ASSERT_EQ(src["registers"]["scratch3"].get<uint32_t>(), 7003u);
  ASSERT_EQ(src["unique_pages"].get<uint64_t>(), kQuarter / MDEVMIG_PAGE_SIZE);

  // Without hold each command opens the instance afresh: the save sees a reset device.
  ASSERT_EQ(cli({"restore", h.uuid(), file}).rc, 0);
  ASSERT_EQ(cli({"save", h.uuid(), without}).rc, 0);
  const auto reset = inspect_stream(without);
  // (Reset clears the registers; device memory is the parent's and keeps its bytes.)
  EXPECT_NE(reset["registers"], src["registers"]) << "the restored state survived the close";
  EXPECT_EQ(reset["registers"]["scratch3"].get<uint32_t>(), 0u);

  // Inside one hold (the save names the instance in upper case): the restored state.
  CliRun r =
      cli(hold_sh({h.uuid()}, "\"$0\" restore " + h.uuid() + " " + file + " && \"$0\" save " +
                                  upper(h.uuid()) + " " + with + " --json"));
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.err.find("left it in"), std::string::npos) << r.err;
  const auto held = inspect_stream(with);
  EXPECT_EQ(held["registers"], src["registers"]);
  EXPECT_EQ(held["unique_pages"], src["unique_pages"]);
  // The file holds the whole state: restored into another instance, it is a's.
  Side d = open_side("quarter");
  ASSERT_TRUE(d.m);
  ASSERT_EQ(cli({"restore", fd_arg(d), with}, {d.dev().fd()}).rc, 0);
  expect_same_state(a.dev(), d.dev(), kQuarter);
  for (const auto& f : {file, without, with}) ::unlink(f.c_str());
}

TEST_F(CliTest, HoldRunsAStoppedDeviceAgainAndPassesExitStatusAndSignalsOn) {
  Instance h("mdevmig_sim0", "quarter"), other("mdevmig_sim0", "quarter");
  ASSERT_TRUE(h.ok() && other.ok());
  const std::string file = tmp_file("hold-stop.mdevmig");
  // save --stop leaves the held device in STOP: hold says so and runs it again.
  CliRun s = cli({"hold", h.uuid(), "--", MDEVMIG_BIN, "save", h.uuid(), file, "--stop"});
  EXPECT_EQ(s.rc, 0) << s.err;
  EXPECT_NE(s.err.find(h.uuid() + ": the command left it in STOP; device recovered to RUNNING"),
            std::string::npos)
      << s.err;
  ::unlink(file.c_str());

  EXPECT_EQ(cli(hold_sh({h.uuid()}, "exit 7")).rc, 7);
  EXPECT_EQ(cli(hold_sh({h.uuid()}, "kill -KILL $$")).rc, 128 + SIGKILL);
  CliRun missing = cli({"hold", h.uuid(), "--", "/nonexistent/cmd"});
  EXPECT_EQ(missing.rc, 127) << missing.err;
  EXPECT_NE(missing.err.find("/nonexistent/cmd"), std::string::npos) << missing.err;

  // SIGTERM to the holder reaches the command; the holder waits and exits with its status.
  Proc p = spawn(hold_sh({h.uuid()}, "echo started >&2; exec sleep 600"));
  std::string err;
  ASSERT_TRUE(wait_for_line(p.err, "started", err, 60s)) << err;
  ::kill(p.pid, SIGTERM);
  const auto t0 = std::chrono::steady_clock::now();
  CliRun t = wait(p, err);
  EXPECT_EQ(t.rc, 128 + SIGTERM) << t.err;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 60s);

  // A held list naming h with the other instance's fds is refused, not adopted.
  CliRun w = cli(hold_sh({h.uuid(), other.uuid()}, "e=${MDEVMIG_HELD#* }; MDEVMIG_HELD=\"" +
                                                       h.uuid() + ":${e#*:}\" exec \"$0\" save " +
                                                       h.uuid() + " " + file));
  EXPECT_EQ(w.rc, 3) << w.err;
  EXPECT_NE(w.err.find("not adopted"), std::string::npos) << w.err;
  EXPECT_EQ(::access(file.c_str(), F_OK), -1) << "a file was written";
}

// ---- migrate over TLS -------------------------------------------------------------------------

// Test certificates (made once per run) and the kernel's TLS module loaded.
class TlsTest : public CliTest {
 protected:
  static void SetUpTestSuite() {
    if (::getenv("MDEVMIG_LAB") == nullptr) return;
    certs_ = "/tmp/mdevmig-cli-certs";
    // The lab's module loader cannot load crypto modules on demand: load kernel TLS's own.
    const std::string cmd = "rm -rf " + certs_ + " && " MDEVMIG_MAKE_TLS_CERTS " " + certs_ +
                            " >/dev/null && modprobe -a tls gcm ghash_generic ctr";
    made_ = std::system(cmd.c_str()) == 0;
  }
  void SetUp() override {
    CliTest::SetUp();
    ASSERT_TRUE(made_) << "making test certificates or loading the tls module failed";
  }
  static std::string dir(const char* which) { return certs_ + "/" + which; }
  static inline std::string certs_;
  static inline bool made_ = false;
};

// A listener with `dst_args` on b; its port once it listens.
std::optional<std::string> listening(Proc& dst, std::string& err) {
  auto line = wait_for_line(dst.err, "listening on 127.0.0.1:", err, 60s);
  if (!line) return std::nullopt;
  return line->substr(line->rfind(':') + 1);
}

TEST_F(TlsTest, MigrateOverKernelTlsBetweenTwoProcessesVerifies) {
  Side a = open_side("quarter"), b = open_side("quarter");
  ASSERT_TRUE(a.m && b.m);
  scribble(a.dev(), kQuarter, 17);
  Proc dst = spawn(
      {"migrate", "--listen", "127.0.0.1:0", "--to", fd_arg(b), "--tls", dir("good"), "--json"},
      {b.dev().fd()});
  std::string dst_err;
  auto port = listening(dst, dst_err);
  ASSERT_TRUE(port) << dst_err;
  CliRun src = cli({"migrate", "--from", fd_arg(a), "--to", "localhost:" + *port, "--tls",
                    dir("good"), "--json"},
                   {a.dev().fd()});
  CliRun d = wait(dst);
  ASSERT_EQ(src.rc, 0) << src.err;
  ASSERT_EQ(d.rc, 0) << dst_err << d.err;
  auto sj = src.json(), dj = d.json();
  EXPECT_EQ(sj["stream_xxh3"], dj["stream_xxh3"]);
  EXPECT_EQ(sj["tls"]["version"], "TLS1.3");
  EXPECT_EQ(sj["tls"]["kernel"], true);
  EXPECT_NE(sj["tls"]["peer"].get<std::string>().find("mdevmig-destination"), std::string::npos)
      << sj["tls"];
  EXPECT_NE(dj["tls"]["peer"].get<std::string>().find("mdevmig-source"), std::string::npos)
      << dj["tls"];
  EXPECT_EQ(state(b.dev()), MigState::kRunning);
  EXPECT_EQ(state(a.dev()), MigState::kStop) << "a migrated source stays stopped";
  expect_same_state(a.dev(), b.dev(), kQuarter);
}

TEST_F(TlsTest, AKernelTlsSocketPairCarries64MiBIntact) {
  auto creds_s = io::TlsCredentials::load(dir("good"), io::TlsRole::kServer);
  auto creds_c = io::TlsCredentials::load(dir("good"), io::TlsRole::kClient);
  ASSERT_TRUE(creds_s.ok() && creds_c.ok());
  auto lfd = io::listen_tcp({"127.0.0.1", 0});
  ASSERT_TRUE(lfd.ok()) << lfd.error().message();
  const uint16_t port = *io::local_port(lfd->get());
  constexpr std::size_t kBytes = 64u << 20;
  std::vector<std::byte> data(kBytes);
  std::mt19937_64 rng(23);
  for (std::size_t i = 0; i < kBytes; i += 8) {
    const uint64_t v = rng();
    std::memcpy(&data[i], &v, 8);
  }
  std::optional<Result<void>> server_result;
  std::vector<std::byte> got(kBytes);
  std::thread server([&] {
    auto conn = io::accept_one(lfd->get(), 60s);
    if (!conn.ok()) return server_result.emplace(conn.error()), void();
    io::TlsOptions o;
    o.peer = "source";
    auto t = io::secure_socket(conn->get(), *creds_s, o);
    if (!t.ok()) return server_result.emplace(t.error()), void();
    auto r = io::Reader::create(conn->get(), io::kStream, {.name = "kTLS socket"});
    if (!r.ok()) return server_result.emplace(r.error()), void();
    auto n = r->read_full(std::span(got));
    if (!n.ok()) return server_result.emplace(n.error()), void();
    if (*n != kBytes)
      return server_result.emplace(Error::make(EIO, "read", std::to_string(*n) + " bytes")), void();
    server_result.emplace(ok());
  });
  auto conn = io::connect_tcp({"127.0.0.1", port});
  ASSERT_TRUE(conn.ok()) << conn.error().message();
  io::TlsOptions o;
  o.peer = "destination";
  o.hostname = "127.0.0.1";
  auto t = io::secure_socket(conn->get(), *creds_c, o);
  ASSERT_TRUE(t.ok()) << t.error().message();
  EXPECT_EQ(t->version, "TLS1.3");
  {
    auto w = io::Writer::create(conn->get(), io::kStream, {.name = "kTLS socket"});
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE(w->write(data).ok());
    ASSERT_TRUE(w->flush().ok());
  }
  server.join();
  ASSERT_TRUE(server_result && server_result->ok())
      << (server_result ? server_result->error().message() : "");
  EXPECT_TRUE(got == data) << "bytes changed crossing kernel TLS";
  // The kernel holds the session: its TLS state is readable back from the socket.
  tls_crypto_info info{};
  socklen_t len = sizeof(info);
  ASSERT_EQ(::getsockopt(conn->get(), SOL_TLS, TLS_TX, &info, &len), 0) << std::strerror(errno);
  EXPECT_EQ(info.version, TLS_1_3_VERSION);
}

TEST_F(TlsTest, SourceFromAnotherCaAndPlaintextMismatchesFailWithTheSourceRunning) {
  Side a = open_side("quarter"), b = open_side("quarter");
  ASSERT_TRUE(a.m && b.m);
  scribble(a.dev(), kQuarter, 19);
  const uint64_t before = mem_hash(a.dev(), kQuarter);
  struct Case {
    const char* name;
    std::vector<std::string> dst_tls, src_tls;
    int src_rc, dst_rc;
    const char* src_says;
    const char* dst_says;
  };
  const std::vector<Case> cases = {
      {"source from another CA",
       {"--tls", dir("good")},
       {"--tls", dir("rogue-client")},
       1,
       1,
       "refused",
       "failed authentication"},
      {"listener from another CA",
       {"--tls", dir("other-ca")},
       {"--tls", dir("good")},
       1,
       1,
       "failed authentication",
       "refused"},
      {"expired listener", {"--tls", dir("expired")}, {"--tls", dir("good")}, 1, 1, "expired", ""},
      {"plaintext source", {"--tls", dir("good")}, {}, -1, 4, "", "does not speak TLS"},
      {"TLS source, plaintext listener", {}, {"--tls", dir("good")}, 4, -1, "TLS", ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    ASSERT_TRUE(b.dev().reset().ok());
    std::vector<std::string> dargs = {"migrate", "--listen",  "127.0.0.1:0", "--to",
                                      fd_arg(b), "--timeout", "20"};
    dargs.insert(dargs.end(), c.dst_tls.begin(), c.dst_tls.end());
    Proc dst = spawn(dargs, {b.dev().fd()});
    std::string dst_err;
    auto port = listening(dst, dst_err);
    ASSERT_TRUE(port) << dst_err;
    std::vector<std::string> sargs = {
        "migrate", "--from", fd_arg(a), "--to", "127.0.0.1:" + *port, "--timeout", "20"};
    sargs.insert(sargs.end(), c.src_tls.begin(), c.src_tls.end());
    CliRun src = cli(sargs, {a.dev().fd()});
    // Listeners that rejected the source end by themselves; one that may wait on for a
    // source that makes sense is stopped.
    if (c.dst_rc < 0) ::kill(dst.pid, SIGTERM);
    CliRun d = wait(dst, dst_err);
    EXPECT_NE(src.rc, 0) << src.err;
    if (c.src_rc >= 0) {
      EXPECT_EQ(src.rc, c.src_rc) << src.err;
    }
    if (c.dst_rc >= 0) {
      EXPECT_EQ(d.rc, c.dst_rc) << d.err;
    }
    EXPECT_NE(src.err.find(c.src_says), std::string::npos) << src.err;
    EXPECT_NE(d.err.find(c.dst_says), std::string::npos) << d.err;
    // One line each.
    EXPECT_LE(std::count(src.err.begin(), src.err.end(), '\n'), 1) << src.err;
    EXPECT_EQ(state(a.dev()), MigState::kRunning) << "the source keeps running";
    EXPECT_EQ(mem_hash(a.dev(), kQuarter), before) << "the source lost state";
  }
}

}  // namespace
}  // namespace mdevmig::lab
