// Lab group "hardening": the module's uAPI attacked with the arguments a hostile user
// would send rather than the ones our tools send. Each test pins down one defect that
// once let a user write outside its buffers, oops or WARN the kernel, read another
// tenant's data or run work the device had been told to forget.
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/mdevmig.h>
#include <linux/vfio.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "common/dma.h"
#include "common/instance.h"
#include "common/open_instance.h"
#include "common/sysfs.h"
#include "migration/vfio/eventfd.h"
#include "migration/vfio/mapping.h"
#include "migration/vfio/mdev.h"

namespace mdevmig::lab {
namespace {

using namespace std::chrono_literals;
using vfio::MigState;

constexpr uint32_t kV1 = VFIO_PCI_NUM_REGIONS;  // index of the v1 migration region
constexpr uint64_t kLogPage = 2u << 20;         // logging page size of the window tests

// VFIO_DEVICE_FEATURE with `payload`; 0 or errno.
int device_feature(int fd, uint32_t flags, const void* payload, size_t size) {
  std::vector<uint8_t> buf(sizeof(vfio_device_feature) + size);
  auto* f = reinterpret_cast<vfio_device_feature*>(buf.data());
  f->argsz = static_cast<uint32_t>(buf.size());
  f->flags = flags;
  std::memcpy(f->data, payload, size);
  return ioctl(fd, VFIO_DEVICE_FEATURE, buf.data()) == 0 ? 0 : errno;
}

// DMA_LOGGING_START of `ranges`; 0 or errno. `page_size` is updated to the device's.
int log_start(int fd, uint64_t& page_size,
              const std::vector<vfio_device_feature_dma_logging_range>& ranges) {
  vfio_device_feature_dma_logging_control c{};
  c.page_size = page_size;
  c.num_ranges = static_cast<uint32_t>(ranges.size());
  c.ranges = reinterpret_cast<uintptr_t>(ranges.data());
  std::vector<uint8_t> buf(sizeof(vfio_device_feature) + sizeof c);
  auto* f = reinterpret_cast<vfio_device_feature*>(buf.data());
  f->argsz = static_cast<uint32_t>(buf.size());
  f->flags = VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_DMA_LOGGING_START;
  std::memcpy(f->data, &c, sizeof c);
  if (ioctl(fd, VFIO_DEVICE_FEATURE, buf.data()) != 0) return errno;
  std::memcpy(&c, f->data, sizeof c);
  page_size = c.page_size;
  return 0;
}

int log_stop(int fd) {
  return device_feature(fd, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP, nullptr,
                        0);
}

int log_report(int fd, uint64_t iova, uint64_t length, uint64_t page_size, void* bitmap) {
  vfio_device_feature_dma_logging_report r{};
  r.iova = iova;
  r.length = length;
  r.page_size = page_size;
  r.bitmap = reinterpret_cast<uintptr_t>(bitmap);
  return device_feature(fd, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT, &r,
                        sizeof r);
}

// VFIO_DEVICE_SET_IRQS with `count` elements of `data`; 0 or errno.
int set_irqs(int fd, uint32_t flags, uint32_t index, uint32_t start, uint32_t count,
             const void* data = nullptr, size_t data_size = 0) {
  std::vector<uint8_t> buf(sizeof(vfio_irq_set) + data_size);
  auto* s = reinterpret_cast<vfio_irq_set*>(buf.data());
  s->argsz = static_cast<uint32_t>(buf.size());
  s->flags = flags;
  s->index = index;
  s->start = start;
  s->count = count;
  if (data_size) std::memcpy(s->data, data, data_size);
  return ioctl(fd, VFIO_DEVICE_SET_IRQS, buf.data()) == 0 ? 0 : errno;
}

// A bitmap of `bytes` ending exactly at a page end, with a PROT_NONE page after it and
// canary bytes before it: a write past it faults, a write before it shows.
class GuardedBitmap {
 public:
  explicit GuardedBitmap(size_t bytes) : bytes_(bytes) {
    base_ = static_cast<uint8_t*>(
        mmap(nullptr, 2 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    EXPECT_NE(base_, MAP_FAILED);
    EXPECT_EQ(mprotect(base_ + kPage, kPage, PROT_NONE), 0);
    std::memset(base_, kCanary, kPage);
    std::memset(data(), 0, bytes_);
  }
  ~GuardedBitmap() { munmap(base_, 2 * kPage); }
  GuardedBitmap(const GuardedBitmap&) = delete;
  GuardedBitmap& operator=(const GuardedBitmap&) = delete;

  uint8_t* data() const { return base_ + kPage - bytes_; }
  bool bit(size_t i) const { return data()[i / 8] & (1u << (i % 8)); }
  std::vector<size_t> set_bits() const {
    std::vector<size_t> v;
    for (size_t i = 0; i < bytes_ * 8; ++i)
      if (bit(i)) v.push_back(i);
    return v;
  }
  bool canary_intact() const {
    for (size_t i = 0; i < kPage - bytes_; ++i)
      if (base_[i] != kCanary) return false;
    return true;
  }
  void clear() { std::memset(data(), 0, bytes_); }

 private:
  static constexpr size_t kPage = 4096;
  static constexpr uint8_t kCanary = 0x5a;
  size_t bytes_;
  uint8_t* base_;
};

std::vector<size_t> range_of(size_t first, size_t last) {
  std::vector<size_t> v;
  for (size_t i = first; i <= last; ++i) v.push_back(i);
  return v;
}

class HardeningTest : public testing::Test {
 protected:
  void SetUp() override {
    MDEVMIG_REQUIRE_LAB();
    s_ = open_instance("quarter");
    ASSERT_TRUE(s_.m.has_value());
  }
  void TearDown() override {
    guest_map_.reset();
    s_.m.reset();  // the device closes before its instance is removed
    s_.inst.reset();
  }

  const vfio::Device& dev() { return s_.dev(); }
  int fd() { return s_.dev().fd(); }

  void map_guest() {
    auto g = vfio::Mapping::anonymous(kGuestSize);
    ASSERT_TRUE(g.ok()) << g.error().message();
    guest_map_.emplace(std::move(g.value()));
    guest_ = static_cast<uint8_t*>(guest_map_->data());
    auto r = s_.m->container.map_dma(kIova, guest_, kGuestSize, vfio::DmaAccess::kReadWrite);
    ASSERT_TRUE(r.ok()) << r.error().message();
  }

  bool logging_offered() {
    auto p = dev().probe_feature(VFIO_DEVICE_FEATURE_DMA_LOGGING_START, VFIO_DEVICE_FEATURE_SET);
    EXPECT_TRUE(p.ok());
    if (p.ok() && !p.value()) {
      EXPECT_GE(kernel_release(), 608) << "DMA logging missing before 6.8";
    }
    return p.ok() && p.value();
  }

  OpenInstance s_;
  std::optional<vfio::Mapping> guest_map_;
  uint8_t* guest_ = nullptr;
};

// ---- DMA logging ------------------------------------------------------------------------

// A report window that starts inside a logging page, or report pages smaller than the
// logging pages, gets exactly the bits of its own window: nothing before the caller's
// bitmap, nothing past it, no bit for a clean page.
TEST_F(HardeningTest, DmaLogReportWritesOnlyTheCallersWindow) {
  map_guest();
  if (!logging_offered()) return;
  uint64_t page = kLogPage;
  ASSERT_EQ(log_start(fd(), page, {{kIova, kGuestSize}}), 0);
  ASSERT_EQ(page, kLogPage);

  // One engine write, in the first logging page (data + 5 pages; the completion record
  // is in the same logging page). The second logging page stays clean.
  DmaRig rig(dev(), guest_);
  rig.program(/*msi=*/false);
  uint32_t slot =
      rig.submit(desc(MDEVMIG_DMA_OP_COPY_FROM_DEV, 0, kIova + kDataOff + 5 * 4096, 4096));
  ASSERT_EQ(rig.wait(slot), MDEVMIG_DMA_ST_OK);

  {  // 1 MiB from the middle of the dirty logging page, in 4 KiB pages: 256 bits, all set.
    GuardedBitmap bm(256 / 8);
    ASSERT_EQ(log_report(fd(), kIova + (1u << 20), 1u << 20, 4096, bm.data()), 0);
    EXPECT_EQ(bm.set_bits(), range_of(0, 255));
    EXPECT_TRUE(bm.canary_intact()) << "written before the bitmap";
  }
  {  // From one byte into the range: report page i covers [iova+1 + i*4K, ...); the dirty
     // logging page [iova, iova + 2M) meets pages 0..511, the clean one none beyond.
    GuardedBitmap bm((kGuestSize / 4096) / 8);
    ASSERT_EQ(log_report(fd(), kIova + 1, kGuestSize - 1, 4096, bm.data()), 0);
    EXPECT_EQ(bm.set_bits(), range_of(0, 511));
    EXPECT_TRUE(bm.canary_intact()) << "written before the bitmap";
  }
  {  // The clean logging page alone, one byte short of it and one byte into it.
    GuardedBitmap bm(8);
    ASSERT_EQ(log_report(fd(), kIova + kLogPage, kLogPage, 4096 * 64, bm.data()), 0);
    EXPECT_TRUE(bm.set_bits().empty());
    EXPECT_TRUE(bm.canary_intact());
  }
  {  // A window that cut the dirty page did not clear it: the whole range reports it
     // once, in logging-page units, and then it is clean.
    GuardedBitmap bm(8);
    ASSERT_EQ(log_report(fd(), kIova, kGuestSize, kLogPage, bm.data()), 0);
    EXPECT_EQ(bm.set_bits(), std::vector<size_t>{0});
    bm.clear();
    ASSERT_EQ(log_report(fd(), kIova, kGuestSize, kLogPage, bm.data()), 0);
    EXPECT_TRUE(bm.set_bits().empty()) << "a covering report must clear what it returned";
    EXPECT_TRUE(bm.canary_intact());
  }
  EXPECT_EQ(log_stop(fd()), 0);
}

// Ranges the core lets through but that log nothing, or more than can be logged, are
// refused with a clear error; the kernel does not WARN on a zero-size allocation.
TEST_F(HardeningTest, DmaLogStartRefusesEmptyAndHugeRanges) {
  if (!logging_offered()) return;
  uint64_t page = 4096;
  EXPECT_EQ(log_start(fd(), page, {{0, 0}}), EINVAL) << "empty range at 0";
  page = 4096;
  EXPECT_EQ(log_start(fd(), page, {{1u << 30, 0}}), EINVAL) << "empty range";
  page = 1;  // aligns anything; the device logs in its own page size
  int e = log_start(fd(), page, {{0, ~0ull}});
  EXPECT_TRUE(e == E2BIG || e == EINVAL) << "a range of 2^64 - 1 bytes: errno " << e;
  page = 4096;
  e = log_start(fd(), page, {{4096, ~0ull - 8191}});
  EXPECT_TRUE(e == E2BIG || e == EINVAL) << "a range one page short of 2^64: errno " << e;
  // Still usable afterwards.
  page = 4096;
  EXPECT_EQ(log_start(fd(), page, {{kIova, kGuestSize}}), 0);
  EXPECT_EQ(log_stop(fd()), 0);
}

// The test process in a child cgroup with the memory controller, for as long as it lives.
class MemcgScope {
 public:
  MemcgScope() {
    if (!read_file(kRoot + "/cgroup.controllers")) {
      EXPECT_EQ(mount("none", kRoot.c_str(), "cgroup2", 0, nullptr), 0)
          << "mounting cgroup2: errno " << errno;
    }
    EXPECT_NE(read_file(kRoot + "/cgroup.controllers").value_or("").find("memory"),
              std::string::npos);
    write_file(kRoot + "/cgroup.subtree_control", "+memory");
    mkdir(kCg.c_str(), 0755);
    ok_ = write_file(kCg + "/cgroup.procs", pid_) == 0;
    EXPECT_TRUE(ok_) << "joining " << kCg;
  }
  ~MemcgScope() {
    write_file(kRoot + "/cgroup.procs", pid_);
    rmdir(kCg.c_str());
  }
  MemcgScope(const MemcgScope&) = delete;
  MemcgScope& operator=(const MemcgScope&) = delete;

  bool ok() const { return ok_; }
  uint64_t current() const { return std::stoull(read_file(kCg + "/memory.current").value_or("0")); }

 private:
  inline static const std::string kRoot = "/sys/fs/cgroup";
  inline static const std::string kCg = kRoot + "/mdevmig-hardening";
  std::string pid_ = std::to_string(getpid());
  bool ok_ = false;
};

// The bitmaps are charged to the opener's memory cgroup: a user cannot pin 32 MiB of
// kernel memory per instance outside its limits.
TEST_F(HardeningTest, DmaLogBitmapsAreChargedToTheCallersMemcg) {
  if (!logging_offered()) return;
  MemcgScope memcg;
  ASSERT_TRUE(memcg.ok());
  const uint64_t before = memcg.current();
  uint64_t page = 4096;
  // 2^28 bits of bitmap: 32 MiB, the most the device logs.
  int e = log_start(fd(), page, {{0, 1ull << 40}});
  const uint64_t during = memcg.current();
  EXPECT_EQ(e, 0);
  EXPECT_EQ(log_stop(fd()), 0);
  const uint64_t after = memcg.current();
  EXPECT_GE(during, before + (30ull << 20))
      << "bitmaps not charged: " << before << " -> " << during;
  EXPECT_LT(after, during - (30ull << 20)) << "charge not released";
}

// A resuming data_fd's loader buffer and staging buffer are charged to the opener too.
TEST_F(HardeningTest, LoaderBuffersAreChargedToTheCallersMemcg) {
  MemcgScope memcg;
  ASSERT_TRUE(memcg.ok());
  ASSERT_TRUE(dev().set_mig_state(MigState::kStop).ok());
  const uint64_t before = memcg.current();
  auto data_fd = dev().set_mig_state(MigState::kResuming);
  ASSERT_TRUE(data_fd.ok()) << data_fd.error().message();
  const uint64_t during = memcg.current();
  EXPECT_GE(during, before + MDEVMIG_LOADER_BUF_SIZE)
      << "loader not charged: " << before << " -> " << during;
  EXPECT_TRUE(dev().reset().ok());
}

// ---- interrupts -------------------------------------------------------------------------

// INTx takes exactly one element; a count of 0 carries no data to read.
TEST_F(HardeningTest, IntxSetIrqsWithoutDataIsRefused) {
  constexpr uint32_t kIntx = VFIO_PCI_INTX_IRQ_INDEX;
  EXPECT_EQ(set_irqs(fd(), VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, kIntx, 0, 0),
            EINVAL);
  EXPECT_EQ(set_irqs(fd(), VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_ACTION_TRIGGER, kIntx, 0, 0),
            EINVAL);
  EXPECT_EQ(set_irqs(fd(), VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_ACTION_MASK, kIntx, 0, 0), EINVAL);
  EXPECT_EQ(set_irqs(fd(), VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_ACTION_UNMASK, kIntx, 0, 0),
            EINVAL);
  EXPECT_EQ(set_irqs(fd(), VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_MASK, kIntx, 0, 0), EINVAL);
  EXPECT_EQ(set_irqs(fd(), VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK, kIntx, 0, 0),
            EINVAL);
  EXPECT_EQ(set_irqs(fd(), VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, kIntx, 1, 0),
            EINVAL);
  // No mask eventfds.
  auto efd = vfio::EventFd::create();
  ASSERT_TRUE(efd.ok());
  int32_t f = efd.value().fd();
  EXPECT_EQ(set_irqs(fd(), VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_MASK, kIntx, 0, 1, &f,
                     sizeof f),
            EINVAL);
  // What is valid still works: wire, loop back, mask (the loopback still signals), disable.
  EXPECT_EQ(set_irqs(fd(), VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, kIntx, 0, 1, &f,
                     sizeof f),
            0);
  EXPECT_EQ(set_irqs(fd(), VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, kIntx, 0, 1), 0);
  EXPECT_EQ(efd.value().drain().value_or(0), 1u);
  EXPECT_EQ(set_irqs(fd(), VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_MASK, kIntx, 0, 1), 0);
  EXPECT_EQ(set_irqs(fd(), VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK, kIntx, 0, 1), 0);
  EXPECT_EQ(set_irqs(fd(), VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, kIntx, 0, 0), 0);
  EXPECT_EQ(set_irqs(fd(), VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, kIntx, 0, 1),
            EINVAL)
      << "loopback without an eventfd";
}

// A block of MSI eventfds with a bad one in it changes nothing; out-of-range blocks and
// the actions MSI does not have are refused.
TEST_F(HardeningTest, MsiEventfdBlocksAreAllOrNothing) {
  constexpr uint32_t kMsi = VFIO_PCI_MSI_IRQ_INDEX;
  auto a = vfio::EventFd::create(), b = vfio::EventFd::create();
  ASSERT_TRUE(a.ok() && b.ok());
  int32_t fa = a.value().fd();
  EXPECT_EQ(set_irqs(fd(), VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, kMsi, 0, 1, &fa,
                     sizeof fa),
            0);
  int32_t block[2] = {b.value().fd(), 1 << 30};
  EXPECT_EQ(set_irqs(fd(), VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, kMsi, 0, 2,
                     block, sizeof block),
            EBADF);
  EXPECT_EQ(set_irqs(fd(), VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, kMsi, 0, 1), 0);
  EXPECT_EQ(a.value().drain().value_or(0), 1u) << "vector 0 lost its eventfd to a failed call";
  EXPECT_EQ(b.value().drain().value_or(0), 0u);

  int32_t four[MDEVMIG_MSI_MAX_VECTORS + 1] = {-1, -1, -1, -1, -1};
  EXPECT_EQ(set_irqs(fd(), VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, kMsi, 1,
                     MDEVMIG_MSI_MAX_VECTORS, four, sizeof(int32_t) * MDEVMIG_MSI_MAX_VECTORS),
            EINVAL);
  EXPECT_EQ(
      set_irqs(fd(), VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, kMsi, 0, 1, four, 2),
      EINVAL)
      << "argsz shorter than the data";
  EXPECT_EQ(set_irqs(fd(), VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_MASK, kMsi, 0, 1), EINVAL);
  EXPECT_EQ(set_irqs(fd(), VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_ACTION_TRIGGER, kMsi, 0, 0), 0);
  EXPECT_EQ(set_irqs(fd(), VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
                     VFIO_PCI_ERR_IRQ_INDEX, 0, 1),
            EINVAL);
  EXPECT_EQ(
      set_irqs(fd(), VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_PCI_NUM_IRQS, 0, 1),
      EINVAL);
  EXPECT_EQ(
      set_irqs(fd(), VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
               kMsi, 0, 1, four, 1),
      EINVAL);
}

// ---- reset --------------------------------------------------------------------------------

// Descriptors queued while the engine was stopped are gone after VFIO_DEVICE_RESET: none
// of them is executed (no DMA, no completion, no interrupt) on the way through the reset.
TEST_F(HardeningTest, ResetNeverRunsDescriptorsQueuedBeforeIt) {
  map_guest();
  auto irq = vfio::EventFd::create();
  ASSERT_TRUE(irq.ok());
  int32_t f = irq.value().fd();
  ASSERT_EQ(set_irqs(fd(), VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
                     VFIO_PCI_MSI_IRQ_INDEX, 0, 1, &f, sizeof f),
            0);
  // A thread contending for the device lock with register reads: the reset then waits
  // for that lock between its steps, which is where a stale engine step would get in.
  std::atomic<bool> stop{false};
  std::thread reader([&] {
    while (!stop) (void)dev().read_as<uint32_t>(kBar0, MDEVMIG_REG_ID);
  });
  struct Join {
    std::atomic<bool>& stop;
    std::thread& t;
    ~Join() {
      stop = true;
      t.join();
    }
  } join{stop, reader};
  for (int round = 0; round < 100; ++round) {
    SCOPED_TRACE(round);
    DmaRig rig(dev(), guest_);
    rig.program(/*msi=*/true);
    ASSERT_TRUE(dev().set_mig_state(MigState::kRunningP2P).ok());  // MMIO on, engine off
    std::vector<uint32_t> slots;
    for (uint32_t i = 0; i < kRingEntries - 1; ++i)
      slots.push_back(
          rig.queue(desc(MDEVMIG_DMA_OP_COPY_FROM_DEV, 0, kIova + kDataOff + i * 4096, 4096)));
    rig.doorbell();
    ASSERT_TRUE(dev().reset().ok());
    ASSERT_EQ(dev().mig_state().value(), MigState::kRunning);
    // Anything a stale step queued would run now; give it the chance to show.
    std::this_thread::sleep_for(20ms);
    for (uint32_t s : slots)
      ASSERT_EQ(__atomic_load_n(&rig.cmpl(s)->status, __ATOMIC_ACQUIRE),
                uint32_t{MDEVMIG_DMA_ST_PENDING})
          << "a descriptor queued before the reset completed";
    ASSERT_EQ(irq.value().drain().value_or(1), 0u) << "an interrupt of a pre-reset descriptor";
  }
}

// ---- v1 region ---------------------------------------------------------------------------

// Reads the whole v1 data section through the region; true if it is all zero.
bool v1_section_clear(const vfio::Device& dev) {
  std::vector<uint8_t> buf(1u << 20);
  auto r = dev.read(kV1, 4096, std::as_writable_bytes(std::span(buf)));
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message());
  for (uint8_t b : buf)
    if (b) return false;
  return true;
}

int v1_set_state(const vfio::Device& dev, uint32_t s) {
  auto r = dev.write_as(kV1, offsetof(vfio_device_migration_info, device_state), s);
  return r.ok() ? 0 : r.error().errnum;
}

// Stages one v1 save chunk of device memory (filled with 0xa5) in the data section.
void v1_stage(const vfio::Device& dev) {
  auto bar2 = dev.mmap_region(kBar2, 0);
  ASSERT_TRUE(bar2.ok());
  std::memset(bar2.value().data(), 0xa5, 2u << 20);
  ASSERT_EQ(v1_set_state(dev, VFIO_DEVICE_STATE_V1_RUNNING | VFIO_DEVICE_STATE_V1_SAVING), 0);
  auto off = dev.read_as<uint64_t>(kV1, offsetof(vfio_device_migration_info, data_offset));
  auto size = dev.read_as<uint64_t>(kV1, offsetof(vfio_device_migration_info, data_size));
  ASSERT_TRUE(off.ok() && size.ok());
  ASSERT_GT(size.value(), 512u << 10);
  ASSERT_FALSE(v1_section_clear(dev));
}

// The next opener of an instance, or its user after a reset, never reads what a v1
// save left in the data section.
TEST_F(HardeningTest, V1DataSectionIsClearedOnCloseAndReset) {
  v1_stage(dev());
  ASSERT_TRUE(dev().reset().ok());
  EXPECT_TRUE(v1_section_clear(dev())) << "data section kept over VFIO_DEVICE_RESET";

  v1_stage(dev());
  const std::string uuid = s_.inst->uuid();
  s_.m.reset();  // close: the instance is free for the next tenant
  auto m = vfio::open_mdev(uuid);
  ASSERT_TRUE(m.ok()) << m.error().message();
  EXPECT_TRUE(v1_section_clear(m.value().device)) << "the next opener reads the previous save";
}

// ---- sysfs during a migration ------------------------------------------------------------

// While a migration owns the instance, the mode and the dirty set are not the
// administrator's to change (a forced mode or a cleared set would lose dirty pages).
TEST_F(HardeningTest, ModeAndDirtyClearAreRefusedDuringAMigration) {
  const bool precopy = dev().migration_flags().value_or(0) & VFIO_MIGRATION_PRE_COPY;
  auto data_fd = dev().set_mig_state(precopy ? MigState::kPreCopy : MigState::kStop);
  ASSERT_TRUE(data_fd.ok()) << data_fd.error().message();
  EXPECT_EQ(s_.inst->set_attr("mode", "passthrough"), -EBUSY);
  EXPECT_EQ(s_.inst->set_attr("dirty_pages", "clear"), -EBUSY);
  ASSERT_TRUE(dev().set_mig_state(MigState::kRunning).ok());

  ASSERT_EQ(v1_set_state(dev(), VFIO_DEVICE_STATE_V1_RUNNING | VFIO_DEVICE_STATE_V1_SAVING), 0);
  EXPECT_EQ(s_.inst->set_attr("mode", "trapped"), -EBUSY);
  EXPECT_EQ(s_.inst->set_attr("dirty_pages", "clear"), -EBUSY);
  EXPECT_EQ(s_.inst->attr("mode"), "tracked");
  ASSERT_EQ(v1_set_state(dev(), VFIO_DEVICE_STATE_V1_RUNNING), 0);

  // Outside a migration both are the debugging aids they were.
  EXPECT_EQ(s_.inst->set_attr("mode", "tracked"), 0);
  EXPECT_EQ(s_.inst->set_attr("dirty_pages", "clear"), 0);
  EXPECT_EQ(s_.inst->set_attr("mode", "passthrough"), 0);
}

}  // namespace
}  // namespace mdevmig::lab
