#include "libvirt/domain.h"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "tools/qemu/process.h"

namespace mdevmig::qemu {

void say(const std::string& s) {
  static const auto t0 = std::chrono::steady_clock::now();
  const std::chrono::duration<double> t = std::chrono::steady_clock::now() - t0;
  std::fprintf(stderr, "  [libvirt %6.1f] %s\n", t.count(), s.c_str());
}

std::string local_uri() { return "qemu:///system"; }

std::string remote_uri(const std::string& role) {
  return "qemu+tcp://mdevmig-lab-" + role + "/system";
}

lab::Exit virsh(const std::string& uri, std::vector<std::string> args) {
  args.insert(args.begin(), {"-c", uri});
  const auto t0 = std::chrono::steady_clock::now();
  lab::Exit e = lab::run("virsh", args);
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - t0;
  std::string cmd = "virsh";
  for (const auto& a : args) cmd += " " + a;
  char secs[32];
  std::snprintf(secs, sizeof secs, " (%.1f s)", took.count());
  say(cmd + " -> " + std::to_string(e.rc) + secs);
  return e;
}

std::string migration_property() {
  auto p = resolve_vfio_protocol(VfioProtocol::kAuto, "qemu-system-x86_64");
  if (!p) return "";
  return *p == VfioProtocol::kV1 ? "x-enable-migration" : "enable-migration";
}

// QEMU 7.2's x-enable-migration is a bool; QEMU 8.1 replaced it with enable-migration, an
// on/off/auto property, which the JSON -device that libvirt passes accepts only as a
// string: type='bool' makes QEMU 10.0 refuse to start ("Invalid parameter type for
// 'enable-migration', expected: string").
std::string property_attributes(const std::string& property) {
  return property == "x-enable-migration" ? "name='x-enable-migration' type='bool' value='true'"
                                          : "name='" + property + "' type='string' value='on'";
}

std::string domain_xml(const std::string& uuid, const std::string& property) {
  std::ostringstream x;
  x << "<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>\n"
    << "  <name>" << kDomain << "</name>\n"
    << "  <memory unit='MiB'>" << kMemMb << "</memory>\n"
    << "  <vcpu>1</vcpu>\n"
    << "  <os>\n"
    << "    <type arch='x86_64' machine='" << kMachine << "'>hvm</type>\n"
    << "    <loader type='rom'>" << kBios << "</loader>\n"
    << "  </os>\n"
    << "  <devices>\n"
    << "    <controller type='usb' model='none'/>\n"
    << "    <memballoon model='none'/>\n"
    << "    <hostdev mode='subsystem' type='mdev' model='vfio-pci'>\n"
    << "      <source><address uuid='" << uuid << "'/></source>\n"
    << "      <address type='pci' domain='0x0000' bus='0x00' slot='" << kSlot
    << "' function='0x0'/>\n"
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

std::string retargeted(const std::string& xml, const std::string& uuid, const std::string& to_uuid,
                       const std::string& property, const std::string& to_property) {
  return replaced(replaced(xml, uuid, to_uuid), property_attributes(property),
                  property_attributes(to_property));
}

std::string replaced(std::string text, const std::string& from, const std::string& to) {
  for (std::size_t at = 0; (at = text.find(from, at)) != std::string::npos; at += to.size())
    text.replace(at, from.size(), to);
  return text;
}

bool write_text(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::trunc);
  f << text;
  return static_cast<bool>(f.flush());
}

}  // namespace mdevmig::qemu
