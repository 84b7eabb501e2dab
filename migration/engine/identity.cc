#include "migration/engine/identity.h"

#include <linux/mdevmig.h>
#include <linux/pci_regs.h>

#include <algorithm>
#include <cstdio>
#include <fstream>

#include "migration/vfio/uapi.h"

namespace mdevmig::engine {
namespace {

std::string read_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

std::string hex16(uint16_t v) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "%04x", v);
  return buf;
}

Error incompatible(std::string what) {
  return Error::make_verdict(schema::kIncompatibleErrno, "compatibility check", std::move(what));
}

}  // namespace

bool is_mdevmig(const schema::DeviceIdentity& id) {
  return id.pci_vendor == MDEVMIG_PCI_VENDOR_ID && id.pci_device == MDEVMIG_PCI_DEVICE_ID;
}

Result<schema::DeviceIdentity> read_identity(const vfio::Device& dev, std::string_view uuid,
                                             std::string_view sysfs_path) {
  schema::DeviceIdentity id;
  id.uuid = std::string(uuid);
  id.sysfs_path = std::string(sysfs_path);
  id.vfio_flags = dev.info().flags;
  auto flags = dev.migration_flags();
  id.migration_flags = flags.ok() ? *flags : 0;
  if (!sysfs_path.empty()) id.device_api = read_line(id.sysfs_path + "/mdev_type/device_api");
  const bool pci = (dev.info().flags & VFIO_DEVICE_FLAGS_PCI) != 0;
  if (id.device_api.empty() && pci) id.device_api = "vfio-pci";
  for (uint32_t i = 0; i < dev.info().num_regions; ++i) {
    auto r = dev.region(i);
    id.region_sizes.push_back(r.ok() ? (*r)->size : 0);
  }
  if (pci) {
    constexpr uint32_t kCfg = VFIO_PCI_CONFIG_REGION_INDEX;
    id.pci_vendor = MDEVMIG_TRY(dev.read_as<uint16_t>(kCfg, PCI_VENDOR_ID));
    id.pci_device = MDEVMIG_TRY(dev.read_as<uint16_t>(kCfg, PCI_DEVICE_ID));
    id.pci_sub_vendor = MDEVMIG_TRY(dev.read_as<uint16_t>(kCfg, PCI_SUBSYSTEM_VENDOR_ID));
    id.pci_sub_device = MDEVMIG_TRY(dev.read_as<uint16_t>(kCfg, PCI_SUBSYSTEM_ID));
  }
  if (is_mdevmig(id)) {
    constexpr uint32_t kBar0 = VFIO_PCI_BAR0_REGION_INDEX;
    const uint32_t magic = MDEVMIG_TRY(dev.read_as<uint32_t>(kBar0, MDEVMIG_REG_ID));
    if (magic != MDEVMIG_ID_MAGIC) {
      return Error::make(EPROTO, "read identity",
                         dev.name() + ": mdevmig IDs but no register magic");
    }
    schema::Compat c;
    c.stream_version = MDEVMIG_STREAM_VERSION;
    c.model_version = MDEVMIG_TRY(dev.read_as<uint32_t>(kBar0, MDEVMIG_REG_VERSION));
    c.type_id = MDEVMIG_TRY(dev.read_as<uint32_t>(kBar0, MDEVMIG_REG_TYPE_ID));
    c.page_size = MDEVMIG_PAGE_SIZE;
    const uint64_t lo = MDEVMIG_TRY(dev.read_as<uint32_t>(kBar0, MDEVMIG_REG_MEM_SIZE_LO));
    const uint64_t hi = MDEVMIG_TRY(dev.read_as<uint32_t>(kBar0, MDEVMIG_REG_MEM_SIZE_HI));
    c.mem_size = lo | (hi << 32);
    id.compat = c;
  }
  return id;
}

Result<void> check_compatible(const schema::DeviceIdentity& src,
                              const schema::DeviceIdentity& dst) {
  if (src.device_api != dst.device_api) {
    return incompatible("device API '" + src.device_api + "' vs '" + dst.device_api + "'");
  }
  if (src.pci_vendor != dst.pci_vendor || src.pci_device != dst.pci_device ||
      src.pci_sub_vendor != dst.pci_sub_vendor || src.pci_sub_device != dst.pci_sub_device) {
    return incompatible("PCI IDs " + hex16(src.pci_vendor) + ":" + hex16(src.pci_device) + " (" +
                        hex16(src.pci_sub_vendor) + ":" + hex16(src.pci_sub_device) + ") vs " +
                        hex16(dst.pci_vendor) + ":" + hex16(dst.pci_device) + " (" +
                        hex16(dst.pci_sub_vendor) + ":" + hex16(dst.pci_sub_device) + ")");
  }
  if (src.region_sizes != dst.region_sizes) {
    const std::size_t n = std::max(src.region_sizes.size(), dst.region_sizes.size());
    for (std::size_t i = 0; i < n; ++i) {
      const uint64_t a = i < src.region_sizes.size() ? src.region_sizes[i] : 0;
      const uint64_t b = i < dst.region_sizes.size() ? dst.region_sizes[i] : 0;
      if (a != b) {
        return incompatible("region " + std::to_string(i) + " size " + std::to_string(a) + " vs " +
                            std::to_string(b));
      }
    }
    return incompatible("region count " + std::to_string(src.region_sizes.size()) + " vs " +
                        std::to_string(dst.region_sizes.size()));
  }
  if (src.compat.has_value() != dst.compat.has_value()) {
    return incompatible("compatibility descriptor on one side only");
  }
  if (src.compat) {
    const schema::Compat& a = *src.compat;
    const schema::Compat& b = *dst.compat;
    auto field = [](const char* name, uint64_t x, uint64_t y) {
      return incompatible(std::string(name) + " " + std::to_string(x) + " vs " + std::to_string(y));
    };
    if (a.stream_version != b.stream_version)
      return field("stream version", a.stream_version, b.stream_version);
    if (a.model_version != b.model_version)
      return field("model version", a.model_version, b.model_version);
    if (a.type_id != b.type_id) return field("mdev type id", a.type_id, b.type_id);
    if (a.page_size != b.page_size) return field("page size", a.page_size, b.page_size);
    if (a.mem_size != b.mem_size) return field("device memory size", a.mem_size, b.mem_size);
  }
  return ok();
}

}  // namespace mdevmig::engine
