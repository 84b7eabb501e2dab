// Benchmark "libvirt_paths_measure" (issue 13): the same live migration between the two
// lab hosts (tools/lab/pair.sh) through libvirt and through QEMU directly, alternating in
// one booted pair, so that the two paths' figures are comparable. BENCHMARKS.md has the
// command and the figures.
//
// The VM: the harness's qtest guest (tools/qemu) with a quarter instance (16 MiB of device
// memory), 128 MiB of RAM, one vCPU, machine pc-q35-7.2, the device in slot 5 of the root
// bus; libvirt_test.cc's domain for the libvirt path, and the same QEMU options for the
// direct path (QemuConfig; libvirt adds its own monitor and defaults). Between two moves
// the harness runs 300 ms of device workload and drains it; during a migration the VM is
// idle (the harness issues nothing). Both paths cap the bandwidth at kBandwidthMiB and set
// downtime-limit to kDowntimeMs:
//   libvirt  virsh migrate-setmaxdowntime, then virsh migrate --live --bandwidth, driven by
//            virsh on host a (b -> a: virsh on a talks to b's libvirtd);
//   QEMU     migrate-set-parameters max-bandwidth and downtime-limit, migrate-incoming
//            tcp: on a QEMU started with -incoming defer on the destination, migrate tcp:.
// libvirt's own migration capabilities are read from its source QEMU during the first
// migration; the direct path sets return-path the same way.
//
// Figures per migration: total-time, downtime and setup-time from the source QEMU's own
// query-migrate (polled through the harness's QMP monitor until "completed": libvirt
// ends its source QEMU soon after), libvirt's virsh domjobinfo --completed on the
// destination, and the wall time of the whole operation (libvirt: the virsh migrate
// command; QEMU: starting the destination QEMU until the source has quit). Each move is
// verified on the destination by the harness. Host a prints a table per path at the end.
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "common/pair.h"
#include "common/process.h"
#include "common/sysfs.h"
#include "libvirt/domain.h"
#include "tools/qemu/harness.h"

#ifndef MDEVMIG_LAB_LIBVIRTD
#error "MDEVMIG_LAB_LIBVIRTD (tests/lab/libvirt/lab-libvirtd.sh) must be defined"
#endif

