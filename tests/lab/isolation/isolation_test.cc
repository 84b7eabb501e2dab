// Lab group "isolation": what the user of an instance can do to the host, to other
// users and to the next tenant of its memory.
//  - Removal while in use: the driver asks the user to close through the request
//    interrupt (VFIO_PCI_REQ_IRQ_INDEX), and a removal that waits for a user blocks
//    nothing but itself.
//  - PCI parents: BAR2 is not mmap-able unless the administrator opts in
//    (pci_bar2_mmap), and a new instance never sees what the BAR held before.
//  - The DMA engine is held to its per-instance budget (engine_budget).
// Every wait for the kernel is bounded, so a driver that blocks fails the test instead
// of hanging the group.
#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/mdevmig.h>
#include <linux/vfio.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <memory>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "common/dma.h"
#include "common/instance.h"
#include "common/sysfs.h"
#include "migration/vfio/eventfd.h"
#include "migration/vfio/mapping.h"
#include "migration/vfio/mdev.h"

namespace mdevmig::lab {
namespace {

using namespace std::chrono_literals;
using vfio::Mapping;

// How long a step that should be prompt may take on a slow, shared lab machine before
// the test calls it blocked.
constexpr auto kBlocked = 120s;

const std::string kParam = "/sys/module/mdevmig/parameters/";

bool exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

// Polls `pred` every 50 ms for at most `limit`.
template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = kBlocked) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (pred()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return pred();
}

// A sysfs write on its own thread, so a write that blocks in the kernel can be watched.
class AsyncWrite {
 public:
  AsyncWrite(std::string path, std::string value)
      : fut_(std::async(std::launch::async,
                        [p = std::move(path), v = std::move(value)] { return write_file(p, v); })) {
  }
  // The write's result, or nullopt if it is still blocked after `limit`.
  std::optional<int> wait(std::chrono::milliseconds limit) {
    if (fut_.wait_for(limit) != std::future_status::ready) return std::nullopt;
    return fut_.get();
  }

 private:
  std::future<int> fut_;
};

// PCI address of the lab's ivshmem-plain function, or "".
std::string find_ivshmem() {
  for (const auto& bdf : list_dir("/sys/bus/pci/devices")) {
    const std::string d = "/sys/bus/pci/devices/" + bdf;
    if (read_file(d + "/vendor") == "0x1af4" && read_file(d + "/device") == "0x1110") return bdf;
  }
  return "";
}

// The ivshmem function bound to mdevmig as a PCI parent for the test's lifetime.
class PciParent {
 public:
  PciParent() : bdf_(find_ivshmem()) {
    if (bdf_.empty()) {
      ADD_FAILURE() << "the lab was not started with --ivshmem";
      return;
    }
    EXPECT_EQ(write_file(dir() + "/driver_override", "mdevmig"), 0);
    EXPECT_EQ(write_file("/sys/bus/pci/drivers_probe", bdf_), 0);
    bound_ = exists("/sys/class/mdev_bus/" + bdf_);
    EXPECT_TRUE(bound_) << bdf_ << " did not become an mdevmig parent";
  }
  ~PciParent() {
    if (bdf_.empty()) return;
    if (exists(dir() + "/driver")) write_file(dir() + "/driver/unbind", bdf_);
    write_file(dir() + "/driver_override", "\n");
  }
  PciParent(const PciParent&) = delete;
  PciParent& operator=(const PciParent&) = delete;

  bool ok() const { return bound_; }
  const std::string& bdf() const { return bdf_; }
  std::string dir() const { return "/sys/bus/pci/devices/" + bdf_; }

