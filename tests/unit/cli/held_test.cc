// The hand-over of `mdevmig hold` (tools/cli/held.h): the MDEVMIG_HELD syntax, and that
// fds which are not the named instance's group and a VFIO device are never adopted. The
// held instance itself is used in the lab (tests/lab/cli).
#include "tools/cli/held.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>

namespace mdevmig::cli {
namespace {

namespace fs = std::filesystem;

constexpr const char* kA = "6c1bd2a0-5f3e-4c59-9d0e-000000000a0a";
constexpr const char* kB = "6c1bd2a0-5f3e-4c59-9d0e-000000000b0b";

TEST(Held, ParsesAndFormatsEntries) {
  const std::string text = std::string(kA) + ":3:4 " + kB + ":5:6";
  auto held = parse_held(text);
  ASSERT_TRUE(held.ok()) << held.error().message();
  ASSERT_EQ(held->size(), 2u);
  EXPECT_EQ((*held)[0], (HeldEntry{kA, 3, 4}));
  EXPECT_EQ((*held)[1], (HeldEntry{kB, 5, 6}));
  EXPECT_EQ(format_held(*held), text);
  EXPECT_TRUE(parse_held("")->empty());
  EXPECT_TRUE(parse_held("  ")->empty());
  EXPECT_EQ(parse_held(std::string("  ") + kA + ":3:4  ")->size(), 1u);
}

TEST(Held, UuidsMatchInEitherCase) {
  std::string upper = kA;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  auto held = parse_held(upper + ":3:4");
  ASSERT_TRUE(held.ok());
  EXPECT_EQ((*held)[0].uuid, kA) << "stored canonical";
  EXPECT_TRUE(find_held(*held, kA));
  EXPECT_TRUE(find_held(*held, upper));
  EXPECT_FALSE(find_held(*held, kB));
}

TEST(Held, MalformedEntriesAreUsageErrorsNamingTheVariableAndEntry) {
  const std::string a = kA;
  for (const std::string& bad : {a, a + ":3", a + ":3:", a + "::4", a + ":x:4", a + ":3:-4",
                                 a + ":3:4:5", std::string("not-a-uuid:3:4"), std::string(":3:4"),
                                 a + ":3:4," + kB + ":5:6", a + ":3:99999999999"}) {
    auto held = parse_held(bad);
    ASSERT_FALSE(held.ok()) << bad;
    EXPECT_EQ(held.error().op, "usage") << bad;
    const std::string msg = held.error().message();
    EXPECT_NE(msg.find("MDEVMIG_HELD"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
  auto twice = parse_held(a + ":3:4 " + a + ":5:6");
  ASSERT_FALSE(twice.ok());
  EXPECT_NE(twice.error().message().find("twice"), std::string::npos);
}

// A sysfs with instance kA in IOMMU group 7, and /dev/vfio/7 standing for /dev/null.
class HeldFds : public testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/mdevmig-held-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    const fs::path dev = root_ / "sys/bus/mdev/devices" / kA;
    fs::create_directories(dev);
    fs::create_directories(root_ / "sys/kernel/iommu_groups/7");
    fs::create_directory_symlink("../../../../kernel/iommu_groups/7", dev / "iommu_group");
    fs::create_directories(root_ / "dev/vfio");
    fs::create_symlink("/dev/null", root_ / "dev/vfio/7");
    paths_.vfio.sysfs = (root_ / "sys").string();
    paths_.vfio.dev_vfio = (root_ / "dev/vfio").string();
  }
  void TearDown() override {
    for (int fd : fds_) ::close(fd);
    fs::remove_all(root_);
  }
  int keep(int fd) {
    fds_.push_back(fd);
    return fd;
  }
  std::string refused(const HeldEntry& e) {
    auto fd = open_held(e, paths_);
    if (fd.ok()) return "adopted";
    EXPECT_EQ(fd.error().errnum, EBADF) << fd.error().message();
    return fd.error().message();
  }

  fs::path root_;
  HeldPaths paths_;
  std::vector<int> fds_;
};

TEST_F(HeldFds, AGroupFdOfAnotherDeviceIsNotAdopted) {
  const int zero = keep(::open("/dev/zero", O_RDONLY | O_CLOEXEC));
  const int ev = keep(::eventfd(0, EFD_CLOEXEC));
  const std::string msg = refused({kA, zero, ev});
  EXPECT_NE(msg.find("fd " + std::to_string(zero)), std::string::npos) << msg;
  EXPECT_NE(msg.find("not adopted"), std::string::npos) << msg;
  EXPECT_NE(msg.find("VFIO group"), std::string::npos) << msg;
}

TEST_F(HeldFds, AFdThatIsNotOpenIsNotAdopted) {
  const int null = keep(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  const int closed = keep(::dup(null));
  ::close(closed);
  fds_.pop_back();
  EXPECT_NE(refused({kA, closed, null}).find("not open here"), std::string::npos);
  EXPECT_NE(refused({kA, null, closed}).find("not open here"), std::string::npos);
}

TEST_F(HeldFds, ADeviceFdThatIsNotAVfioDeviceIsNotAdopted) {
  // The group fd passes (it is "/dev/vfio/7"); the device fd is an eventfd.
  const int group = keep(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  const int ev = keep(::eventfd(0, EFD_CLOEXEC));
  const std::string msg = refused({kA, group, ev});
  EXPECT_NE(msg.find("fd " + std::to_string(ev)), std::string::npos) << msg;
  EXPECT_NE(msg.find("anon_inode:[eventfd], not a VFIO device"), std::string::npos) << msg;
}

TEST_F(HeldFds, AnInstanceThatIsNotThereIsAnError) {
  const int null = keep(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  auto fd = open_held({kB, null, null}, paths_);
  ASSERT_FALSE(fd.ok());
  EXPECT_NE(fd.error().message().find(kB), std::string::npos) << fd.error().message();
}

}  // namespace
}  // namespace mdevmig::cli