namespace mdevmig::qemu {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
using lab::Exit;
using lab::PairHost;

constexpr int kRounds = 3;              // a -> b and back, per path
constexpr uint64_t kBandwidthMiB = 24;  // MiB/s, both paths
constexpr uint64_t kDowntimeMs = 300;   // downtime-limit, both paths
// The direct path: b's QEMU's QMP (qtest on the next port), and where each side's
// incoming QEMU listens.
constexpr uint16_t kDirectControl = 4420, kIncomingB = 4422, kIncomingA = 4423;
// a's QEMU of the direct path: QMP on this port of 127.0.0.1, qtest on the next.
constexpr uint16_t kLocalControl = 4430;
// For a QEMU to answer once started: a loaded machine (load average 17 on 2 cores)
// slows the lab guest's QEMU start-up to minutes, past Vm::start's 30 s.
constexpr auto kStartTimeout = std::chrono::seconds(600);
constexpr auto kQmpTimeout = std::chrono::seconds(120);

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// The figures of one migration; -1: not reported.
struct Move {
  std::string path;       // "libvirt" or "qemu"
  std::string direction;  // "a->b" or "b->a"
  int round = 0;
  double wall_ms = -1;
  double total_ms = -1, downtime_ms = -1, setup_ms = -1;  // the source QEMU's query-migrate
  double ram_mib = -1;
  double libvirt_elapsed_ms = -1, libvirt_downtime_ms = -1;  // virsh domjobinfo --completed
  bool verified = false;
};

// What the source QEMU said while it migrated: its last query-migrate, and the
// parameters and enabled capabilities once the migration was under way.
struct Watched {
  json last;
  json params;
  std::vector<std::string> caps;
  bool ended = false;  // "completed", "failed" or "cancelled" seen
};

// Polls query-migrate on `qmp` until the migration started after this call ends, or the
// QEMU stops answering (libvirt ends its source QEMU once the destination runs), or
// `gave_up()` says the driver of the migration has finished without an end being seen.
// A QEMU that was itself a migration's destination reports that migration as
// "completed" until a new one starts, so an end counts only after a start.
template <typename F>
Watched watch_source(QmpClient& qmp, F gave_up) {
  Watched w;
  bool started = false;
  const auto t0 = std::chrono::steady_clock::now();
  for (;;) {
    auto q = qmp.execute("query-migrate", nullptr, 5s);
    if (!q) break;
    const std::string st = q->value("status", "");
    if (st == "setup" || st == "active" || st == "pre-switchover" || st == "device") {
      if (!started) {
        started = true;
        auto p = qmp.execute("query-migrate-parameters", nullptr, 5s);
        if (p) w.params = *p;
        auto c = qmp.execute("query-migrate-capabilities", nullptr, 5s);
        if (c && c->is_array())
          for (const auto& e : *c)
            if (e.value("state", false)) w.caps.push_back(e.value("capability", ""));
      }
      w.last = *q;
    } else if (started && (st == "completed" || st == "failed" || st == "cancelled")) {
      w.last = *q;
      w.ended = true;
      // QEMU 7.2 reports "completed" before it has computed total-time and downtime
      // (migration_calculate_complete() runs after the state change): ask again.
      if (st != "completed" || q->value("total-time", 0) > 0) break;
    }
    if (gave_up() || std::chrono::steady_clock::now() - t0 > 600s) break;
    std::this_thread::sleep_for(20ms);
  }
  return w;
}

void take_qemu_figures(const Watched& w, Move& r) {
  auto num = [&](const char* key) {
    return w.last.contains(key) ? w.last[key].get<double>() : -1.0;
  };
  if (!w.ended || w.last.value("status", "") != "completed") return;
  r.total_ms = num("total-time");
  r.downtime_ms = num("downtime");
  r.setup_ms = num("setup-time");
  if (w.last.contains("ram")) r.ram_mib = w.last["ram"].value("transferred", 0.0) / 1048576.0;
}

// "Time elapsed" and "Total downtime" of virsh domjobinfo --completed.
void take_libvirt_figures(const std::string& out, Move& r) {
  std::smatch m;
  std::istringstream lines(out);
  for (std::string l; std::getline(lines, l);) {
    if (std::regex_search(l, m, std::regex("^Time elapsed: +([0-9]+) +ms")))
      r.libvirt_elapsed_ms = std::stod(m[1]);
    if (std::regex_search(l, m, std::regex("^Total downtime: +([0-9]+) +ms")))
      r.libvirt_downtime_ms = std::stod(m[1]);
  }
}

std::string fmt(double v) {
  if (v < 0) return "—";
  char b[32];
  std::snprintf(b, sizeof b, "%.0f", v);
  return b;
}

// One move as a row of the table source_host() prints.
std::string row(const Move& r) {
  char ram[32];
  std::snprintf(ram, sizeof ram, "%.1f", r.ram_mib);
  return "| " + r.path + " | " + r.direction + " | " + std::to_string(r.round) + " | " +
         fmt(r.total_ms) + " | " + fmt(r.downtime_ms) + " | " + fmt(r.setup_ms) + " | " +
         (r.ram_mib < 0 ? "—" : ram) + " | " + fmt(r.libvirt_elapsed_ms) + " | " +
         fmt(r.libvirt_downtime_ms) + " | " + fmt(r.wall_ms) + " | " + (r.verified ? "yes" : "NO") +
         " |";
}

// n, median, min and max of one column (values < 0 are missing and left out).
std::string stats(const std::vector<Move>& runs, const std::string& path, double Move::*field) {
  std::vector<double> v;
  for (const auto& r : runs)
    if (r.path == path && r.*field >= 0) v.push_back(r.*field);
  if (v.empty()) return "0 | — | — | —";
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  const double median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  return std::to_string(n) + " | " + fmt(median) + " | " + fmt(v.front()) + " | " + fmt(v.back());
}

class LibvirtVsQemu : public testing::Test {
 protected:
  void SetUp() override {
    MDEVMIG_REQUIRE_LAB();
    if (!h_.valid())
      GTEST_FAIL() << "no pair environment (MDEVMIG_LAB_ROLE etc.): run under tools/lab/pair.sh";
    lab::loopback_up();
    Exit d = lab::run(MDEVMIG_LAB_LIBVIRTD, {});
    ASSERT_EQ(d.rc, 0) << d.out << d.err;
    property_ = migration_property();
    ASSERT_FALSE(property_.empty()) << "this host's QEMU has no supported VFIO migration";
    ASSERT_TRUE(write_halt_bios(kBios).ok());
  }
  void TearDown() override {
    if (HasFailure()) lab::put(h_, h_.role + ".failed", "1");
    if (h_.role == "a") {
      (void)virsh(local_uri(), {"destroy", kDomain});
      (void)virsh(local_uri(), {"undefine", kDomain});
    }
  }