 private:
  std::string bdf_;
  bool bound_ = false;
};

std::optional<vfio::OpenMdev> open_or_fail(const Instance& inst) {
  auto m = vfio::open_mdev(inst.uuid());
  if (!m.ok()) {
    ADD_FAILURE() << m.error().message();
    return std::nullopt;
  }
  return std::move(m.value());
}

// ---- Removal while in use: the request interrupt ------------------------------------

TEST(Request, TheRequestInterruptIsOffered) {
  MDEVMIG_REQUIRE_LAB();
  Instance inst("mdevmig_sim0", "eighth");
  ASSERT_TRUE(inst.ok());
  auto m = open_or_fail(inst);
  ASSERT_TRUE(m);
  auto info = m->device.irq_info(VFIO_PCI_REQ_IRQ_INDEX);
  ASSERT_TRUE(info.ok()) << info.error().message();
  EXPECT_EQ(info.value().count, 1u);
  EXPECT_TRUE(info.value().flags & VFIO_IRQ_INFO_EVENTFD);

  auto efd = vfio::EventFd::create();
  ASSERT_TRUE(efd.ok());
  int fd = efd.value().fd();
  ASSERT_TRUE(m->device.set_irq_eventfds(VFIO_PCI_REQ_IRQ_INDEX, 0, {&fd, 1}).ok());
  ASSERT_TRUE(m->device.trigger_irq(VFIO_PCI_REQ_IRQ_INDEX, 0).ok());  // loopback
  auto n = efd.value().wait(kBlocked);
  EXPECT_TRUE(n.ok() && n.value() >= 1);

  // Bad shapes are refused: a second vector, an action other than TRIGGER.
  int fds[2] = {fd, fd};
  EXPECT_FALSE(m->device.set_irq_eventfds(VFIO_PCI_REQ_IRQ_INDEX, 0, fds).ok());
  EXPECT_FALSE(m->device.mask_irq(VFIO_PCI_REQ_IRQ_INDEX, 0).ok());
  EXPECT_FALSE(m->device.unmask_irq(VFIO_PCI_REQ_IRQ_INDEX, 0).ok());
  vfio_irq_set bad{};
  bad.argsz = sizeof bad;  // EVENTFD with count 0: no data to read
  bad.flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
  bad.index = VFIO_PCI_REQ_IRQ_INDEX;
  bad.count = 0;
  EXPECT_NE(::ioctl(m->device.fd(), VFIO_DEVICE_SET_IRQS, &bad), 0);
  EXPECT_TRUE(m->device.disable_irq(VFIO_PCI_REQ_IRQ_INDEX).ok());
}

// The user holds the device open; removing the instance signals its request eventfd,
// the user closes, and the removal completes.
TEST(Request, RemovingAnInstanceInUseAsksItsUserToClose) {
  MDEVMIG_REQUIRE_LAB();
  Instance inst("mdevmig_sim0", "eighth");
  ASSERT_TRUE(inst.ok());
  auto m = open_or_fail(inst);
  ASSERT_TRUE(m);
  auto efd = vfio::EventFd::create();
  ASSERT_TRUE(efd.ok());
  int fd = efd.value().fd();
  auto set = m->device.set_irq_eventfds(VFIO_PCI_REQ_IRQ_INDEX, 0, {&fd, 1});
  ASSERT_TRUE(set.ok()) << "no request interrupt: " << set.error().message();

  AsyncWrite remove(inst.sysfs_dir() + "/remove", "1");
  auto n = efd.value().wait(kBlocked);
  EXPECT_TRUE(n.ok()) << "the request eventfd was not signalled while removal waited";
  EXPECT_FALSE(remove.wait(0ms).has_value()) << "removal did not wait for the user";
  m.reset();  // the user lets go
  auto rc = remove.wait(kBlocked);
  ASSERT_TRUE(rc.has_value()) << "removal still blocked after the user closed";
  EXPECT_EQ(*rc, 0);
  EXPECT_FALSE(exists(inst.sysfs_dir()));
}

// Unbinding a PCI parent waits for the user of its instance; meanwhile other parents
// can still be added (no global lock is held across the wait), and the user is asked.
TEST(Request, UnbindingAPciParentInUseBlocksNoOtherParent) {
  MDEVMIG_REQUIRE_LAB();
  PciParent pci;
  ASSERT_TRUE(pci.ok());
  Instance inst(pci.bdf(), "quarter");
  ASSERT_TRUE(inst.ok());
  auto m = open_or_fail(inst);
  ASSERT_TRUE(m);
  auto efd = vfio::EventFd::create();
  ASSERT_TRUE(efd.ok());
  int fd = efd.value().fd();
  bool have_req = m->device.set_irq_eventfds(VFIO_PCI_REQ_IRQ_INDEX, 0, {&fd, 1}).ok();
  EXPECT_TRUE(have_req) << "no request interrupt";

  auto parents_before = mdevmig_parents();
  AsyncWrite unbind(pci.dir() + "/driver/unbind", pci.bdf());
  // The parent leaves mdev_bus as soon as its unregistration has started.
  EXPECT_TRUE(eventually([&] { return !exists("/sys/class/mdev_bus/" + pci.bdf()); }));
  if (have_req) {
    EXPECT_TRUE(efd.value().wait(kBlocked).ok()) << "the user was not asked to close";
  }
  EXPECT_FALSE(unbind.wait(0ms).has_value()) << "unbind did not wait for the user";

  AsyncWrite add("/sys/class/mdevmig/sim_add", "8");
  auto added = add.wait(kBlocked);
  EXPECT_TRUE(added.has_value()) << "sim_add blocked behind the PCI parent's removal";
  m.reset();
  auto unbound = unbind.wait(kBlocked);
  ASSERT_TRUE(unbound.has_value()) << "unbind still blocked after the user closed";
  EXPECT_EQ(*unbound, 0);
  if (!added) added = add.wait(kBlocked);
  ASSERT_TRUE(added.has_value());
  ASSERT_EQ(*added, 0);
  for (const auto& p : mdevmig_parents()) {
    if (std::find(parents_before.begin(), parents_before.end(), p) == parents_before.end()) {
      EXPECT_EQ(write_file("/sys/class/mdevmig/sim_remove", p), 0);
    }
  }
}

// ---- PCI parents: BAR2 stays out of user mappings unless opted in -------------------

TEST(PciBar2, NotMappableByDefaultButTrappedAccessWorks) {
  MDEVMIG_REQUIRE_LAB();
  ASSERT_EQ(read_file(kParam + "pci_bar2_mmap"), "N");
  PciParent pci;
  ASSERT_TRUE(pci.ok());
  Instance inst(pci.bdf(), "half");
  ASSERT_TRUE(inst.ok());
  auto m = open_or_fail(inst);
  ASSERT_TRUE(m);
  auto info = m->device.query_region_info(kBar2);
  ASSERT_TRUE(info.ok());
  EXPECT_FALSE(info.value().mmappable()) << "BAR2 of a PCI parent advertises mmap";
  void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, m->device.fd(),
                   static_cast<off_t>(info.value().offset));
  EXPECT_EQ(p, MAP_FAILED) << "BAR2 of a PCI parent could be mapped";
  if (p != MAP_FAILED) ::munmap(p, 4096);
  EXPECT_EQ(inst.attr("force_trapped"), "1");
  EXPECT_EQ(inst.set_attr("force_trapped", "0"), -EPERM);
  EXPECT_EQ(inst.attr("mode"), "trapped");

