// Lab group "device", PCI parent: the lab gives the guest an ivshmem-plain function
// (tools/lab/lab.sh --ivshmem); binding it to mdevmig with driver_override makes it a
// parent whose memory BAR backs instances.
#include <linux/vfio.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/instance.h"
#include "common/sysfs.h"
#include "migration/vfio/mdev.h"

namespace mdevmig::lab {
namespace {

// PCI address of the first function with these IDs, or "".
std::string find_pci(const std::string& vendor, const std::string& device) {
  for (const auto& bdf : list_dir("/sys/bus/pci/devices")) {
    const std::string d = "/sys/bus/pci/devices/" + bdf;
    if (read_file(d + "/vendor") == vendor && read_file(d + "/device") == device) return bdf;
  }
  return "";
}

TEST(PciParent, IvshmemFunctionBecomesAParentAndBacksInstances) {
  MDEVMIG_REQUIRE_LAB();
  // Instances on PCI parents are mmap-able only when the administrator opts in.
  ASSERT_EQ(write_file("/sys/module/mdevmig/parameters/pci_bar2_mmap", "Y"), 0);
  const std::string bdf = find_pci("0x1af4", "0x1110");
  ASSERT_FALSE(bdf.empty()) << "the lab was not started with --ivshmem";
  const std::string dev = "/sys/bus/pci/devices/" + bdf;
  ASSERT_EQ(write_file(dev + "/driver_override", "mdevmig"), 0);
  ASSERT_EQ(write_file("/sys/bus/pci/drivers_probe", bdf), 0);
  ASSERT_EQ(read_file(dev + "/driver/module/refcnt").has_value(), true);

  auto types = list_dir("/sys/class/mdev_bus/" + bdf + "/mdev_supported_types");
  ASSERT_EQ(types.size(), 4u);
  EXPECT_EQ(read_file(type_dir(bdf, "full") + "/name"), "mdevmig 32M");
  {
    Instance a(bdf, "half"), b(bdf, "half");
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(read_file(type_dir(bdf, "eighth") + "/available_instances"), "0");
    auto ma = vfio::open_mdev(a.uuid());
    auto mb = vfio::open_mdev(b.uuid());
    ASSERT_TRUE(ma.ok() && mb.ok());
    auto map_a = ma.value().device.mmap_region(VFIO_PCI_BAR2_REGION_INDEX, 0);
    ASSERT_TRUE(map_a.ok()) << map_a.error().message();
    std::memset(map_a.value().data(), 0xc3, 16u << 20);
    std::vector<uint8_t> buf(4096);
    ASSERT_TRUE(ma.value()
                    .device
                    .read(VFIO_PCI_BAR2_REGION_INDEX, (16u << 20) - 4096,
                          std::as_writable_bytes(std::span(buf)))
                    .ok());
    EXPECT_EQ(std::count(buf.begin(), buf.end(), 0xc3), 4096);
    ASSERT_TRUE(
        mb.value()
            .device.read(VFIO_PCI_BAR2_REGION_INDEX, 0, std::as_writable_bytes(std::span(buf)))
            .ok());
    EXPECT_EQ(std::count(buf.begin(), buf.end(), 0), 4096) << "instance b sees a's writes";
  }
  // Unbinding removes the parent, and with it an instance it still has.
  Instance live(bdf, "quarter");
  ASSERT_TRUE(live.ok());
  ASSERT_EQ(write_file(dev + "/driver/unbind", bdf), 0);
  EXPECT_TRUE(list_dir("/sys/class/mdev_bus/" + bdf).empty());
  EXPECT_NE(access(live.sysfs_dir().c_str(), F_OK), 0) << "instance outlived its parent";
  ASSERT_EQ(write_file(dev + "/driver_override", "\n"), 0);
  ASSERT_EQ(write_file("/sys/module/mdevmig/parameters/pci_bar2_mmap", "N"), 0);
}

TEST(SimParent, AddedAndRemovedAtRunTime) {
  MDEVMIG_REQUIRE_LAB();
  auto before = mdevmig_parents();
  ASSERT_EQ(write_file("/sys/class/mdevmig/sim_add", "8"), 0);
  auto after = mdevmig_parents();
  ASSERT_EQ(after.size(), before.size() + 1);
  std::string added;
  for (const auto& p : after)
    if (std::find(before.begin(), before.end(), p) == before.end()) added = p;
  ASSERT_FALSE(added.empty());
  EXPECT_EQ(read_file(type_dir(added, "eighth") + "/name"), "mdevmig 1M");
  EXPECT_NE(write_file("/sys/class/mdevmig/sim_add", "3"), 0) << "not a power of two";
  EXPECT_NE(write_file("/sys/class/mdevmig/sim_add", "0"), 0);
  {
    Instance busy(added, "full");
    ASSERT_TRUE(busy.ok());
    EXPECT_EQ(write_file("/sys/class/mdevmig/sim_remove", added), -EBUSY);
  }
  EXPECT_EQ(write_file("/sys/class/mdevmig/sim_remove", added), 0);
  EXPECT_EQ(mdevmig_parents().size(), before.size());
  EXPECT_EQ(write_file("/sys/class/mdevmig/sim_remove", "mdevmig_sim999"), -ENODEV);
}

}  // namespace
}  // namespace mdevmig::lab
