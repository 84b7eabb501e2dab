// Lab group "libvirt_qemu": a VM with an mdevmig instance managed by libvirt the way
// operators run one, on two lab hosts (tools/lab/pair.sh) with libvirtd on each: the
// domain names its instance with <hostdev type='mdev'> and turns VFIO migration on
// through libvirt's per-device QEMU property override. On host a: virsh start, save and
// restore, managedsave and start; migrations to b that must fail with the VM going on
// on a: b has no such instance, b's instance is of another type, b has no mdevmig
// module, the network between the hosts drops mid-migration; then virsh migrate --live
// to b (with the workload running during pre-copy) and back; last, a migration during
// which host b dies (its guest killed, tools/lab/pair.sh). Host b runs libvirtd, holds
// instances for the VM and does what a asks of it (unload and load the module, take
// its NIC down and up).
//
// The VM is the harness's qtest guest (tools/qemu): the domain adds a QMP monitor and a
// qtest socket on TCP to QEMU's command line, the harness drives the device's workload
// through them and, after every move, checks from the guest's side that the VM holds
// everything it did before (device memory, registers, the DMA ring, interrupts). The
// harness issues nothing while libvirt moves the VM.
//
// The machine type is pc-q35-7.2, which every supported QEMU knows, so the same test
// runs the upgrade pair (a: bookworm, libvirt 9.0, QEMU 7.2; b: trixie, libvirt 11,
// QEMU 10.0) and the trixie pair.
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <initializer_list>
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
#ifndef MDEVMIG_EXAMPLE_DOMAIN
#error "MDEVMIG_EXAMPLE_DOMAIN (the shipped example domain XML) must be defined"
#endif

namespace mdevmig::qemu {
namespace {

using namespace std::chrono_literals;
using lab::Exit;
using lab::PairHost;

// The figures of a finished migration job, from virsh domjobinfo --completed.
std::string job_figures(const std::string& uri) {
  Exit e = virsh(uri, {"domjobinfo", kDomain, "--completed"});
  std::string out;
  std::istringstream lines(e.out);
  for (std::string l; std::getline(lines, l);)
    if (std::regex_search(l, std::regex("^(Time elapsed|Total downtime|Data processed|Memory "
                                        "processed|Expected downtime)")))
      out += "    " + l + "\n";
  return out;
}

// Checks that libvirt's error says each of `words`.
void expect_says(const std::string& what, const std::string& error,
                 std::initializer_list<const char*> words) {
  for (const char* w : words)
    EXPECT_NE(error.find(w), std::string::npos)
        << what << ": libvirt's error lacks \"" << w << "\": " << error;
}

// libvirt's error when its peer-to-peer connection to the destination's libvirtd died
// (keepalive): the check itself ("Lost connection to destination host"), or the call
// on that connection that followed it ("client socket is closed", libvirt 9.0).
void expect_lost_destination(const std::string& what, const std::string& error) {
  EXPECT_TRUE(error.find("Lost connection to destination host") != std::string::npos ||
              error.find("client socket is closed") != std::string::npos)
      << what << ": libvirt's error does not say that the destination was lost: " << error;
}

// Whether a migration job of the domain runs here, waiting up to `limit` for one.
bool migrating(std::chrono::seconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  for (;;) {
    Exit e = lab::run("virsh", {"-c", local_uri(), "domjobinfo", kDomain});
    if (std::regex_search(e.out, std::regex("Job type: +Unbounded"))) return true;
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(200ms);
  }
}

class LibvirtTwoHosts : public testing::Test {
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
    if (HasFailure()) {
      lab::put(h_, h_.role + ".failed", "1");
      std::fprintf(stderr, "QEMU's log on %s:\n%s\n", h_.role.c_str(),
                   lab::read_file("/var/log/libvirt/qemu/" + std::string(kDomain) + ".log")
                       .value_or("")
                       .c_str());
    }
    (void)virsh(local_uri(), {"destroy", kDomain});
    (void)virsh(local_uri(), {"undefine", kDomain, "--managed-save"});
  }