  // Region access is the way in, in every mode.
  std::vector<uint8_t> out(8192, 0x5a), in(8192);
  ASSERT_TRUE(m->device.write(kBar2, 4096, std::as_bytes(std::span(out))).ok());
  ASSERT_TRUE(m->device.read(kBar2, 4096, std::as_writable_bytes(std::span(in))).ok());
  EXPECT_EQ(in, out);
}

TEST(PciBar2, TheAdministratorCanOptIn) {
  MDEVMIG_REQUIRE_LAB();
  ASSERT_EQ(write_file(kParam + "pci_bar2_mmap", "Y"), 0);
  {
    PciParent pci;
    ASSERT_TRUE(pci.ok());
    Instance inst(pci.bdf(), "half");
    ASSERT_TRUE(inst.ok());
    auto m = open_or_fail(inst);
    ASSERT_TRUE(m);
    EXPECT_EQ(inst.attr("force_trapped"), "0");
    auto map = m->device.mmap_region(kBar2, 0);
    ASSERT_TRUE(map.ok()) << map.error().message();
    static_cast<volatile uint8_t*>(map.value().data())[0] = 0x77;
    auto b = m->device.read_as<uint8_t>(kBar2, 0);
    ASSERT_TRUE(b.ok());
    EXPECT_EQ(b.value(), 0x77);
  }
  EXPECT_EQ(write_file(kParam + "pci_bar2_mmap", "N"), 0);
}

