// Lab group "module": the module registers sim parents and mdev types, instances are
// created and removed through the standard mdev sysfs files, slices never overlap.
#include <unistd.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/sysfs.h"

namespace mdevmig::lab {
namespace {

const std::vector<std::string> kTypes = {"full", "half", "quarter", "eighth"};

class ModuleTest : public testing::Test {
 protected:
  void SetUp() override {
    MDEVMIG_REQUIRE_LAB();
    auto parents = mdevmig_parents();
    ASSERT_FALSE(parents.empty()) << "no mdevmig parent in /sys/class/mdev_bus";
    parent_ = parents.front();
  }
  void TearDown() override {
    for (const auto& u : created_) write_file("/sys/bus/mdev/devices/" + u + "/remove", "1");
  }

  // Creates an instance of `type`; returns its UUID, or "" with errno-ish in *err.
  std::string create(const std::string& type, int* err = nullptr) {
    std::string uuid = random_uuid();
    int rc = write_file(type_dir(parent_, type) + "/create", uuid);
    if (err) *err = rc;
    if (rc != 0) return "";
    created_.push_back(uuid);
    return uuid;
  }
  int remove(const std::string& uuid) {
    int rc = write_file("/sys/bus/mdev/devices/" + uuid + "/remove", "1");
    if (rc == 0) std::erase(created_, uuid);
    return rc;
  }
  int available(const std::string& type) {
    auto v = read_file(type_dir(parent_, type) + "/available_instances");
    return v ? std::stoi(*v) : -1;
  }

  std::string parent_;
  std::vector<std::string> created_;
};

TEST_F(ModuleTest, ParentOffersFourTypesWithStandardAttributes) {
  auto types = list_dir("/sys/class/mdev_bus/" + parent_ + "/mdev_supported_types");
  ASSERT_EQ(types.size(), kTypes.size());
  int expected_avail = 1;
  for (const auto& t : kTypes) {
    const std::string dir = type_dir(parent_, t);
    EXPECT_EQ(read_file(dir + "/device_api"), "vfio-pci") << t;
    auto name = read_file(dir + "/name");
    ASSERT_TRUE(name) << t;
    EXPECT_EQ(name->rfind("mdevmig ", 0), 0u) << *name;
    auto desc = read_file(dir + "/description");
    ASSERT_TRUE(desc) << t;
    EXPECT_NE(desc->find("MiB of device memory"), std::string::npos) << *desc;
    EXPECT_EQ(available(t), expected_avail) << t;
    expected_avail *= 2;
  }
}

TEST_F(ModuleTest, CreateAndRemoveAnInstance) {
  std::string uuid = create("eighth");
  ASSERT_FALSE(uuid.empty());
  const std::string dev = "/sys/bus/mdev/devices/" + uuid;
  EXPECT_EQ(access(dev.c_str(), F_OK), 0);
  // The instance sits in an IOMMU group of its own: /dev/vfio/<group> exists.
  char link[256] = {};
  ssize_t n = readlink((dev + "/iommu_group").c_str(), link, sizeof link - 1);
  ASSERT_GT(n, 0);
  std::string group = std::string(link).substr(std::string(link).rfind('/') + 1);
  EXPECT_EQ(access(("/dev/vfio/" + group).c_str(), F_OK), 0) << group;
  EXPECT_EQ(available("eighth"), 7);
  EXPECT_EQ(available("quarter"), 3);
  EXPECT_EQ(available("half"), 1);
  EXPECT_EQ(available("full"), 0);
  ASSERT_EQ(remove(uuid), 0);
  EXPECT_NE(access(dev.c_str(), F_OK), 0);
  EXPECT_EQ(available("full"), 1);
  EXPECT_EQ(available("eighth"), 8);
}

TEST_F(ModuleTest, SlicesNeverOverlapAndExhaustCleanly) {
  ASSERT_FALSE(create("half").empty());
  ASSERT_FALSE(create("quarter").empty());
  ASSERT_FALSE(create("eighth").empty());
  EXPECT_EQ(available("eighth"), 1);
  EXPECT_EQ(available("quarter"), 0);
  int err = 0;
  EXPECT_TRUE(create("quarter", &err).empty());
  EXPECT_NE(err, 0);
  ASSERT_FALSE(create("eighth").empty());
  EXPECT_EQ(available("eighth"), 0);
  EXPECT_TRUE(create("eighth", &err).empty());
  EXPECT_NE(err, 0);
}

TEST_F(ModuleTest, BadCreateRequestsAreRefused) {
  EXPECT_NE(write_file(type_dir(parent_, "eighth") + "/create", "not-a-uuid"), 0);
  std::string uuid = create("eighth");
  ASSERT_FALSE(uuid.empty());
  EXPECT_NE(write_file(type_dir(parent_, "eighth") + "/create", uuid), 0)
      << "duplicate UUID accepted";
  EXPECT_EQ(available("eighth"), 7);
}

TEST_F(ModuleTest, RepeatedCreateRemoveLeavesNothingBehind) {
  for (int i = 0; i < 40; ++i) {
    std::string uuid = create(kTypes[i % kTypes.size()]);
    ASSERT_FALSE(uuid.empty()) << "round " << i;
    ASSERT_EQ(remove(uuid), 0) << "round " << i;
  }
  EXPECT_EQ(available("full"), 1);
  EXPECT_TRUE(list_dir("/sys/bus/mdev/devices").empty());
}

}  // namespace
}  // namespace mdevmig::lab