  // Host b: libvirtd, a quarter instance for the VM and an eighth one (a destination of
  // the wrong type), then what a asks for, one command at a time (ask_b): "unload"
  // (remove the instances, unload mdevmig), "load" (load it, create a quarter instance:
  // the answer is its UUID), "kernel-says TEXT" (whether b's kernel log has TEXT: yes
  // or no), "link-down" and "link-up" (b's NIC on the network between the hosts).
  // b's job ends when a's last migration kills b (lab.sh --kill-on) as it
  // waits for the next command, or when a fails.
  void destination_host() {
    std::vector<mdev::MdevInstance> inst;
    for (const char* type : {"quarter", "eighth"}) {
      auto m = mdev::MdevInstance::create(type);
      ASSERT_TRUE(m.ok()) << m.error().message();
      inst.push_back(std::move(*m));
    }
    lab::put(h_, "b-ready", inst[0].uuid() + " " + property_ + " " + inst[1].uuid());
    for (int n = 1;; ++n) {
      auto cmd = lab::take(h_, "b-cmd-" + std::to_string(n), 1500s);
      ASSERT_TRUE(cmd);
      say("a asks: " + *cmd);
      std::string answer = "ok";
      if (*cmd == "unload") {
        for (auto& i : inst) {
          auto r = i.remove();
          ASSERT_TRUE(r.ok()) << r.error().message();
        }
        inst.clear();
        Exit rm;
        // (The QEMU libvirt started for the refused migration may still be closing.)
        for (int tries = 0; tries < 60 && (rm = lab::run("rmmod", {"mdevmig"})).rc != 0; ++tries)
          std::this_thread::sleep_for(500ms);
        ASSERT_EQ(rm.rc, 0) << rm.err;
      } else if (*cmd == "load") {
        std::vector<std::string> args{std::getenv("MDEVMIG_KO") ? std::getenv("MDEVMIG_KO") : ""};
        std::istringstream params(
            std::getenv("MDEVMIG_KO_PARAMS") ? std::getenv("MDEVMIG_KO_PARAMS") : "");
        for (std::string p; params >> p;) args.push_back(p);
        Exit ins = lab::run("insmod", args);
        ASSERT_EQ(ins.rc, 0) << ins.err;
        auto m = mdev::MdevInstance::create("quarter");
        ASSERT_TRUE(m.ok()) << m.error().message();
        answer = m->uuid();
        inst.push_back(std::move(*m));
      } else if (cmd->rfind("kernel-says ", 0) == 0) {
        Exit dmesg = lab::run("dmesg", {});
        answer = dmesg.out.find(cmd->substr(12)) != std::string::npos ? "yes" : "no";
      } else if (*cmd == "link-down" || *cmd == "link-up") {
        Exit ip = lab::run("ip", {"link", "set", "eth0", *cmd == "link-down" ? "down" : "up"});
        ASSERT_EQ(ip.rc, 0) << ip.err;
      } else {
        FAIL() << "unknown command from a: " << *cmd;
      }
      lab::put(h_, "b-ack-" + std::to_string(n), answer);
    }
  }

  // Host a's side of the above: b's answer, or nullopt (with a failure).
  std::optional<std::string> ask_b(const std::string& cmd) {
    const std::string n = std::to_string(++b_commands_);
    lab::put(h_, "b-cmd-" + n, cmd);
    return lab::take(h_, "b-ack-" + n, 600s);
  }

  // The VM moved (started, restored, migrated) into the QEMU whose QMP is on `host`:
  // the harness takes it there and verifies it.
  void moved(Harness& harness, const std::string& host, std::size_t instance,
             const std::string& what) {
    auto vm = Vm::attach(what, "", Endpoint::tcp(host, kControlPort));
    ASSERT_TRUE(vm.ok()) << vm.error().message();
    auto v = harness.moved_to(std::move(*vm), instance);
    ASSERT_TRUE(v.ok()) << what << ": " << v.error().message();
    EXPECT_TRUE(v->ok()) << what << ": " << v->summary();
    ASSERT_TRUE(harness.run_workload(300ms).ok());
    auto again = harness.verify();
    ASSERT_TRUE(again.ok()) << again.error().message();
    EXPECT_TRUE(again->ok()) << what << ", after more workload: " << again->summary();
  }

  // After a migration that failed: the VM runs on a and holds everything, and goes on.
  void still_here(Harness& harness, const std::string& what) {
    EXPECT_NE(virsh(local_uri(), {"domstate", kDomain}).out.find("running"), std::string::npos)
        << what;
    auto v = harness.verify();
    ASSERT_TRUE(v.ok()) << what << ": " << v.error().message();
    EXPECT_TRUE(v->ok()) << what << ": " << v->summary();
    ASSERT_TRUE(harness.run_workload(300ms).ok());
    auto again = harness.verify();
    ASSERT_TRUE(again.ok()) << what << ": " << again.error().message();
    EXPECT_TRUE(again->ok()) << what << ", after more workload: " << again->summary();
  }

