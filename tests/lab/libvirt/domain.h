// What the libvirt lab tests (libvirt_test.cc) and the libvirt-against-QEMU benchmark
// (paths_bench.cc) share: the lab's domain, virsh with a log line, and how a domain's XML
// is made for the other host.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/process.h"

namespace mdevmig::qemu {

inline constexpr const char* kDomain = "mdevmig-vm";
// Every supported QEMU knows this machine type, so the same domain runs on a bookworm
// host (QEMU 7.2) and a trixie host (QEMU 10.0), and migrates between them.
inline constexpr const char* kMachine = "pc-q35-7.2";
inline constexpr uint32_t kMemMb = 128;
// The device's slot on the root bus, where the qtest guest's PCI scan looks.
inline constexpr const char* kSlot = "0x5";
// The VM's extra QMP monitor for the harness; its qtest socket is on the next port.
inline constexpr uint16_t kControlPort = 4400;
// The HLT-only BIOS, at the same path on both hosts: the destination's QEMU loads the
// firmware the domain names, as it would a real one.
inline constexpr const char* kBios = "/var/lib/libvirt/qemu/mdevmig-halt.bin";

// A log line on stderr with the seconds since the program began (the lab's logs have no
// times).
void say(const std::string& s);

std::string local_uri();
// The other lab host's libvirtd, by the host name lab-libvirtd.sh gives each host.
std::string remote_uri(const std::string& role);

// virsh -c URI ARGS..., logged with its exit status and how long it took.
lab::Exit virsh(const std::string& uri, std::vector<std::string> args);

// The property that turns VFIO migration on for this host's QEMU ("" if it has none).
std::string migration_property();
// The <qemu:property> attributes (as virsh dumpxml writes them) that set `property`.
std::string property_attributes(const std::string& property);

// The lab's domain: the HLT-only BIOS, no disk, the instance `uuid` in kSlot, VFIO migration on
// through libvirt's per-device QEMU property override, QMP and qtest for the harness on TCP.
std::string domain_xml(const std::string& uuid, const std::string& property);

// A domain's XML (virsh dumpxml --migratable) made for another host: its instance and the
// property its QEMU wants instead of this host's.
std::string retargeted(const std::string& xml, const std::string& uuid, const std::string& to_uuid,
                       const std::string& property, const std::string& to_property);

// `text` with every `from` replaced by `to`.
std::string replaced(std::string text, const std::string& from, const std::string& to);
// Writes `text` to `path` (replacing it); false if it could not.
bool write_text(const std::string& path, const std::string& text);

}  // namespace mdevmig::qemu