// What the BAR held before the parent was bound (here written through the function's
// own sysfs resource file) is not what the first tenant of a slice reads.
TEST(PciBar2, TheFirstTenantStartsFromZeroedMemory) {
  MDEVMIG_REQUIRE_LAB();
  const std::string bdf = find_ivshmem();
  ASSERT_FALSE(bdf.empty()) << "the lab was not started with --ivshmem";
  const std::string dir = "/sys/bus/pci/devices/" + bdf;
  ASSERT_FALSE(exists(dir + "/driver")) << bdf << " is bound already";
  constexpr size_t kSize = 32u << 20;
  {
    ASSERT_EQ(write_file(dir + "/enable", "1"), 0);
    int fd = ::open((dir + "/resource2").c_str(), O_RDWR | O_CLOEXEC);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    void* p = ::mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ::close(fd);
    ASSERT_NE(p, MAP_FAILED) << std::strerror(errno);
    std::memset(p, 0xa5, kSize);
    EXPECT_EQ(static_cast<volatile uint8_t*>(p)[kSize - 1], 0xa5);
    ::munmap(p, kSize);
    ASSERT_EQ(write_file(dir + "/enable", "0"), 0);
  }
  PciParent pci;
  ASSERT_TRUE(pci.ok());
  for (const char* type : {"quarter", "full"}) {
    Instance inst(pci.bdf(), type);
    ASSERT_TRUE(inst.ok());
    auto m = open_or_fail(inst);
    ASSERT_TRUE(m);
    auto info = m->device.region(kBar2);
    ASSERT_TRUE(info.ok());
    std::vector<uint8_t> buf(info.value()->size);
    ASSERT_TRUE(m->device.read(kBar2, 0, std::as_writable_bytes(std::span(buf))).ok());
    EXPECT_EQ(static_cast<size_t>(std::count(buf.begin(), buf.end(), 0)), buf.size())
        << "a new " << type << " instance sees the BAR's previous contents";
  }
}

// ---- Region access edge cases ------------------------------------------------------

TEST(Bar2Region, AZeroLengthAccessTransfersNothing) {
  MDEVMIG_REQUIRE_LAB();
  Instance inst("mdevmig_sim0", "eighth");
  ASSERT_TRUE(inst.ok());
  auto m = open_or_fail(inst);
  ASSERT_TRUE(m);
  auto info = m->device.region(kBar2);
  ASSERT_TRUE(info.ok());
  char c = 0;
  off_t off = static_cast<off_t>(info.value()->offset);
  EXPECT_EQ(::pread(m->device.fd(), &c, 0, off), 0) << std::strerror(errno);
  EXPECT_EQ(::pwrite(m->device.fd(), &c, 0, off + 4096), 0) << std::strerror(errno);
}

// ---- Module exit ------------------------------------------------------------------

