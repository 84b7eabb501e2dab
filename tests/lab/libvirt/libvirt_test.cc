// Lab group "libvirt_two_hosts": a VM with an mdevmig instance managed by libvirt the way
// operators run one, on two lab hosts (tools/lab/pair.sh) with libvirtd on each: the
// domain names its instance with <hostdev type='mdev'> and turns VFIO migration on
// through libvirt's per-device QEMU property override. On host a: virsh start, save and
// restore, managedsave and start, a migration to b that must be refused (b has no such
// instance), then virsh migrate --live to b (with the workload running during pre-copy)
// and back. Host b only runs libvirtd and
// holds an instance for the VM.
//
// The VM is the harness's qtest guest (tools/qemu): the domain adds a QMP monitor and a
// qtest socket on TCP to QEMU's command line, the harness drives the device's workload
// through them and, after every move, checks from the guest's side that the VM holds
// everything it did before (device memory, registers, the DMA ring, interrupts). The
// harness issues nothing while libvirt moves the VM.
//
// The machine type is pc-q35-7.2, which every supported QEMU knows, so the same test
// runs the upgrade pair (a: bookworm, libvirt 9.0, QEMU 7.2; b: trixie, libvirt 11,
// QEMU 10.0).
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "common/pair.h"
#include "common/process.h"
#include "common/sysfs.h"
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

constexpr const char* kDomain = "mdevmig-vm";
constexpr const char* kMachine = "pc-q35-7.2";
constexpr uint16_t kControlPort = 4400;  // the VM's extra QMP monitor; qtest on the next port
// The HLT-only BIOS, at the same path on both hosts: the destination's QEMU loads the
// firmware the domain names, as it would a real one.
constexpr const char* kBios = "/var/lib/libvirt/qemu/mdevmig-halt.bin";

void say(const std::string& s) { std::fprintf(stderr, "  [libvirt] %s\n", s.c_str()); }

std::string local_uri() { return "qemu:///system"; }
// The other lab host's libvirtd, by the host name lab-libvirtd.sh gives each host.
std::string remote_uri(const std::string& role) { return "qemu+tcp://mdevmig-lab-" + role + "/system"; }

Exit virsh(const std::string& uri, std::vector<std::string> args) {
  args.insert(args.begin(), {"-c", uri});
  Exit e = lab::run("virsh", args);
  std::string cmd = "virsh";
  for (const auto& a : args) cmd += " " + a;
  say(cmd + " -> " + std::to_string(e.rc));
  return e;
}

// The property that turns VFIO migration on for this host's QEMU.
std::string migration_property() {
  auto p = resolve_vfio_protocol(VfioProtocol::kAuto, "qemu-system-x86_64");
  if (!p) return "";
  return *p == VfioProtocol::kV1 ? "x-enable-migration" : "enable-migration";
}

// The <qemu:property> attributes (as virsh dumpxml writes them) that set `property` so
// VFIO migration is on. QEMU 7.2's x-enable-migration is a bool; QEMU 8.1 replaced it
// with enable-migration, an on/off/auto property, which the JSON -device that libvirt
// passes accepts only as a string: type='bool' makes QEMU 10.0 refuse to start
// ("Invalid parameter type for 'enable-migration', expected: string").
std::string property_attributes(const std::string& property) {
  return property == "x-enable-migration" ? "name='x-enable-migration' type='bool' value='true'"
                                          : "name='" + property + "' type='string' value='on'";
}

// The lab's domain: the harness's HLT-only BIOS, no disk, and the device on the root
// bus (where the qtest guest's PCI scan looks); QMP and qtest for the harness on TCP.
std::string domain_xml(const std::string& uuid, const std::string& property, const std::string& bios) {
  std::ostringstream x;
  x << "<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>\n"
    << "  <name>" << kDomain << "</name>\n"
    << "  <memory unit='MiB'>128</memory>\n"
    << "  <vcpu>1</vcpu>\n"
    << "  <os>\n"
    << "    <type arch='x86_64' machine='" << kMachine << "'>hvm</type>\n"
    << "    <loader type='rom'>" << bios << "</loader>\n"
    << "  </os>\n"
    << "  <devices>\n"
    << "    <controller type='usb' model='none'/>\n"
    << "    <memballoon model='none'/>\n"
    << "    <hostdev mode='subsystem' type='mdev' model='vfio-pci'>\n"
    << "      <source><address uuid='" << uuid << "'/></source>\n"
    << "      <address type='pci' domain='0x0000' bus='0x00' slot='0x05' function='0x0'/>\n"
    << "    </hostdev>\n"
    << "  </devices>\n"
    << "  <qemu:commandline>\n"
    << "    <qemu:arg value='-qmp'/>\n"
    << "    <qemu:arg value='tcp:0.0.0.0:" << kControlPort << ",server=on,wait=off'/>\n"
    << "    <qemu:arg value='-qtest'/>\n"
    << "    <qemu:arg value='tcp:0.0.0.0:" << kControlPort + 1 << ",server=on,wait=off'/>\n"
    << "    <qemu:arg value='-qtest-log'/>\n"
    << "    <qemu:arg value='none'/>\n"
    << "  </qemu:commandline>\n"
    << "  <qemu:override>\n"
    << "    <qemu:device alias='hostdev0'>\n"
    << "      <qemu:frontend>\n"
    << "        <qemu:property " << property_attributes(property) << "/>\n"
    << "      </qemu:frontend>\n"
    << "    </qemu:device>\n"
    << "  </qemu:override>\n"
    << "</domain>\n";
  return x.str();
}