  // The VM's QEMU for the direct path: the harness's options, the domain's slot.
  static VmSpec direct_spec(const std::string& dir) {
    VmSpec spec;
    spec.machine = kMachine;
    spec.mem_mb = kMemMb;
    spec.pci_addr = kSlot;
    spec.dir = dir;
    return spec;
  }

  // Host b: libvirtd, an instance for libvirt's VM and one for the direct path's, then
  // a's commands: "direct N" starts a QEMU on the latter with -incoming defer and QMP
  // and qtest on TCP for a's harness (the previous one, which a quit, is reaped first);
  // "done" ends.
  void destination_host() {
    std::vector<mdev::MdevInstance> inst;
    for (int i = 0; i < 2; ++i) {
      auto m = mdev::MdevInstance::create("quarter");
      ASSERT_TRUE(m.ok()) << m.error().message();
      inst.push_back(std::move(*m));
    }
    char tmpl[] = "/tmp/mdevmig-bench-b.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    VmSpec spec = direct_spec(tmpl);
    spec.bios = spec.dir + "/halt.bin";
    ASSERT_TRUE(write_halt_bios(spec.bios).ok());
    auto protocol = resolve_vfio_protocol(VfioProtocol::kAuto, spec.qemu_binary);
    ASSERT_TRUE(protocol.ok()) << protocol.error().message();
    spec.protocol = *protocol;
    lab::put(h_, "b-ready", inst[0].uuid() + " " + property_ + " " + inst[1].uuid());

    std::optional<QemuProcess> qemu;
    auto reap = [&] {
      if (!qemu) return;
      auto end = qemu->wait(60s);
      if (!end) {
        ADD_FAILURE() << "b's direct QEMU still runs after a quit it";
        qemu->kill();
      }
      qemu.reset();
    };
    for (int n = 1;; ++n) {
      auto cmd = lab::take(h_, "b-cmd-" + std::to_string(n), 1800s);
      ASSERT_TRUE(cmd);
      say("a asks: " + *cmd);
      reap();
      if (*cmd == "done") break;
      ASSERT_EQ(cmd->rfind("direct ", 0), 0u) << "unknown command from a: " << *cmd;
      QemuConfig cfg = spec.config("b" + cmd->substr(7), inst[1].uuid(), std::string("defer"),
                                   Endpoint::tcp(h_.addr, kDirectControl));
      std::string argv;
      for (const auto& a : cfg.argv()) argv += " " + a;
      say("starting" + argv);
      auto p = QemuProcess::start(cfg);
      ASSERT_TRUE(p.ok()) << p.error().message();
      qemu.emplace(std::move(*p));
      lab::put(h_, "b-ack-" + std::to_string(n), inst[1].uuid());
    }
  }

  std::optional<std::string> ask_b(const std::string& cmd) {
    const std::string n = std::to_string(++b_commands_);
    lab::put(h_, "b-cmd-" + n, cmd);
    return lab::take(h_, "b-ack-" + n, 600s);
  }

  // The destination holds the VM: the harness adopts and verifies it, then runs the
  // workload between two moves.
  void verify_moved(Harness& harness, Vm vm, std::size_t instance, Move& r) {
    const std::string what = r.path + " " + r.direction + " round " + std::to_string(r.round);
    auto v = harness.moved_to(std::move(vm), instance);
    ASSERT_TRUE(v.ok()) << what << ": " << v.error().message();
    EXPECT_TRUE(v->ok()) << what << ": " << v->summary();
    r.verified = v->ok();
    ASSERT_TRUE(harness.run_workload(300ms).ok());
  }