  // virsh migrate --live to b with `xml`, which must fail; libvirt's error.
  std::string refused(const std::string& xml, const std::string& what) {
    Exit e = virsh(local_uri(),
                   {"migrate", "--live", kDomain, remote_uri(h_.peer_role()), "--xml", xml});
    EXPECT_NE(e.rc, 0) << what << ": the migration succeeded";
    say(what + ": libvirt says: " + e.err);
    return e.err;
  }

  // virsh migrate --live --p2p to b with `xml` at 1 MiB/s, so it stays in pre-copy,
  // with the workload running; then `fault` while the job runs. The migration must
  // fail: libvirt's error. Peer to peer, a's libvirtd drives the migration and watches
  // b's through keepalives (lab-libvirtd.sh), which is what ends the job when b falls
  // silent: the QEMUs' stream alone would wait for TCP to give up.
  std::string interrupted(Harness& harness, const std::string& xml, const std::string& what,
                          const std::function<void()>& fault) {
    Exit e;
    std::thread migration([&] {
      e = virsh(local_uri(), {"migrate", "--live", "--p2p", kDomain, remote_uri(h_.peer_role()),
                              "--xml", xml, "--bandwidth", "1"});
    });
    const bool started = migrating(120s);
    if (started) {
      auto w = harness.run_workload(1500ms);
      EXPECT_TRUE(w.ok()) << w.error().message();
      EXPECT_TRUE(migrating(0s)) << what << ": the migration ended before the fault";
      fault();
    }
    migration.join();
    EXPECT_TRUE(started) << what << ": no migration job appeared: " << e.err;
    EXPECT_NE(e.rc, 0) << what << ": the migration succeeded";
    say(what + ": libvirt says: " + e.err);
    return e.err;
  }

  // Waits until b's libvirtd has no domain left (the one a failed migration started).
  void b_clean(const std::string& what) {
    Exit list;
    for (int tries = 0; tries < 240; ++tries) {
      list = lab::run("virsh", {"-c", remote_uri(h_.peer_role()), "list", "--all", "--name"});
      if (list.rc == 0 && list.out.find(kDomain) == std::string::npos) return;
      std::this_thread::sleep_for(500ms);
    }
    ADD_FAILURE() << what << ": b still has the domain, or its libvirtd does not answer (rc "
                  << list.rc << "):\n"
                  << list.out << list.err;
  }

  // QEMU >= 8.1 (v2): a paused VM's save ends only if QEMU may count on a switchover
  // bandwidth (README, "Migrating with libvirt"), which libvirt has no setting for: set
  // it through libvirt's monitor passthrough, as an operator would, before each save
  // (a restored VM is a new QEMU, with the default 0).
  void before_save() {
    if (property_ != "enable-migration") return;
    Exit e = virsh(
        local_uri(),
        {"qemu-monitor-command", kDomain,
         R"({"execute":"migrate-set-parameters","arguments":{"avail-switchover-bandwidth":1073741824}})"});
    ASSERT_EQ(e.rc, 0) << e.err;
  }