bool write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::trunc);
  f << text;
  return static_cast<bool>(f.flush());
}

// `text` with every `from` replaced by `to`.
std::string replaced(std::string text, const std::string& from, const std::string& to) {
  for (std::size_t at = 0; (at = text.find(from, at)) != std::string::npos; at += to.size()) text.replace(at, from.size(), to);
  return text;
}

// A domain's XML (virsh dumpxml --migratable) made for another host: its instance and
// the property its QEMU wants instead of this host's.
std::string retargeted(const std::string& xml, const std::string& uuid, const std::string& to_uuid,
                       const std::string& property, const std::string& to_property) {
  return replaced(replaced(xml, uuid, to_uuid), property_attributes(property), property_attributes(to_property));
}

// The figures of a finished migration job, from virsh domjobinfo --completed.
std::string job_figures(const std::string& uri) {
  Exit e = virsh(uri, {"domjobinfo", kDomain, "--completed"});
  std::string out;
  std::istringstream lines(e.out);
  for (std::string l; std::getline(lines, l);)
    if (std::regex_search(l, std::regex("^(Time elapsed|Total downtime|Data processed|Memory processed|Expected downtime)")))
      out += "    " + l + "\n";
  return out;
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
    if (!h_.valid()) GTEST_FAIL() << "no pair environment (MDEVMIG_LAB_ROLE etc.): run under tools/lab/pair.sh";
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
                   lab::read_file("/var/log/libvirt/qemu/" + std::string(kDomain) + ".log").value_or("").c_str());
    }
    (void)virsh(local_uri(), {"destroy", kDomain});
    (void)virsh(local_uri(), {"undefine", kDomain, "--managed-save"});
  }

  // Host b: libvirtd and an instance for the VM; a drives both hosts' libvirtd.
  void destination_host() {
    auto inst = mdev::MdevInstance::create("quarter");
    ASSERT_TRUE(inst.ok()) << inst.error().message();
    lab::put(h_, "b-ready", inst->uuid() + " " + property_);
    ASSERT_TRUE(lab::take(h_, "a-done", 1500s));
    Exit list = virsh(local_uri(), {"list", "--all", "--name"});
    EXPECT_EQ(list.out.find(kDomain), std::string::npos) << "the VM is left on b:\n" << list.out;
  }

  // The VM moved (started, restored, migrated) into the QEMU whose QMP is on `host`:
  // the harness takes it there and verifies it.
  void moved(Harness& harness, const std::string& host, std::size_t instance, const std::string& what) {
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
    std::string example = replaced(lab::read_file(MDEVMIG_EXAMPLE_DOMAIN).value_or(""), "MDEV-UUID", uuid);
    ASSERT_FALSE(example.empty()) << MDEVMIG_EXAMPLE_DOMAIN;
    // (The lab has no KVM: the same domain under TCG.)
    example = replaced(replaced(example, "type='kvm'", "type='qemu'"), property_attributes("x-enable-migration"),
                       property_attributes(property_));
    ASSERT_TRUE(write_file(harness.dir() + "/example.xml", example));
    Exit ex = virsh(local_uri(), {"define", "--validate", harness.dir() + "/example.xml"});
    ASSERT_EQ(ex.rc, 0) << ex.err;
    ASSERT_EQ(virsh(local_uri(), {"undefine", "mdevmig-example"}).rc, 0);

    // Start: the harness brings the device up and runs its workload.
    const std::string xml = harness.dir() + "/domain.xml";
    ASSERT_TRUE(write_file(xml, domain_xml(uuid, property_, kBios)));
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
    Exit save = virsh(local_uri(), {"save", kDomain, saved});
    ASSERT_EQ(save.rc, 0) << save.err;
    EXPECT_EQ(virsh(local_uri(), {"domstate", kDomain}).out.find("running"), std::string::npos);
    Exit restore = virsh(local_uri(), {"restore", saved});
    ASSERT_EQ(restore.rc, 0) << restore.err;
    moved(harness, "127.0.0.1", 0, "restored");
    if (HasFatalFailure()) return;

    // virsh managedsave, then start: libvirt restores its own save image.
    Exit ms = virsh(local_uri(), {"managedsave", kDomain});
    ASSERT_EQ(ms.rc, 0) << ms.err;
    EXPECT_NE(virsh(local_uri(), {"dominfo", kDomain}).out.find("Managed save:   yes"), std::string::npos);
    Exit again = virsh(local_uri(), {"start", kDomain});
    ASSERT_EQ(again.rc, 0) << again.err;
    moved(harness, "127.0.0.1", 0, "started from its managed save");
    if (HasFatalFailure()) return;

    auto ready = lab::take(h_, "b-ready", 900s);
    ASSERT_TRUE(ready);
    std::istringstream words(*ready);
    std::string b_uuid, b_property;
    words >> b_uuid >> b_property;
    ASSERT_FALSE(b_property.empty()) << "b-ready: " << *ready;
    Exit mx = virsh(local_uri(), {"dumpxml", kDomain, "--migratable"});
    ASSERT_EQ(mx.rc, 0) << mx.err;
    const std::string here_xml = mx.out;
    ASSERT_NE(here_xml.find(property_attributes(property_)), std::string::npos) << "no override to retarget:\n" << here_xml;
    auto for_b = [&](const std::string& b_inst) { return retargeted(here_xml, uuid, b_inst, property_, b_property); };

    // Refused: b has no such instance. The VM stays on a, running, with its state.
    const std::string bad = harness.dir() + "/b-missing.xml";
    ASSERT_TRUE(write_file(bad, for_b(lab::random_uuid())));
    Exit refused = virsh(local_uri(), {"migrate", "--live", kDomain, remote_uri(h_.peer_role()), "--xml", bad});
    EXPECT_NE(refused.rc, 0) << "a migration to an instance that does not exist succeeded";
    say("refused as it must be: " + refused.err);
    EXPECT_NE(virsh(local_uri(), {"domstate", kDomain}).out.find("running"), std::string::npos);
    {
      auto v = harness.verify();
      ASSERT_TRUE(v.ok()) << v.error().message();
      EXPECT_TRUE(v->ok()) << "after the refused migration: " << v->summary();
    }

    // a -> b, live, naming b's instance, with the workload running during pre-copy.
    // libvirt starts at 1 MiB/s, where it cannot switch over for a while: the device's
    // first pre-copy pass alone (16 MiB of device memory) takes 16 s. Once the workload
    // has run and drained, the bandwidth goes up and libvirt finishes.
    const std::string b_xml = harness.dir() + "/b.xml";
    ASSERT_TRUE(write_file(b_xml, for_b(b_uuid)));
    Exit there;
    std::thread migration([&] {
      there = virsh(local_uri(), {"migrate", "--live", kDomain, remote_uri(h_.peer_role()), "--xml", b_xml,
                                  "--bandwidth", "1"});
    });
    const bool started = migrating(60s);
    if (started) {
      auto w = harness.run_workload(1500ms);
      EXPECT_TRUE(w.ok()) << w.error().message();
      EXPECT_TRUE(migrating(0s)) << "the migration ended before the workload did: it did not run during pre-copy";
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
    ASSERT_NE(bx.out.find(property_attributes(b_property)), std::string::npos) << "no override to retarget:\n" << bx.out;
    ASSERT_TRUE(write_file(a_xml, retargeted(bx.out, b_uuid, uuid, b_property, property_)));
    Exit back = virsh(remote_uri(h_.peer_role()), {"migrate", "--live", kDomain, remote_uri(h_.role), "--xml", a_xml});
    ASSERT_EQ(back.rc, 0) << back.err;
    // (b's domain was transient and is gone: the destination keeps the job's figures.)
    std::fprintf(stderr, "b -> a through libvirt:\n%s", job_figures(local_uri()).c_str());
    moved(harness, "127.0.0.1", 0, "migrated back to a");
    if (HasFatalFailure()) return;

    ASSERT_EQ(virsh(local_uri(), {"destroy", kDomain}).rc, 0);
    harness.release();
    lab::put(h_, "a-done", "1");
  }

  PairHost h_ = lab::pair_host();
  std::string property_;
};

TEST_F(LibvirtTwoHosts, StartSaveRestoreManagedSaveAndMigrateToBAndBack) {
  if (h_.role == "a") source_host();
  else destination_host();
}

}  // namespace
}  // namespace mdevmig::qemu