  // One move of libvirt's VM: virsh on `driver_uri` (the source's libvirtd) migrates it
  // to `dest_role`'s libvirtd with `xml`; `harness` watches the source QEMU meanwhile.
  void libvirt_move(Harness& harness, const std::string& driver_uri, const std::string& dest_role,
                    const std::string& xml, Move& r) {
    Exit setdt =
        virsh(driver_uri, {"migrate-setmaxdowntime", kDomain, std::to_string(kDowntimeMs)});
    ASSERT_EQ(setdt.rc, 0) << setdt.err;
    Exit moved;
    std::atomic<bool> finished{false};
    const auto t0 = std::chrono::steady_clock::now();
    std::thread migration([&] {
      moved = virsh(driver_uri, {"migrate", "--live", kDomain, remote_uri(dest_role), "--xml", xml,
                                 "--bandwidth", std::to_string(kBandwidthMiB)});
      r.wall_ms = ms_since(t0);
      finished = true;
    });
    Watched w = watch_source(harness.current_vm().qmp(), [&] { return finished.load(); });
    migration.join();
    ASSERT_EQ(moved.rc, 0) << moved.err;
    take_qemu_figures(w, r);
    report_watch("libvirt", w);
    if (libvirt_caps_.empty() && !w.caps.empty()) libvirt_caps_ = w.caps;
    // The destination's libvirtd keeps the finished job's figures (the source's domain
    // may be gone: b's is transient).
    const std::string dest_uri = dest_role == h_.role ? local_uri() : remote_uri(dest_role);
    Exit info = virsh(dest_uri, {"domjobinfo", kDomain, "--completed"});
    say("domjobinfo --completed:\n" + info.out);
    take_libvirt_figures(info.out, r);
    const std::string host = dest_role == h_.role ? "127.0.0.1" : h_.peer;
    auto vm = Vm::attach("libvirt-" + dest_role + std::to_string(r.round), "",
                         Endpoint::tcp(host, kControlPort), kStartTimeout);
    ASSERT_TRUE(vm.ok()) << vm.error().message();
    verify_moved(harness, std::move(*vm), dest_role == h_.role ? 0 : Harness::kRemote, r);
  }

  // What QEMU ran with, once per path.
  void report_watch(const std::string& path, const Watched& w) {
    if (!w.ended)
      say(path + ": no end of the migration seen on the source; last: " + w.last.dump());
    if (reported_.find(path) != std::string::npos) return;
    reported_ += path + " ";
    std::string caps;
    for (const auto& c : w.caps) caps += " " + c;
    say(path +
        ": source QEMU's enabled capabilities:" + (caps.empty() ? std::string(" none") : caps));
    say(path + ": source QEMU's parameters: " + w.params.dump());
  }

  // The direct path's capabilities, as libvirt set them.
  Result<void> set_caps(Vm& vm) {
    const bool rp =
        std::find(libvirt_caps_.begin(), libvirt_caps_.end(), "return-path") != libvirt_caps_.end();
    MDEVMIG_TRY(vm.qmp().execute(
        "migrate-set-capabilities",
        {{"capabilities", json::array({{{"capability", "return-path"}, {"state", rp}}})}},
        kQmpTimeout));
    return ok();
  }

  // A QEMU of the direct path on this host on instance `uuid` (with -incoming defer if
  // `incoming`), started here and reached like b's, over TCP on 127.0.0.1 with a long
  // timeout; the previous one, which has quit by then, is reaped first.
  Result<Vm> start_local(const Harness& harness, const std::string& name, const std::string& uuid,
                         bool incoming) {
    if (local_qemu_) {
      if (!local_qemu_->wait(60s)) local_qemu_->kill();
      local_qemu_.reset();
    }
    const Endpoint control = Endpoint::tcp("127.0.0.1", kLocalControl);
    QemuConfig cfg = harness.options().vm.config(
        name, uuid, incoming ? std::optional<std::string>("defer") : std::nullopt, control);
    local_qemu_.emplace(MDEVMIG_TRY(QemuProcess::start(cfg)));
    return Vm::attach(name, uuid, control, kStartTimeout);
  }

  // One move of the direct path's VM into `dst` (started with -incoming defer), which
  // listens on `listen` and is reached at `to`.
  void qemu_move(Harness& harness, Vm dst, const std::string& listen, const std::string& to,
                 std::size_t instance, std::chrono::steady_clock::time_point t0, Move& r) {
    Vm& src = harness.current_vm();
    ASSERT_TRUE(set_caps(dst).ok());
    ASSERT_TRUE(set_caps(src).ok());
    auto in = dst.qmp().execute("migrate-incoming", {{"uri", listen}}, kQmpTimeout);
    ASSERT_TRUE(in.ok()) << in.error().message();
    auto par = src.qmp().execute(
        "migrate-set-parameters",
        {{"max-bandwidth", kBandwidthMiB << 20}, {"downtime-limit", kDowntimeMs}}, kQmpTimeout);
    ASSERT_TRUE(par.ok()) << par.error().message();
    auto go = src.qmp().execute("migrate", {{"uri", to}}, kQmpTimeout);
    ASSERT_TRUE(go.ok()) << go.error().message();
    Watched w = watch_source(src.qmp(), [] { return false; });
    report_watch("qemu", w);
    ASSERT_TRUE(w.ended) << "the source stopped answering during the migration";
    ASSERT_EQ(w.last.value("status", ""), "completed") << w.last.dump();
    take_qemu_figures(w, r);
    auto running = dst.wait_run_state("running", kStartTimeout);
    ASSERT_TRUE(running.ok()) << running.error().message();
    say("source QEMU: " + src.quit());
    r.wall_ms = ms_since(t0);
    verify_moved(harness, std::move(dst), instance, r);
  }