  void source_host() {
    std::vector<mdev::MdevInstance> inst;
    auto m = mdev::MdevInstance::create("quarter");
    ASSERT_TRUE(m.ok()) << m.error().message();
    const std::string uuid = m->uuid();
    inst.push_back(std::move(*m));
    HarnessOptions opt;
    opt.vm.machine = kMachine;
    opt.irq = IrqMode::kMsi;
    opt.seed = 11;
    opt.log = say;
    auto hr = Harness::create(opt, std::move(inst));
    ASSERT_TRUE(hr.ok()) << hr.error().message();
    Harness& harness = **hr;

    // The shipped example is a domain libvirt accepts.
    std::string example =
        replaced(lab::read_file(MDEVMIG_EXAMPLE_DOMAIN).value_or(""), "MDEV-UUID", uuid);
    ASSERT_FALSE(example.empty()) << MDEVMIG_EXAMPLE_DOMAIN;
    // (The lab has no KVM: the same domain under TCG.)
    example = replaced(replaced(example, "type='kvm'", "type='qemu'"),
                       property_attributes("x-enable-migration"), property_attributes(property_));
    ASSERT_TRUE(write_text(harness.dir() + "/example.xml", example));
    Exit ex = virsh(local_uri(), {"define", "--validate", harness.dir() + "/example.xml"});
    ASSERT_EQ(ex.rc, 0) << ex.err;
    ASSERT_EQ(virsh(local_uri(), {"undefine", "mdevmig-example"}).rc, 0);

    // Start: the harness brings the device up and runs its workload.
    const std::string xml = harness.dir() + "/domain.xml";
    ASSERT_TRUE(write_text(xml, domain_xml(uuid, property_)));
    Exit def = virsh(local_uri(), {"define", xml});
    ASSERT_EQ(def.rc, 0) << def.err;
    Exit start = virsh(local_uri(), {"start", kDomain});
    ASSERT_EQ(start.rc, 0) << start.err;
    {
      auto vm = Vm::attach("started", uuid, Endpoint::tcp("127.0.0.1", kControlPort));
      ASSERT_TRUE(vm.ok()) << vm.error().message();
      auto boot = harness.boot_in(std::move(*vm), 0);
      ASSERT_TRUE(boot.ok()) << boot.error().message();
      ASSERT_TRUE(boot->ok()) << boot->summary();
      ASSERT_TRUE(harness.run_workload(300ms).ok());
    }

    // virsh save / restore: the state goes through a file and comes back.
    const std::string saved = harness.dir() + "/vm.save";
    before_save();
    if (HasFatalFailure()) return;
    Exit save = virsh(local_uri(), {"save", kDomain, saved});
    ASSERT_EQ(save.rc, 0) << save.err;
    EXPECT_EQ(virsh(local_uri(), {"domstate", kDomain}).out.find("running"), std::string::npos);
    Exit restore = virsh(local_uri(), {"restore", saved});
    ASSERT_EQ(restore.rc, 0) << restore.err;
    moved(harness, "127.0.0.1", 0, "restored");
    if (HasFatalFailure()) return;

    // virsh managedsave, then start: libvirt restores its own save image.
    before_save();
    if (HasFatalFailure()) return;
    Exit ms = virsh(local_uri(), {"managedsave", kDomain});
    ASSERT_EQ(ms.rc, 0) << ms.err;
    EXPECT_NE(virsh(local_uri(), {"dominfo", kDomain}).out.find("Managed save:   yes"),
              std::string::npos);
    Exit again = virsh(local_uri(), {"start", kDomain});
    ASSERT_EQ(again.rc, 0) << again.err;
    moved(harness, "127.0.0.1", 0, "started from its managed save");
    if (HasFatalFailure()) return;

    auto ready = lab::take(h_, "b-ready", 900s);
    ASSERT_TRUE(ready);
    std::istringstream words(*ready);
    std::string b_uuid, b_property, b_eighth;
    words >> b_uuid >> b_property >> b_eighth;
    ASSERT_FALSE(b_eighth.empty()) << "b-ready: " << *ready;
    Exit mx = virsh(local_uri(), {"dumpxml", kDomain, "--migratable"});
    ASSERT_EQ(mx.rc, 0) << mx.err;
    const std::string here_xml = mx.out;
    ASSERT_NE(here_xml.find(property_attributes(property_)), std::string::npos)
        << "no override to retarget:\n"
        << here_xml;
    auto for_b = [&](const std::string& b_inst, const std::string& name) {
      std::string path = harness.dir() + "/" + name + ".xml";
      EXPECT_TRUE(write_text(path, retargeted(here_xml, uuid, b_inst, property_, b_property)));
      return path;
    };

    // Migrations that must fail, each leaving the VM running on a with its state.
    // b has no such instance: libvirt on b refuses before anything moves.
    const std::string missing = lab::random_uuid();
    expect_says("no instance", refused(for_b(missing, "b-missing"), "no instance"),
                {"mediated device", missing.c_str(), "not found"});
    still_here(harness, "after the migration to no instance");
    if (HasFatalFailure()) return;

    // b's instance is an eighth: QEMU on b starts, and the device refuses the stream's
    // first bytes (the compatibility descriptor names another type; b's kernel log says
    // so). libvirt passes on b's QEMU's last words ("load of migration failed: ..."), in
    // its own frame (9.0: "qemu unexpectedly closed the monitor: ...", 11.3: "migration
    // failed. Message from the source host: ... Message from the destination host:
    // ..."), or, libvirt 9.0 as the source, now and then a's QEMU's own failure when it
    // comes first ("job 'migration out' failed: Unable to write to socket: ...").
    const std::string err_type = refused(for_b(b_eighth, "b-eighth"), "wrong type");
    EXPECT_TRUE(err_type.find("load of migration failed") != std::string::npos ||
                err_type.find("job 'migration out' failed") != std::string::npos)
        << "wrong type: libvirt's error does not say that the migration failed: " << err_type;
    EXPECT_EQ(ask_b("kernel-says mdev type mismatch").value_or(""), "yes")
        << "b's mdevmig did not refuse the stream for its type";
    still_here(harness, "after the migration to an instance of the wrong type");
    if (HasFatalFailure()) return;
    b_clean("wrong type");

    // b has no mdevmig module (nor, then, its instances): refused as for no instance.
    ASSERT_TRUE(ask_b("unload"));
    expect_says("no module", refused(for_b(b_uuid, "b-unloaded"), "no module"),
                {"mediated device", b_uuid.c_str(), "not found"});
    still_here(harness, "after the migration to a host without the module");
    if (HasFatalFailure()) return;
    auto loaded = ask_b("load");
    ASSERT_TRUE(loaded);
    b_uuid = *loaded;

    // The network between the hosts drops mid-migration: b's NIC goes down during
    // pre-copy, and comes back once the migration has failed.
    const std::string err_drop = interrupted(harness, for_b(b_uuid, "b-drop"), "network drop",
                                             [&] { ASSERT_TRUE(ask_b("link-down")); });
    ASSERT_TRUE(ask_b("link-up"));
    expect_lost_destination("network drop", err_drop);
    still_here(harness, "after the network dropped");
    if (HasFatalFailure()) return;
    b_clean("network drop");

    // a -> b, live, naming b's instance, with the workload running during pre-copy:
    // b takes the VM after all of the above.
    // libvirt starts at 1 MiB/s, where it cannot switch over for a while: the device's
    // first pre-copy pass alone (16 MiB of device memory) takes 16 s. Once the workload
    // has run and drained, the bandwidth goes up and libvirt finishes.
    const std::string b_xml = for_b(b_uuid, "b");
    Exit there;
    std::thread migration([&] {
      there = virsh(local_uri(), {"migrate", "--live", kDomain, remote_uri(h_.peer_role()), "--xml",
                                  b_xml, "--bandwidth", "1"});
    });
    const bool started = migrating(60s);
    if (started) {
      auto w = harness.run_workload(1500ms);
      EXPECT_TRUE(w.ok()) << w.error().message();
      EXPECT_TRUE(migrating(0s))
          << "the migration ended before the workload did: it did not run during pre-copy";
    }
    (void)virsh(local_uri(), {"migrate-setspeed", kDomain, "1024"});
    migration.join();
    ASSERT_TRUE(started) << "no migration job appeared: " << there.err;
    ASSERT_EQ(there.rc, 0) << there.err;
    std::fprintf(stderr, "a -> b through libvirt:\n%s", job_figures(local_uri()).c_str());
    moved(harness, h_.peer, Harness::kRemote, "migrated to b");
    if (HasFatalFailure()) return;

    // b -> a, live, back onto a's instance (libvirt on b drives it; virsh runs here).
    const std::string a_xml = harness.dir() + "/a.xml";
    Exit bx = virsh(remote_uri(h_.peer_role()), {"dumpxml", kDomain, "--migratable"});
    ASSERT_EQ(bx.rc, 0) << bx.err;
    ASSERT_NE(bx.out.find(property_attributes(b_property)), std::string::npos)
        << "no override to retarget:\n"
        << bx.out;
    ASSERT_TRUE(write_text(a_xml, retargeted(bx.out, b_uuid, uuid, b_property, property_)));
    Exit back = virsh(remote_uri(h_.peer_role()),
                      {"migrate", "--live", kDomain, remote_uri(h_.role), "--xml", a_xml});
    ASSERT_EQ(back.rc, 0) << back.err;
    // (b's domain was transient and is gone: the destination keeps the job's figures.)
    std::fprintf(stderr, "b -> a through libvirt:\n%s", job_figures(local_uri()).c_str());
    moved(harness, "127.0.0.1", 0, "migrated back to a");
    if (HasFatalFailure()) return;

    // Host b dies mid-migration: its guest is killed (pair.sh), nothing more comes from
    // it. Last, since b is gone after it.
    const std::string err_kill = interrupted(harness, for_b(b_uuid, "b-killed"), "host b killed",
                                             [&] { lab::put(h_, h_.peer_role() + ".kill", "1"); });
    expect_lost_destination("host b killed", err_kill);
    still_here(harness, "after host b died");
    if (HasFatalFailure()) return;
    EXPECT_NE(lab::run("timeout", {"10", "virsh", "-c", remote_uri(h_.peer_role()), "version"}).rc,
              0)
        << "host b still answers";

    ASSERT_EQ(virsh(local_uri(), {"destroy", kDomain}).rc, 0);
    harness.release();
  }

  PairHost h_ = lab::pair_host();
  std::string property_;
  int b_commands_ = 0;
};

TEST_F(LibvirtTwoHosts, StartSaveRestoreFailuresAndMigrateToBAndBack) {
  if (h_.role == "a")
    source_host();
  else
    destination_host();
}

}  // namespace
}  // namespace mdevmig::qemu