// rmmod while other threads keep adding sim parents: when rmmod returns, no parent of
// the module may be left (one added behind its back would outlive the module's code).
// The module is loaded again after each round.
TEST(ModuleExit, NoParentOutlivesRmmodRacingSimAdd) {
  MDEVMIG_REQUIRE_LAB();
  const char* ko = std::getenv("MDEVMIG_KO");
  ASSERT_NE(ko, nullptr);
  const char* params = std::getenv("MDEVMIG_KO_PARAMS");
  const std::string insmod = std::string("insmod ") + ko + " " + (params ? params : "");
  for (int round = 0; round < 4; ++round) {
    std::atomic<bool> stop{false};
    std::vector<std::thread> adders;
    adders.reserve(2);
    for (int i = 0; i < 2; ++i) {
      adders.emplace_back([&] {
        while (!stop.load()) {
          if (write_file("/sys/class/mdevmig/sim_add", "1") == -ENOENT)
            std::this_thread::sleep_for(5ms);
        }
      });
    }
    // Let the adders get going, so rmmod meets sim_add calls in flight.
    eventually([] { return mdevmig_parents().size() >= 3; }, 30s);
    int rc = std::system("rmmod mdevmig");
    stop = true;
    for (auto& t : adders) t.join();
    ASSERT_EQ(rc, 0) << "rmmod failed in round " << round;
    std::vector<std::string> left;
    for (const auto& name : list_dir("/sys/class/mdev_bus"))
      if (name.rfind("mdevmig_sim", 0) == 0) left.push_back(name);
    EXPECT_TRUE(left.empty()) << left.size() << " sim parent(s) outlived rmmod in round " << round
                              << ", e.g. " << left.front();
    EXPECT_FALSE(exists("/sys/class/mdevmig"));
    ASSERT_EQ(std::system(insmod.c_str()), 0) << "reloading the module failed in round " << round;
    if (!left.empty()) break;
  }
}

// ---- The DMA engine's budget -------------------------------------------------------

// A guest that keeps its ring full of 1 MiB FILL descriptors for `seconds`: the bytes
// the engine completed and the share of the guest's CPUs busy meanwhile (the test
// itself sleeps between polls).
struct Hostile {
  uint64_t bytes = 0;
  double seconds = 0;
  double cpu_busy = 0;  // 0..1, of all CPUs
};

std::vector<uint64_t> cpu_times() {
  std::istringstream in(read_file("/proc/stat").value_or(""));
  std::string cpu;
  std::vector<uint64_t> t;
  in >> cpu;
  uint64_t v;
  while (t.size() < 8 && in >> v) t.push_back(v);
  return t;
}

double busy_share(const std::vector<uint64_t>& a, const std::vector<uint64_t>& b) {
  uint64_t total = 0, idle = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    total += b[i] - a[i];
    if (i == 3 || i == 4) idle += b[i] - a[i];  // idle, iowait
  }
  return total ? static_cast<double>(total - idle) / static_cast<double>(total) : 0;
}

class EngineBudget : public testing::Test {
 protected:
  static constexpr uint64_t kDescLen = 1u << 20;

  void SetUp() override {
    MDEVMIG_REQUIRE_LAB();
    inst_ = std::make_unique<Instance>("mdevmig_sim0", "full");
    ASSERT_TRUE(inst_->ok());
  }
  void TearDown() override {
    close();
    inst_.reset();
  }

  // Opens the instance with guest memory mapped for DMA and the ring programmed.
  void open() {
    m_ = open_or_fail(*inst_);
    ASSERT_TRUE(m_);
    auto g = Mapping::anonymous(kGuestSize);
    ASSERT_TRUE(g.ok());
    guest_.emplace(std::move(g.value()));
    ASSERT_TRUE(
        m_->container.map_dma(kIova, guest_->data(), kGuestSize, vfio::DmaAccess::kReadWrite).ok());
    rig_.emplace(m_->device, static_cast<uint8_t*>(guest_->data()));
    rig_->program(false);
  }
  // Closing stops the engine, whatever it still had queued.
  void close() {
    rig_.reset();
    m_.reset();
    guest_.reset();
  }