  void source_host() {
    // libvirt's VM on instance 0 of its harness, the direct path's on instance 0 of its
    // own: two VMs of the same configuration, each idle while the other moves.
    std::vector<mdev::MdevInstance> lv_inst, dq_inst;
    for (auto* v : {&lv_inst, &dq_inst}) {
      auto m = mdev::MdevInstance::create("quarter");
      ASSERT_TRUE(m.ok()) << m.error().message();
      v->push_back(std::move(*m));
    }
    const std::string uuid = lv_inst[0].uuid();
    HarnessOptions opt;
    opt.vm.machine = kMachine;
    opt.vm.mem_mb = kMemMb;
    opt.vm.pci_addr = kSlot;
    opt.irq = IrqMode::kMsi;
    opt.seed = 13;
    opt.log = say;
    auto lvr = Harness::create(opt, std::move(lv_inst));
    ASSERT_TRUE(lvr.ok()) << lvr.error().message();
    Harness& lv = **lvr;
    auto dqr = Harness::create(opt, std::move(dq_inst));
    ASSERT_TRUE(dqr.ok()) << dqr.error().message();
    Harness& dq = **dqr;

    const std::string xml = lv.dir() + "/domain.xml";
    ASSERT_TRUE(write_text(xml, domain_xml(uuid, property_)));
    Exit def = virsh(local_uri(), {"define", xml});
    ASSERT_EQ(def.rc, 0) << def.err;
    Exit start = virsh(local_uri(), {"start", kDomain});
    ASSERT_EQ(start.rc, 0) << start.err;
    {
      auto vm =
          Vm::attach("libvirt-a0", uuid, Endpoint::tcp("127.0.0.1", kControlPort), kStartTimeout);
      ASSERT_TRUE(vm.ok()) << vm.error().message();
      auto boot = lv.boot_in(std::move(*vm), 0);
      ASSERT_TRUE(boot.ok()) << boot.error().message();
      ASSERT_TRUE(boot->ok()) << boot->summary();
      ASSERT_TRUE(lv.run_workload(300ms).ok());
    }
    {
      auto vm = start_local(dq, "a0", dq.instance(0).uuid(), false);
      ASSERT_TRUE(vm.ok()) << vm.error().message();
      auto boot = dq.boot_in(std::move(*vm), 0);
      ASSERT_TRUE(boot.ok()) << boot.error().message();
      ASSERT_TRUE(boot->ok()) << boot->summary();
      ASSERT_TRUE(dq.run_workload(300ms).ok());
    }
    say("libvirt's QEMU: " + lab::run("sh", {"-c", "grep -h qemu-system /var/log/libvirt/qemu/" +
                                                       std::string(kDomain) + ".log | tail -n1"})
                                 .out);
    {
      std::string argv;
      for (const auto& a :
           dq.options().vm.config("vmN", dq.instance(0).uuid(), std::string("defer")).argv())
        argv += " " + a;
      say("the direct path's QEMU:" + argv);
    }

    auto ready = lab::take(h_, "b-ready", 900s);
    ASSERT_TRUE(ready);
    std::istringstream words(*ready);
    std::string b_uuid, b_property, b_direct;
    words >> b_uuid >> b_property >> b_direct;
    ASSERT_FALSE(b_direct.empty()) << "b-ready: " << *ready;
    Exit mx = virsh(local_uri(), {"dumpxml", kDomain, "--migratable"});
    ASSERT_EQ(mx.rc, 0) << mx.err;
    const std::string b_xml = lv.dir() + "/b.xml";
    ASSERT_TRUE(write_text(b_xml, retargeted(mx.out, uuid, b_uuid, property_, b_property)));

    std::vector<Move> runs;
    for (int round = 1; round <= kRounds; ++round) {
      // libvirt: a -> b, then b -> a (b's libvirtd drives it; virsh runs here).
      Move r{"libvirt", "a->b", round};
      libvirt_move(lv, local_uri(), h_.peer_role(), b_xml, r);
      runs.push_back(r);
      say("move: " + row(r));
      if (HasFatalFailure()) break;
      Exit bx = virsh(remote_uri(h_.peer_role()), {"dumpxml", kDomain, "--migratable"});
      ASSERT_EQ(bx.rc, 0) << bx.err;
      const std::string a_xml = lv.dir() + "/a.xml";
      ASSERT_TRUE(write_text(a_xml, retargeted(bx.out, b_uuid, uuid, b_property, property_)));
      Move back{"libvirt", "b->a", round};
      libvirt_move(lv, remote_uri(h_.peer_role()), h_.role, a_xml, back);
      runs.push_back(back);
      say("move: " + row(back));
      if (HasFatalFailure()) break;

      // QEMU directly: a -> b into a QEMU b starts, then b -> a into one started here.
      Move q{"qemu", "a->b", round};
      auto t0 = std::chrono::steady_clock::now();
      auto b_inst = ask_b("direct " + std::to_string(round));
      ASSERT_TRUE(b_inst);
      auto dst = Vm::attach("b" + std::to_string(round), *b_inst,
                            Endpoint::tcp(h_.peer, kDirectControl), kStartTimeout);
      ASSERT_TRUE(dst.ok()) << dst.error().message();
      qemu_move(dq, std::move(*dst), "tcp:0.0.0.0:" + std::to_string(kIncomingB),
                "tcp:" + h_.peer + ":" + std::to_string(kIncomingB), Harness::kRemote, t0, q);
      runs.push_back(q);
      say("move: " + row(q));
      if (HasFatalFailure()) break;
      Move qb{"qemu", "b->a", round};
      t0 = std::chrono::steady_clock::now();
      auto here = start_local(dq, "a" + std::to_string(round), dq.instance(0).uuid(), true);
      ASSERT_TRUE(here.ok()) << here.error().message();
      qemu_move(dq, std::move(*here), "tcp:0.0.0.0:" + std::to_string(kIncomingA),
                "tcp:" + h_.addr + ":" + std::to_string(kIncomingA), 0, t0, qb);
      runs.push_back(qb);
      say("move: " + row(qb));
      if (HasFatalFailure()) break;
    }
    ASSERT_TRUE(ask_b("done"));

    std::string table =
        "\n| path | direction | round | QEMU total-time ms | QEMU downtime ms | QEMU setup-time ms "
        "| RAM MiB | "
        "libvirt time elapsed ms | libvirt total downtime ms | wall ms | verified "
        "|\n|---|---|---|---|---|---|---|---|---|---|---|\n";
    for (const auto& r : runs) table += row(r) + "\n";
    table += "\n| path | figure | n | median | min | max |\n|---|---|---|---|---|---|\n";
    const std::pair<const char*, double Move::*> columns[] = {
        {"QEMU total-time (ms)", &Move::total_ms},
        {"QEMU downtime (ms)", &Move::downtime_ms},
        {"QEMU setup-time (ms)", &Move::setup_ms},
        {"libvirt time elapsed (ms)", &Move::libvirt_elapsed_ms},
        {"libvirt total downtime (ms)", &Move::libvirt_downtime_ms},
        {"wall (ms)", &Move::wall_ms}};
    for (const char* path : {"libvirt", "qemu"})
      for (const auto& [name, field] : columns) {
        if (std::string(path) == "qemu" && std::string(name).rfind("libvirt", 0) == 0) continue;
        table +=
            std::string("| ") + path + " | " + name + " | " + stats(runs, path, field) + " |\n";
      }
    std::fprintf(stderr, "libvirt_paths_measure: %d MiB/s, downtime-limit %d ms%s",
                 static_cast<int>(kBandwidthMiB), static_cast<int>(kDowntimeMs), table.c_str());
    EXPECT_EQ(runs.size(), static_cast<std::size_t>(4 * kRounds));

    ASSERT_EQ(virsh(local_uri(), {"destroy", kDomain}).rc, 0);
    lv.release();
    dq.shutdown();
    if (local_qemu_ && !local_qemu_->wait(60s)) local_qemu_->kill();
  }

  PairHost h_ = lab::pair_host();
  std::string property_;
  std::vector<std::string> libvirt_caps_;
  std::string reported_;
  int b_commands_ = 0;
  std::optional<QemuProcess> local_qemu_;
};

TEST_F(LibvirtVsQemu, SameMigrationThroughLibvirtAndQemu) {
  if (h_.role == "a")
    source_host();
  else
    destination_host();
}

}  // namespace
}  // namespace mdevmig::qemu
