// The parts of the VFIO client that run on any host: eventfds, anonymous mappings,
// sysfs resolution, and the error paths of the wrappers when no VFIO is present.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "migration/vfio/container.h"
#include "migration/vfio/device.h"
#include "migration/vfio/eventfd.h"
#include "migration/vfio/group.h"
#include "migration/vfio/mapping.h"
#include "migration/vfio/mdev.h"

namespace mdevmig::vfio {
namespace {

namespace fs = std::filesystem;

constexpr const char* kUuid = "3f2a6c1e-0b7d-4e59-9a11-2c4d5e6f7a8b";

// A fresh temporary directory, removed afterwards.
class TempDir {
 public:
  TempDir() {
    std::string templ = (fs::temp_directory_path() / "mdevmig-test-XXXXXX").string();
    const char* made = ::mkdtemp(templ.data());
    EXPECT_NE(made, nullptr);
    path_ = templ;
  }
  ~TempDir() { fs::remove_all(path_); }
  [[nodiscard]] const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// --- EventFd -------------------------------------------------------------------------

TEST(EventFd, DrainWithoutSignalIsZero) {
  auto ev = EventFd::create();
  ASSERT_TRUE(ev.ok());
  EXPECT_EQ(*ev->drain(), 0u);
}

TEST(EventFd, SignalsAccumulate) {
  auto ev = std::move(EventFd::create()).value();
  ASSERT_TRUE(ev.signal(2).ok());
  ASSERT_TRUE(ev.signal().ok());
  auto n = ev.wait(std::chrono::milliseconds(0));
  ASSERT_TRUE(n.ok()) << n.error().message();
  EXPECT_EQ(*n, 3u);
  EXPECT_EQ(*ev.drain(), 0u);
}

TEST(EventFd, WaitTimesOut) {
  auto ev = std::move(EventFd::create()).value();
  const auto t0 = std::chrono::steady_clock::now();
  auto n = ev.wait(std::chrono::milliseconds(30));
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.error().errnum, ETIMEDOUT);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(30));
}

TEST(EventFd, WakesOnSignalFromAnotherThread) {
  auto ev = std::move(EventFd::create()).value();
  std::thread signaller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    (void)ev.signal(1);
  });
  auto n = ev.wait(std::chrono::seconds(10));
  signaller.join();
  ASSERT_TRUE(n.ok()) << n.error().message();
  EXPECT_EQ(*n, 1u);
}

TEST(EventFd, ForeverWaitDoesNotOverflow) {
  auto ev = std::move(EventFd::create()).value();
  ASSERT_TRUE(ev.signal(1).ok());
  EXPECT_EQ(*ev.wait(std::chrono::milliseconds::max()), 1u);
}

TEST(EventFd, IsMoveOnly) {
  static_assert(!std::is_copy_constructible_v<EventFd>);
  auto a = std::move(EventFd::create()).value();
  const int fd = a.fd();
  EventFd b = std::move(a);
  EXPECT_EQ(b.fd(), fd);
}

// --- Mapping -------------------------------------------------------------------------

TEST(Mapping, AnonymousIsZeroedWritableAndMovable) {
  auto m = Mapping::anonymous(8192);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->size(), 8192u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(m->data()) % 4096, 0u);
  for (std::byte b : m->bytes()) ASSERT_EQ(b, std::byte{0});
  m->bytes()[100] = std::byte{7};
  Mapping moved = std::move(m).value();
  EXPECT_EQ(moved.bytes()[100], std::byte{7});
  moved.reset();
  EXPECT_FALSE(moved.valid());
}

TEST(Mapping, EmptyIsRejected) {
  auto m = Mapping::anonymous(0);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().errnum, EINVAL);
}

// --- sysfs resolution ----------------------------------------------------------------

TEST(MdevUuid, Validation) {
  EXPECT_TRUE(validate_mdev_uuid(kUuid).ok());
  EXPECT_TRUE(validate_mdev_uuid("3F2A6C1E-0B7D-4E59-9A11-2C4D5E6F7A8B").ok());
  EXPECT_FALSE(validate_mdev_uuid("").ok());
  EXPECT_FALSE(validate_mdev_uuid("3f2a6c1e0b7d4e599a112c4d5e6f7a8b").ok());
  EXPECT_FALSE(validate_mdev_uuid("3f2a6c1e-0b7d-4e59-9a11-2c4d5e6f7a8").ok());
  EXPECT_FALSE(validate_mdev_uuid("3f2a6c1e-0b7d-4e59-9a11-2c4d5e6f7a8g").ok());
  // Same length as a UUID but walks out of sysfs.
  EXPECT_FALSE(validate_mdev_uuid("../../../../../../../../../etc/pass").ok());
  EXPECT_EQ(validate_mdev_uuid("x").error().errnum, EINVAL);
}

TEST(IommuGroupLink, Parses) {
  EXPECT_EQ(*parse_iommu_group_link("../../../../kernel/iommu_groups/12"), 12);
  EXPECT_EQ(*parse_iommu_group_link("0"), 0);
  for (const char* bad : {"", "../kernel/iommu_groups/", "../x/abc", "../x/-1", "../x/+1",
                          "../x/12a", "../x/99999999999999", "../x/ 1"}) {
    EXPECT_FALSE(parse_iommu_group_link(bad).ok()) << bad;
  }
}