  Hostile run(double seconds) {
    Hostile h;
    uint32_t head = 0;
    auto queue_full = [&] {
      while (rig_->tail() - head < kRingEntries - 1)
        rig_->queue(desc(MDEVMIG_DMA_OP_FILL, 0, 0, kDescLen, 0x1122334455667788ull));
      rig_->doorbell();
    };
    auto start = std::chrono::steady_clock::now();
    auto cpu0 = cpu_times();
    queue_full();
    while (std::chrono::steady_clock::now() - start < std::chrono::duration<double>(seconds)) {
      std::this_thread::sleep_for(20ms);
      while (head != rig_->tail() && __atomic_load_n(&rig_->cmpl(head % kRingEntries)->status,
                                                     __ATOMIC_ACQUIRE) != MDEVMIG_DMA_ST_PENDING) {
        h.bytes += rig_->cmpl(head % kRingEntries)->bytes_done;
        ++head;
      }
      queue_full();
    }
    h.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    h.cpu_busy = busy_share(cpu0, cpu_times());
    return h;
  }

  std::unique_ptr<Instance> inst_;
  std::optional<vfio::OpenMdev> m_;
  std::optional<Mapping> guest_;
  std::optional<DmaRig> rig_;
};

// A small budget holds the hostile guest to it: an upper bound on the bytes done, which
// a slow machine can only undercut.
TEST_F(EngineBudget, AHostileQueueIsHeldToTheBudget) {
  EXPECT_EQ(read_file(kParam + "engine_budget"), std::to_string(1ull << 30));
  EXPECT_EQ(inst_->attr("engine_budget"), std::to_string(1ull << 30));
  EXPECT_EQ(inst_->set_attr("engine_budget", "100"), -EINVAL);  // below one step a second
  constexpr uint64_t kBudget = 1u << 20;
  ASSERT_EQ(inst_->set_attr("engine_budget", std::to_string(kBudget)), 0);
  open();
  ASSERT_TRUE(rig_);
  Hostile h = run(4);
  // Per second of budget, plus the largest burst (one step) and the descriptor in flight.
  uint64_t bound =
      static_cast<uint64_t>(kBudget * (h.seconds + 1)) + MDEVMIG_DMA_STEP_BYTES + kDescLen;
  std::printf("budget %llu B/s: %llu bytes in %.1f s\n", static_cast<unsigned long long>(kBudget),
              static_cast<unsigned long long>(h.bytes), h.seconds);
  EXPECT_LE(h.bytes, bound);
  EXPECT_GT(h.bytes, 0u) << "the engine made no progress at all";
}

// Figures for BENCHMARKS.md: what a hostile guest takes with no budget (the engine as it
// was) and with the default budget. Prints; asserts only progress.
TEST_F(EngineBudget, WhatAHostileGuestTakes) {
  const double seconds = 5;
  auto measure = [&](uint64_t budget) {
    EXPECT_EQ(inst_->set_attr("engine_budget", std::to_string(budget)), 0);
    open();
    Hostile h = rig_ ? run(seconds) : Hostile{};
    close();
    return h;
  };
  Hostile unlimited = measure(0);
  Hostile def = measure(1ull << 30);
  Hostile small = measure(64ull << 20);
  auto line = [](const char* what, const Hostile& h) {
    std::printf("hostile guest, %-22s %8.1f MiB/s, guest CPUs busy %5.1f%% (of %ld)\n", what,
                static_cast<double>(h.bytes) / h.seconds / (1 << 20), h.cpu_busy * 100,
                ::sysconf(_SC_NPROCESSORS_ONLN));
  };
  line("unlimited:", unlimited);
  line("default 1 GiB/s:", def);
  line("64 MiB/s:", small);
  EXPECT_GT(unlimited.bytes, 0u);
}

}  // namespace
}  // namespace mdevmig::lab