// A fake sysfs with our mdev whose iommu_group links to group `group`.
void make_fake_sysfs(const fs::path& root, int group) {
  const fs::path dev = root / "bus/mdev/devices" / kUuid;
  fs::create_directories(dev);
  fs::create_directories(root / "kernel/iommu_groups" / std::to_string(group));
  fs::create_directory_symlink("../../../../kernel/iommu_groups/" + std::to_string(group),
                               dev / "iommu_group");
}

TEST(MdevIommuGroup, ReadsLinkFromSysfs) {
  TempDir tmp;
  make_fake_sysfs(tmp.path(), 17);
  VfioPaths paths{tmp.path().string(), "/nonexistent"};
  auto group = mdev_iommu_group(kUuid, paths);
  ASSERT_TRUE(group.ok()) << group.error().message();
  EXPECT_EQ(*group, 17);
}

TEST(MdevIommuGroup, MissingDeviceNamesThePath) {
  TempDir tmp;
  VfioPaths paths{tmp.path().string(), "/nonexistent"};
  auto group = mdev_iommu_group(kUuid, paths);
  ASSERT_FALSE(group.ok());
  EXPECT_EQ(group.error().errnum, ENOENT);
  EXPECT_EQ(group.error().op, "readlink");
  EXPECT_NE(group.error().context.find(kUuid), std::string::npos);
}

TEST(OpenMdev, FailsCleanlyWithoutVfio) {
  TempDir tmp;
  make_fake_sysfs(tmp.path() / "sys", 5);
  fs::create_directories(tmp.path() / "dev");
  VfioPaths paths{(tmp.path() / "sys").string(), (tmp.path() / "dev").string()};
  auto mdev = open_mdev(kUuid, paths);
  ASSERT_FALSE(mdev.ok());
  EXPECT_EQ(mdev.error().errnum, ENOENT);
  EXPECT_EQ(mdev.error().op, "open");
  EXPECT_EQ(mdev.error().context, (tmp.path() / "dev/vfio").string());
}

TEST(OpenMdev, NonVfioContainerFileIsRejectedAtApiVersion) {
  TempDir tmp;
  make_fake_sysfs(tmp.path() / "sys", 5);
  fs::create_directories(tmp.path() / "dev");
  std::ofstream(tmp.path() / "dev/vfio") << "not a vfio container";
  VfioPaths paths{(tmp.path() / "sys").string(), (tmp.path() / "dev").string()};
  auto mdev = open_mdev(kUuid, paths);
  ASSERT_FALSE(mdev.ok());
  EXPECT_EQ(mdev.error().errnum, ENOTTY);
  EXPECT_EQ(mdev.error().message(), "VFIO_GET_API_VERSION on " +
                                        (tmp.path() / "dev/vfio").string() +
                                        ": Inappropriate ioctl for device (errno 25)");
}

TEST(OpenMdev, RejectsBadUuidBeforeTouchingSysfs) {
  auto mdev = open_mdev("../../etc", VfioPaths{"/nonexistent", "/nonexistent"});
  ASSERT_FALSE(mdev.ok());
  EXPECT_EQ(mdev.error().errnum, EINVAL);
}

// --- wrapper error paths -------------------------------------------------------------

TEST(Wrappers, ContainerOpenMissing) {
  auto c = Container::open("/nonexistent/vfio");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().message(), "open on /nonexistent/vfio: No such file or directory (errno 2)");
}

TEST(Wrappers, GroupOpenBadNumberAndMissing) {
  EXPECT_EQ(Group::open(-1).error().errnum, EINVAL);
  auto g = Group::open(3, "/nonexistent");
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.error().context, "/nonexistent/3");
}

TEST(Wrappers, GroupIoctlsOnNonVfioFileFail) {
  TempDir tmp;
  std::ofstream(tmp.path() / "4") << "x";
  auto g = Group::open(4, tmp.path().string());
  ASSERT_TRUE(g.ok()) << g.error().message();
  auto st = g->status();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().op, "VFIO_GROUP_GET_STATUS");
  EXPECT_EQ(g->device_fd(kUuid).error().op, "VFIO_GROUP_GET_DEVICE_FD");
  EXPECT_EQ(g->device_fd("").error().errnum, EINVAL);
}

TEST(Wrappers, DeviceOpenNeedsAValidFd) {
  auto d = Device::open(UniqueFd(), kUuid);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().errnum, EBADF);
}

TEST(Wrappers, DeviceOpenOnNonVfioFdNamesDevice) {
  TempDir tmp;
  const std::string file = (tmp.path() / "dev").string();
  std::ofstream(file) << "x";
  UniqueFd fd(::open(file.c_str(), O_RDWR | O_CLOEXEC));
  ASSERT_TRUE(fd.valid());
  auto d = Device::open(std::move(fd), kUuid);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().message(), std::string("VFIO_DEVICE_GET_INFO on ") + kUuid +
                                     ": Inappropriate ioctl for device (errno 25)");
}

}  // namespace
}  // namespace mdevmig::vfio
