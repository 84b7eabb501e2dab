// The executor. Every op reads only its own arguments (Op::a) and the state earlier
// ops left (data_fds, mappings, the saved-stream sample), so a sequence replays the
// same way from its text. Hostile arguments go through raw syscalls; the project's
// VFIO client opens the instance and maps guest memory.
#include "fuzz/exec.h"

#include <execinfo.h>
#include <fcntl.h>
#include <linux/mdevmig.h>
#include <linux/pci_regs.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <optional>
#include <thread>

#include "common/sysfs.h"
#include "migration/vfio/mdev.h"
#include "migration/vfio/uapi.h"

namespace mdevmig::fuzz {
namespace {

constexpr uint32_t kV1Index = VFIO_PCI_NUM_REGIONS;  // the driver's extra region
constexpr uint64_t kV1DataOffset = 4096;
constexpr uint64_t kV1DataSize = 1u << 20;
constexpr uint64_t kIova = 0x40000000;
constexpr size_t kGuestSize = 4u << 20;
constexpr uint64_t kAliasIova = kIova + (8u << 20);
constexpr size_t kMaxMaps = 8;
constexpr size_t kMaxDataFds = 6;
constexpr size_t kMaxSample = 1536u << 10;

// ---- faults of touched mappings ------------------------------------------------------------

thread_local sigjmp_buf* t_jump = nullptr;

void on_fault(int sig, siginfo_t*, void*) {
  if (t_jump != nullptr) siglongjmp(*t_jump, sig);
  // A fault outside a deliberate touch is a bug of the fuzzer itself: die loudly.
  static constexpr char kMsg[] = "uapi_fuzz_lab: fault outside a mapping touch; backtrace:\n";
  (void)!::write(2, kMsg, sizeof kMsg - 1);
  void* frames[48];
  backtrace_symbols_fd(frames, backtrace(frames, 48), 2);
  signal(sig, SIG_DFL);
  raise(sig);
}

// ---- small helpers ---------------------------------------------------------------------------

uint32_t argsz_of(uint64_t sel, uint32_t exact, uint32_t header) {
  switch (sel) {
    case 0:
      return exact;
    case 1:
      return header;
    case 2:
      return exact ? exact - 1 : 0;
    case 3:
      return exact + 4096;
    default:
      return static_cast<uint32_t>(sel);
  }
}

void fill_random(uint8_t* p, size_t n, uint64_t seed) {
  Rng r(seed);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t v = r.next();
    std::memcpy(p + i, &v, 8);
  }
  for (; i < n; ++i) p[i] = static_cast<uint8_t>(r.next());
}

struct Map {
  uint8_t* addr = nullptr;
  size_t len = 0;
};

// One worker's view: its data_fds, mappings and sample of a saved stream.
struct Worker {
  int index = 0;
  WorkerMemory* mem = nullptr;
  std::vector<int> data_fds;
  std::vector<Map> maps;
  std::vector<uint8_t> sample;

  ~Worker() { clear(); }
  void clear() {
    for (int fd : data_fds) ::close(fd);
    data_fds.clear();
    for (auto& m : maps) ::munmap(m.addr, m.len);
    maps.clear();
  }
};

class SequenceRunner {
 public:
  SequenceRunner(const Sequence& s, RunContext& ctx,
                 std::vector<std::unique_ptr<WorkerMemory>>& mem)
      : s_(s), ctx_(ctx), mem_(mem) {}
  ~SequenceRunner() { teardown(); }

  std::string run();

 private:
  // setup / teardown
  std::string open_device();
  void close_device();
  void teardown();
  std::string check_baseline_after();

  // ops
  void exec(Worker& w, const Op& op);
  void exec_global(const GlobalOp& op);
  long sys(long rc) {
    ctx_.syscalls.fetch_add(1, std::memory_order_relaxed);
    return rc;
  }
  int dfd() const { return m_ ? m_->device.fd() : -1; }
  uint64_t region_pos(uint64_t index, uint64_t off) const {
    return id_base_ | (index << MDEVMIG_REGION_SHIFT_) | off;
  }
  uint8_t* user_buf(Worker& w, uint64_t kind, size_t len, size_t* cap);
  void finding(const std::string& what);

  void op_get_info(const Op& op);
  void op_region_info(const Op& op);
  void op_irq_info(const Op& op);
  void op_set_irqs(const Op& op);
  void op_feature(Worker& w, const Op& op);
  void op_mig_state(Worker& w, const Op& op);
  void leave_error_state();
  void op_log_start(Worker& w, const Op& op);
  void op_log_report(Worker& w, const Op& op);
  void op_log_stop(const Op& op);
  void op_data_read(Worker& w, const Op& op);
  void op_data_write(Worker& w, const Op& op);
  void op_data_close(Worker& w, const Op& op);
  void op_data_ioctl(Worker& w, const Op& op);
  void op_region_rw(Worker& w, const Op& op, bool write);
  void op_v1(Worker& w, const Op& op);
  void op_mmap(Worker& w, const Op& op);
  void op_touch(Worker& w, const Op& op);
  void op_mprotect_munmap(Worker& w, const Op& op, bool unmap);
  void op_rw_via_map(Worker& w, const Op& op);
  void op_sysfs(const Op& op);
  void op_bar0(const Op& op);
  void op_config(const Op& op);
  void op_ring(const Op& op);
  void op_descs(const Op& op);
  void op_dma_remap(const Op& op);
  void op_bad_ioctl(Worker& w, const Op& op);

  void g_reopen(const GlobalOp& op);
  void g_second_fd(const GlobalOp& op);
  void g_remove_open(const GlobalOp& op);
  void g_sim_add(const GlobalOp& op);
  void g_sim_remove(const GlobalOp& op);
  void g_create(const GlobalOp& op);
  void g_remove(const GlobalOp& op);

  bool pwrite32(uint32_t index, uint64_t off, uint32_t v) {
    return sys(::pwrite(dfd(), &v, 4, static_cast<off_t>(region_pos(index, off)))) == 4;
  }
  uint32_t pread32(uint32_t index, uint64_t off) {
    uint32_t v = 0xffffffff;
    sys(::pread(dfd(), &v, 4, static_cast<off_t>(region_pos(index, off))));
    return v;
  }

  static constexpr unsigned MDEVMIG_REGION_SHIFT_ = 40;

  const Sequence& s_;
  RunContext& ctx_;
  std::vector<std::unique_ptr<WorkerMemory>>& mem_;

  std::string uuid_;
  std::string dev_dir_;
  uint64_t id_base_ = 0;
  uint64_t mem_size_ = 0;
  // The guest memory outlives the open device (declared first: destroyed last).
  std::optional<vfio::Mapping> guest_;
  std::optional<vfio::OpenMdev> m_;
  std::vector<int> efds_;
  int null_fd_ = -1;
  bool removed_ = false;
  std::vector<std::string> extra_instances_;  // uuid
  std::vector<std::string> fuzz_parents_;
  std::vector<std::string> parents_before_;
  std::string baseline_avail_;

  std::mutex finding_mu_;
  std::mutex mig_mu_;  // with "error-state-set" avoided: one state change at a time
  std::string finding_;
};

// ---- setup and teardown ----------------------------------------------------------------------

std::string avail_text(const std::string& parent) {
  std::string out;
  for (const char* t : {"full", "half", "quarter", "eighth"}) {
    out += std::string(t) + "=" +
           lab::read_file(lab::type_dir(parent, t) + "/available_instances").value_or("?") + " ";
  }
  return out;
}

std::string SequenceRunner::open_device() {
  if (!guest_) {
    auto g = vfio::Mapping::anonymous(kGuestSize);
    if (!g.ok()) return "guest memory: " + g.error().message();
    guest_.emplace(std::move(g.value()));
  }
  auto m = vfio::open_mdev(uuid_);
  if (!m.ok()) return "open_mdev: " + m.error().message();
  m_.emplace(std::move(m.value()));
  ctx_.syscalls.fetch_add(8, std::memory_order_relaxed);
  auto r = m_->container.map_dma(kIova, guest_->data(), kGuestSize, vfio::DmaAccess::kReadWrite);
  if (!r.ok()) return "map_dma: " + r.error().message();
  auto bar2 = m_->device.region(VFIO_PCI_BAR2_REGION_INDEX);
  if (!bar2.ok()) return "BAR2 region info: " + bar2.error().message();
  id_base_ = bar2.value()->offset & ~((1ULL << 44) - 1);
  mem_size_ = bar2.value()->size;
  return {};
}

void SequenceRunner::close_device() { m_.reset(); }

void SequenceRunner::teardown() {
  close_device();
  for (int fd : efds_) ::close(fd);
  efds_.clear();
  if (null_fd_ >= 0) ::close(null_fd_);
  null_fd_ = -1;
  for (const auto& u : extra_instances_)
    lab::write_file("/sys/bus/mdev/devices/" + u + "/remove", "1");
  extra_instances_.clear();
  for (const auto& p : fuzz_parents_) lab::write_file("/sys/class/mdevmig/sim_remove", p);
  fuzz_parents_.clear();
  if (!uuid_.empty() && !removed_) lab::write_file(dev_dir_ + "/remove", "1");
  removed_ = true;
  guest_.reset();
}

void SequenceRunner::finding(const std::string& what) {
  std::lock_guard lk(finding_mu_);
  if (finding_.empty()) finding_ = what;
}

uint8_t* SequenceRunner::user_buf(Worker& w, uint64_t kind, size_t len, size_t* cap) {
  switch (kind) {
    case 1:
      *cap = len;
      return nullptr;
    case 2:
      if (!w.maps.empty()) {
        const Map& m = w.maps[len % w.maps.size()];
        *cap = m.len;
        return m.addr;
      }
      break;
    case 3:
      *cap = len;
      return w.mem->guard();
    default:
      break;
  }
  *cap = WorkerMemory::kBufSize;
  return w.mem->buf();
}

// ---- the run -----------------------------------------------------------------------------------

std::string SequenceRunner::run() {
  parents_before_ = lab::mdevmig_parents();
  baseline_avail_ = avail_text(ctx_.parent);
  uuid_ = lab::random_uuid();
  dev_dir_ = "/sys/bus/mdev/devices/" + uuid_;
  int rc = lab::write_file(lab::type_dir(ctx_.parent, s_.type) + "/create", uuid_);
  ctx_.syscalls.fetch_add(3, std::memory_order_relaxed);
  if (rc != 0) {
    removed_ = true;
    return "creating a " + s_.type + " instance on " + ctx_.parent + ": errno " +
           std::to_string(-rc);
  }
  if (auto err = open_device(); !err.empty()) return err;
  for (int i = 0; i < 6; ++i)
    efds_.push_back(static_cast<int>(sys(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK))));
  null_fd_ = ::open("/dev/null", O_RDWR | O_CLOEXEC);

  for (const auto& ph : s_.phases) {
    if (removed_ || !m_) break;
    const size_t n = ph.threads.size();
    std::vector<Worker> workers(n);
    for (size_t t = 0; t < n; ++t) {
      workers[t].index = static_cast<int>(t);
      workers[t].mem = mem_[t % mem_.size()].get();
    }
    auto body = [&](size_t t) {
      for (const auto& op : ph.threads[t]) {
        if (!finding_.empty()) break;
        exec(workers[t], op);
      }
    };
    std::vector<std::thread> threads;
    for (size_t t = 1; t < n; ++t) threads.emplace_back(body, t);
    if (n > 0) body(0);
    for (auto& th : threads) th.join();
    for (auto& w : workers) w.clear();
    if (!finding_.empty()) break;
    if (ph.after) exec_global(*ph.after);
    if (!finding_.empty()) break;
  }
  teardown();
  if (!finding_.empty()) return finding_;
  return check_baseline_after();
}

std::string SequenceRunner::check_baseline_after() {
  if (lab::read_file(dev_dir_ + "/remove"))
    return "instance " + uuid_ + " still exists after remove";
  auto parents = lab::mdevmig_parents();
  if (parents != parents_before_) {
    std::string have;
    for (const auto& p : parents) have += p + " ";
    return "mdevmig parents not back to baseline after the sequence: " + have;
  }
  if (auto now = avail_text(ctx_.parent); now != baseline_avail_)
    return "available_instances of " + ctx_.parent + " not back to baseline: was " +
           baseline_avail_ + "now " + now + "(slots leaked)";
  return {};
}

void SequenceRunner::exec(Worker& w, const Op& op) {
  if (!ctx_.skip.empty() && ctx_.skip.count(kind_name(op.kind))) {
    ctx_.skipped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (op.kind == Kind::kSetIrqs && ctx_.avoid.count("intx-count0") &&
      static_cast<uint32_t>(op.a[0]) == VFIO_PCI_INTX_IRQ_INDEX &&
      static_cast<uint32_t>(op.a[3]) == 0 &&
      (op.a[1] & VFIO_IRQ_SET_DATA_TYPE_MASK) != VFIO_IRQ_SET_DATA_NONE) {
    ctx_.skipped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (ctx_.log_ops) {
    std::lock_guard lk(ctx_.log_mu);
    std::printf("  %s\n", op_text(w.index, op).c_str());
    std::fflush(stdout);
  }
  ctx_.ops.fetch_add(1, std::memory_order_relaxed);
  ctx_.current[w.index % kMaxThreads].store(&op, std::memory_order_relaxed);
  switch (op.kind) {
    case Kind::kGetInfo:
      op_get_info(op);
      break;
    case Kind::kRegionInfo:
      op_region_info(op);
      break;
    case Kind::kIrqInfo:
      op_irq_info(op);
      break;
    case Kind::kSetIrqs:
      op_set_irqs(op);
      break;
    case Kind::kReset:
      sys(::ioctl(dfd(), VFIO_DEVICE_RESET));
      break;
    case Kind::kFeature:
      op_feature(w, op);
      break;
    case Kind::kMigState:
      op_mig_state(w, op);
      break;
    case Kind::kLogStart:
      op_log_start(w, op);
      break;
    case Kind::kLogReport:
      op_log_report(w, op);
      break;
    case Kind::kLogStop:
      op_log_stop(op);
      break;
    case Kind::kDataRead:
      op_data_read(w, op);
      break;
    case Kind::kDataWrite:
      op_data_write(w, op);
      break;
    case Kind::kDataClose:
      op_data_close(w, op);
      break;
    case Kind::kDataIoctl:
      op_data_ioctl(w, op);
      break;
    case Kind::kRegionRead:
      op_region_rw(w, op, false);
      break;
    case Kind::kRegionWrite:
      op_region_rw(w, op, true);
      break;
    case Kind::kV1:
      op_v1(w, op);
      break;
    case Kind::kMmap:
      op_mmap(w, op);
      break;
    case Kind::kTouch:
      op_touch(w, op);
      break;
    case Kind::kMprotect:
      op_mprotect_munmap(w, op, false);
      break;
    case Kind::kMunmap:
      op_mprotect_munmap(w, op, true);
      break;
    case Kind::kRwViaMap:
      op_rw_via_map(w, op);
      break;
    case Kind::kSysfs:
      op_sysfs(op);
      break;
    case Kind::kBar0:
      op_bar0(op);
      break;
    case Kind::kConfig:
      op_config(op);
      break;
    case Kind::kRing:
      op_ring(op);
      break;
    case Kind::kDescs:
      op_descs(op);
      break;
    case Kind::kDmaRemap:
      op_dma_remap(op);
      break;
    case Kind::kBadIoctl:
      op_bad_ioctl(w, op);
      break;
    case Kind::kCount:
      break;
  }
  ctx_.current[w.index % kMaxThreads].store(nullptr, std::memory_order_relaxed);
}

// ---- device ioctls ------------------------------------------------------------------------------

void SequenceRunner::op_get_info(const Op& op) {
  alignas(8) uint8_t buf[8192] = {};
  vfio_device_info info{};
  info.argsz = argsz_of(op.a[0], sizeof(info), offsetof(vfio_device_info, num_irqs) + 4);
  std::memcpy(buf, &info, sizeof info);
  const long rc = sys(::ioctl(dfd(), VFIO_DEVICE_GET_INFO, buf));
  std::memcpy(&info, buf, sizeof info);
  if (rc == 0 && (!(info.flags & VFIO_DEVICE_FLAGS_PCI) ||
                  info.num_regions < VFIO_PCI_NUM_REGIONS || info.num_irqs != VFIO_PCI_NUM_IRQS)) {
    finding("VFIO_DEVICE_GET_INFO (argsz " + std::to_string(info.argsz) + ") answered flags " +
            std::to_string(info.flags) + " num_regions " + std::to_string(info.num_regions) +
            " num_irqs " + std::to_string(info.num_irqs));
  }
}

void SequenceRunner::op_region_info(const Op& op) {
  constexpr size_t kBuf = 16384;
  alignas(8) static thread_local uint8_t buf[kBuf];
  std::memset(buf, 0, kBuf);
  vfio_region_info info{};
  info.argsz = argsz_of(op.a[1], sizeof(info) + 256, offsetof(vfio_region_info, offset) + 8);
  info.index = static_cast<uint32_t>(op.a[0]);
  std::memcpy(buf, &info, sizeof info);
  const long rc = sys(::ioctl(dfd(), VFIO_DEVICE_GET_REGION_INFO, buf));
  if (rc != 0) return;
  const uint32_t given = info.argsz;
  std::memcpy(&info, buf, sizeof info);
  if (info.index == VFIO_PCI_CONFIG_REGION_INDEX || info.index == VFIO_PCI_BAR0_REGION_INDEX ||
      info.index == VFIO_PCI_BAR2_REGION_INDEX || info.index == kV1Index) {
    const uint64_t want = info.index == VFIO_PCI_CONFIG_REGION_INDEX ? 256
                          : info.index == VFIO_PCI_BAR0_REGION_INDEX ? MDEVMIG_REGS_SIZE
                          : info.index == VFIO_PCI_BAR2_REGION_INDEX ? mem_size_
                                                                     : kV1DataOffset + kV1DataSize;
    if (info.size != want)
      finding("GET_REGION_INFO index " + std::to_string(info.index) + " size " +
              std::to_string(info.size));
  }
  if (!(info.flags & VFIO_REGION_INFO_FLAG_CAPS) || info.cap_offset == 0) return;
  // Walk the chain the kernel wrote: every header within argsz, offsets increasing.
  const uint32_t limit = std::min<uint32_t>(given, kBuf);
  uint32_t off = info.cap_offset, prev = 0;
  for (int n = 0; off != 0; ++n) {
    if (off < sizeof(info) || off <= prev || off + sizeof(vfio_info_cap_header) > limit || n > 16) {
      finding("GET_REGION_INFO index " + std::to_string(info.index) + " argsz " +
              std::to_string(given) + ": malformed capability chain at offset " +
              std::to_string(off));
      return;
    }
    vfio_info_cap_header h;
    std::memcpy(&h, buf + off, sizeof h);
    prev = off;
    off = h.next;
  }
}

void SequenceRunner::op_irq_info(const Op& op) {
  alignas(8) uint8_t buf[4096] = {};
  vfio_irq_info info{};
  info.argsz = argsz_of(op.a[1], sizeof(info), sizeof(info));
  info.index = static_cast<uint32_t>(op.a[0]);
  std::memcpy(buf, &info, sizeof info);
  if (sys(::ioctl(dfd(), VFIO_DEVICE_GET_IRQ_INFO, buf)) != 0) return;
  std::memcpy(&info, buf, sizeof info);
  if ((info.index == VFIO_PCI_INTX_IRQ_INDEX && info.count != 1) ||
      (info.index == VFIO_PCI_MSI_IRQ_INDEX && info.count != MDEVMIG_MSI_MAX_VECTORS))
    finding("GET_IRQ_INFO index " + std::to_string(info.index) + " count " +
            std::to_string(info.count));
}

void SequenceRunner::op_set_irqs(const Op& op) {
  alignas(8) uint8_t buf[4096] = {};
  vfio_irq_set hdr{};
  hdr.index = static_cast<uint32_t>(op.a[0]);
  hdr.flags = static_cast<uint32_t>(op.a[1]);
  hdr.start = static_cast<uint32_t>(op.a[2]);
  hdr.count = static_cast<uint32_t>(op.a[3]);
  const bool eventfds = (hdr.flags & VFIO_IRQ_SET_DATA_TYPE_MASK) == VFIO_IRQ_SET_DATA_EVENTFD;
  const size_t elem = eventfds ? 4 : (hdr.flags & VFIO_IRQ_SET_DATA_BOOL) ? 1 : 0;
  const size_t n = std::min<size_t>(hdr.count, 64);
  hdr.argsz = argsz_of(op.a[4], static_cast<uint32_t>(sizeof hdr + n * elem), sizeof hdr);
  std::memcpy(buf, &hdr, sizeof hdr);
  Rng r(op.a[5]);
  std::vector<int> temp;
  for (size_t i = 0; i < 64; ++i) {
    if (eventfds) {
      int32_t fd;
      switch (r.below(8)) {
        case 0:
          fd = -1;
          break;
        case 1:
          fd = dfd();
          break;  // not an eventfd
        case 2:
          fd = 100000;
          break;  // not open
        case 3:
          fd = -2;
          break;
        case 4: {  // closed right after the call
          fd = static_cast<int32_t>(sys(::eventfd(0, EFD_CLOEXEC)));
          temp.push_back(fd);
          break;
        }
        default:
          fd = efds_[r.below(efds_.size())];
          break;
      }
      std::memcpy(buf + sizeof hdr + 4 * i, &fd, 4);
    } else {
      buf[sizeof hdr + i] = static_cast<uint8_t>(r.chance(70) ? r.below(2) : r.next());
    }
  }
  sys(::ioctl(dfd(), VFIO_DEVICE_SET_IRQS, buf));
  for (int fd : temp) ::close(fd);
  for (int fd : efds_) {  // drain what the kernel signalled
    uint64_t v;
    sys(::read(fd, &v, sizeof v));
  }
}

void SequenceRunner::op_feature(Worker& w, const Op& op) {
  alignas(8) uint8_t buf[8192] = {};
  const uint32_t flags = static_cast<uint32_t>(op.a[1]);
  const uint32_t feature = flags & VFIO_DEVICE_FEATURE_MASK;
  size_t payload = 16;
  switch (feature) {
    case VFIO_DEVICE_FEATURE_MIGRATION:
      payload = sizeof(vfio_device_feature_migration);
      break;
    case VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE:
      payload = sizeof(vfio_device_feature_mig_state);
      break;
    case VFIO_DEVICE_FEATURE_DMA_LOGGING_START:
      payload = sizeof(vfio_device_feature_dma_logging_control);
      break;
    case VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT:
      payload = sizeof(vfio_device_feature_dma_logging_report);
      break;
    case VFIO_DEVICE_FEATURE_MIG_DATA_SIZE:
      payload = sizeof(vfio_device_feature_mig_data_size);
      break;
    default:
      break;
  }
  vfio_device_feature f{};
  f.argsz = argsz_of(op.a[2], static_cast<uint32_t>(sizeof f + payload), sizeof f);
  f.flags = flags;
  std::memcpy(buf, &f, sizeof f);
  fill_random(buf + sizeof f, 64, op.a[3]);
  if (feature == VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT) {
    // Random bitmap pointers could land in our own memory: no bitmap here (kLogReport
    // aims real ones at a guarded area).
    std::memset(buf + sizeof f + offsetof(vfio_device_feature_dma_logging_report, bitmap), 0, 8);
  }
  if (feature == VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE) {
    vfio_device_feature_mig_state st{};
    st.device_state = static_cast<uint32_t>(op.a[3] % 10);
    st.data_fd = -1;
    std::memcpy(buf + sizeof f, &st, sizeof st);
  }
  std::unique_lock lk(mig_mu_, std::defer_lock);
  if (feature == VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE && ctx_.avoid.count("error-state-set"))
    lk.lock();
  if (feature == VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE) leave_error_state();
  const long rc = sys(::ioctl(dfd(), VFIO_DEVICE_FEATURE, buf));
  if (rc == 0 && feature == VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE &&
      (flags & VFIO_DEVICE_FEATURE_SET) && !(flags & VFIO_DEVICE_FEATURE_PROBE)) {
    vfio_device_feature_mig_state st;
    std::memcpy(&st, buf + sizeof f, sizeof st);
    if (st.data_fd >= 0) w.data_fds.push_back(st.data_fd);
  }
}

// With "error-state-set" avoided: a device in ERROR is reset before a state change.
void SequenceRunner::leave_error_state() {
  if (!ctx_.avoid.count("error-state-set")) return;
  alignas(8) uint8_t buf[64] = {};
  vfio_device_feature f{};
  f.argsz = sizeof f + sizeof(vfio_device_feature_mig_state);
  f.flags = VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE;
  std::memcpy(buf, &f, sizeof f);
  if (sys(::ioctl(dfd(), VFIO_DEVICE_FEATURE, buf)) != 0) return;
  vfio_device_feature_mig_state st;
  std::memcpy(&st, buf + sizeof f, sizeof st);
  if (st.device_state == VFIO_DEVICE_STATE_ERROR) sys(::ioctl(dfd(), VFIO_DEVICE_RESET));
}

void SequenceRunner::op_mig_state(Worker& w, const Op& op) {
  alignas(8) uint8_t buf[256] = {};
  std::unique_lock lk(mig_mu_, std::defer_lock);  // the check and the change as one
  if (ctx_.avoid.count("error-state-set")) lk.lock();
  leave_error_state();
  vfio_device_feature f{};
  f.argsz = argsz_of(op.a[1], sizeof f + sizeof(vfio_device_feature_mig_state), sizeof f);
  f.flags = VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE;
  vfio_device_feature_mig_state st{};
  st.device_state = static_cast<uint32_t>(op.a[0]);
  st.data_fd = -1;
  std::memcpy(buf, &f, sizeof f);
  std::memcpy(buf + sizeof f, &st, sizeof st);
  if (sys(::ioctl(dfd(), VFIO_DEVICE_FEATURE, buf)) == 0) {
    std::memcpy(&st, buf + sizeof f, sizeof st);
    if (st.data_fd >= 0) {
      w.data_fds.push_back(st.data_fd);
      if (w.data_fds.size() > kMaxDataFds) {
        ::close(w.data_fds.front());
        w.data_fds.erase(w.data_fds.begin());
      }
    }
  }
  if (op.a[2] & 1) {  // and read it back
    f.flags = VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE;
    f.argsz = sizeof f + sizeof st;
    std::memcpy(buf, &f, sizeof f);
    sys(::ioctl(dfd(), VFIO_DEVICE_FEATURE, buf));
  }
  if (op.a[2] & 2) {  // and the STOP_COPY size estimate
    f.flags = VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_DATA_SIZE;
    f.argsz = sizeof f + sizeof(vfio_device_feature_mig_data_size);
    std::memcpy(buf, &f, sizeof f);
    sys(::ioctl(dfd(), VFIO_DEVICE_FEATURE, buf));
  }
}

void SequenceRunner::op_log_start(Worker& w, const Op& op) {
  alignas(8) uint8_t buf[256] = {};
  const uint64_t page = op.a[0];
  const uint64_t nranges = op.a[1];
  auto* ranges = reinterpret_cast<vfio_device_feature_dma_logging_range*>(w.mem->buf());
  Rng r(op.a[2]);
  for (size_t i = 0; i < 512; ++i) {
    uint64_t iova, len;
    const uint64_t p = page && !(page & (page - 1)) ? page : 4096;
    switch (r.below(8)) {
      case 0:  // zero length
        iova = kIova + p * r.below(16);
        len = 0;
        break;
      case 1:  // reaching the top of the address space
        iova = (~0ULL - p * (1 + r.below(4)) + 1) & ~(p - 1);
        len = p * (1 + r.below(4));
        break;
      case 2:
        iova = interesting(r) & ~(p - 1);
        len = interesting(r) & ~(p - 1);
        break;
      default:  // inside the guest buffer
        iova = (kIova + (r.below(kGuestSize) & ~(p - 1))) & ~(p - 1);
        len = p * (1 + r.below(std::max<uint64_t>(1, kGuestSize / p)));
        break;
    }
    if (ctx_.avoid.count("log-zero-length") && (len == 0 || iova + len < iova || iova + len == 0)) {
      iova = kIova;
      len = p;
    }
    ranges[i].iova = iova;
    ranges[i].length = len;
  }
  vfio_device_feature f{};
  vfio_device_feature_dma_logging_control c{};
  c.page_size = page;
  c.num_ranges = static_cast<uint32_t>(nranges);
  c.ranges = reinterpret_cast<uintptr_t>(ranges);
  f.argsz = argsz_of(op.a[3], sizeof f + sizeof c, sizeof f);
  f.flags = VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_DMA_LOGGING_START;
  std::memcpy(buf, &f, sizeof f);
  std::memcpy(buf + sizeof f, &c, sizeof c);
  sys(::ioctl(dfd(), VFIO_DEVICE_FEATURE, buf));
}

void SequenceRunner::op_log_report(Worker& w, const Op& op) {
  alignas(8) uint8_t buf[256] = {};
  uint8_t* area = w.mem->bitmap();
  const size_t area_size = WorkerMemory::kBitmapSize;
  vfio_device_feature_dma_logging_report rep{};
  rep.iova = op.a[0] < 8 ? kIova + op.a[0] * 4096 + ((op.a[5] & 3) == 0 ? 1 : 0) : op.a[0];
  rep.length = op.a[1];
  rep.page_size = op.a[2];
  // Bytes the kernel may write: whole u64 words covering length / page_size bits.
  uint64_t bits = 0;
  if (rep.page_size && !(rep.page_size & (rep.page_size - 1))) {
    bits = rep.length / rep.page_size + ((rep.length % rep.page_size) ? 1 : 0);
    if (rep.length / rep.page_size == 0 && rep.length) bits = 1;
  }
  const uint64_t need = (bits + 63) / 64 * 8;
  uint8_t* bitmap = nullptr;
  const uint64_t place = op.a[3];
  if (place < 12) {
    const uint64_t back = need + place * 8;
    bitmap = back <= area_size ? area + area_size - back : area;
  } else if (place == 12) {
    bitmap = area;
  } else if (place == 13) {
    bitmap = nullptr;
  } else if (place == 14) {
    bitmap = area + 8 * (1 + (op.a[5] >> 8) % 64);
  } else {
    bitmap = w.mem->guard();
  }
  const bool checkable = bitmap >= area && bitmap < area + area_size;
  if (checkable) std::memset(area, 0, area_size);
  rep.bitmap = reinterpret_cast<uintptr_t>(bitmap);
  vfio_device_feature f{};
  f.argsz = argsz_of(op.a[4], sizeof f + sizeof rep, sizeof f);
  f.flags = VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT;
  std::memcpy(buf, &f, sizeof f);
  std::memcpy(buf + sizeof f, &rep, sizeof rep);
  const long rc = sys(::ioctl(dfd(), VFIO_DEVICE_FEATURE, buf));
  if (!checkable) return;
  const uint8_t* lo = bitmap;
  const uint8_t* hi = bitmap + std::min<uint64_t>(need, area + area_size - bitmap);
  for (const uint8_t* p = area; p < area + area_size; ++p) {
    if (*p && (p < lo || p >= hi)) {
      char what[320];
      std::snprintf(what, sizeof what,
                    "DMA_LOGGING_REPORT (rc %ld, iova 0x%" PRIx64 " length 0x%" PRIx64
                    " page_size 0x%" PRIx64 ") wrote byte %+td of its %" PRIu64
                    "-byte bitmap (outside the caller's window)",
                    rc, static_cast<uint64_t>(rep.iova), static_cast<uint64_t>(rep.length),
                    static_cast<uint64_t>(rep.page_size), p - lo, need);
      finding(what);
      return;
    }
  }
}

void SequenceRunner::op_log_stop(const Op& op) {
  alignas(8) uint8_t buf[64] = {};
  vfio_device_feature f{};
  f.argsz = op.a[0] == 3 ? 4 : sizeof f;
  f.flags = VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP |
            (op.a[0] == 1   ? VFIO_DEVICE_FEATURE_GET
             : op.a[0] == 2 ? VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_SET
                            : VFIO_DEVICE_FEATURE_SET);
  std::memcpy(buf, &f, sizeof f);
  sys(::ioctl(dfd(), VFIO_DEVICE_FEATURE, buf));
}

// ---- data_fd ------------------------------------------------------------------------------------

void SequenceRunner::op_data_read(Worker& w, const Op& op) {
  if (w.data_fds.empty()) return;
  const int fd = w.data_fds[op.a[0] % w.data_fds.size()];
  size_t cap;
  uint8_t* p = user_buf(w, op.a[2] < 7 ? 0 : op.a[2] - 6, op.a[1], &cap);
  const size_t len =
      p == nullptr || p == w.mem->guard() ? op.a[1] : std::min<uint64_t>(op.a[1], cap);
  const long n = sys(::read(fd, p, len));
  if (n > 0 && p == w.mem->buf() && w.sample.size() + n <= kMaxSample)
    w.sample.insert(w.sample.end(), p, p + n);
}

void SequenceRunner::op_data_write(Worker& w, const Op& op) {
  if (w.data_fds.empty()) return;
  const int fd = w.data_fds[op.a[0] % w.data_fds.size()];
  uint8_t* p = w.mem->buf();
  size_t len = std::min<uint64_t>(op.a[3], WorkerMemory::kBufSize);
  const uint64_t mode = op.a[1];
  if (mode <= 4 && !w.sample.empty()) {
    const size_t from = mode == 0 ? 0 : op.a[2] % w.sample.size();
    len = std::min(len, w.sample.size() - from);
    if (mode == 0) len = w.sample.size();
    std::memcpy(p, w.sample.data() + from, len);
    if (mode >= 3) {  // a few flipped bytes
      Rng r(op.a[4]);
      for (unsigned i = 0, k = 1 + r.below(8); i < k && len; ++i)
        p[r.below(len)] ^= static_cast<uint8_t>(1 + r.below(255));
    }
  } else if (mode == 5) {
    // A record header with a plausible tag and hostile length.
    Rng r(op.a[4]);
    mdevmig_rec_hdr h{};
    h.tag = MDEVMIG_REC_TAG(static_cast<uint32_t>(r.below(9)));
    h.flags = r.chance(80) ? MDEVMIG_REC_F_MANDATORY : static_cast<uint32_t>(r.next());
    h.length = interesting(r);
    h.hash = r.next();
    len = std::max<size_t>(len, sizeof h);
    fill_random(p, len, op.a[4]);
    std::memcpy(p, &h, sizeof h);
  } else {
    fill_random(p, len, op.a[4]);
  }
  sys(::write(fd, mode == 7 ? nullptr : p, len));
}

void SequenceRunner::op_data_close(Worker& w, const Op& op) {
  if (w.data_fds.empty()) return;
  const size_t i = op.a[0] % w.data_fds.size();
  sys(::close(w.data_fds[i]));
  w.data_fds.erase(w.data_fds.begin() + static_cast<long>(i));
}

void SequenceRunner::op_data_ioctl(Worker& w, const Op& op) {
  if (w.data_fds.empty()) return;
  const int fd = w.data_fds[op.a[0] % w.data_fds.size()];
  alignas(8) uint8_t buf[4096] = {};
  if (op.a[1] < 3) {
    vfio_precopy_info info{};
    info.argsz = argsz_of(op.a[2], sizeof info, 8);
    std::memcpy(buf, &info, sizeof info);
    sys(::ioctl(fd, VFIO_MIG_GET_PRECOPY_INFO, op.a[1] == 2 ? nullptr : buf));
  } else {
    const unsigned long cmd = _IOC(op.a[3] & 3, ';', (op.a[3] >> 8) & 0xff, (op.a[3] >> 16) & 0x3f);
    sys(::ioctl(fd, cmd, buf));
  }
}

// ---- regions -----------------------------------------------------------------------------------

void SequenceRunner::op_region_rw(Worker& w, const Op& op, bool write) {
  const uint64_t index = op.a[0], off = op.a[1];
  uint64_t pos;
  switch (op.a[5]) {
    case 1:
      pos = (id_base_ + (1ULL << 44)) | (index << 40) | off;
      break;  // another instance's window
    case 2:
      pos = off;
      break;  // raw
    case 3:
      pos = static_cast<uint64_t>(-static_cast<int64_t>(off | 1));
      break;  // negative
    default:
      pos = region_pos(index, off);
      break;
  }
  size_t cap;
  uint8_t* p = user_buf(w, op.a[4], op.a[2], &cap);
  const size_t len =
      (p == nullptr || p == w.mem->guard()) ? op.a[2] : std::min<uint64_t>(op.a[2], cap);
  if (write && p == w.mem->buf()) {
    if (len <= 8)
      std::memcpy(p, &op.a[3], len);
    else
      fill_random(p, std::min(len, cap), op.a[3]);
  }
  const long n = write ? sys(::pwrite(dfd(), p, len, static_cast<off_t>(pos)))
                       : sys(::pread(dfd(), p, len, static_cast<off_t>(pos)));
  if (n > 0 && op.a[5] == 1)
    finding("region access at an offset of another instance's window succeeded");
  if (!write && n == 4 && op.a[5] == 0 && index == VFIO_PCI_CONFIG_REGION_INDEX && off == 0 &&
      p == w.mem->buf()) {
    uint32_t id;
    std::memcpy(&id, p, 4);
    if (id != (MDEVMIG_PCI_VENDOR_ID | (MDEVMIG_PCI_DEVICE_ID << 16)))
      finding("config space vendor/device reads " + std::to_string(id));
  }
}

void SequenceRunner::op_v1(Worker& w, const Op& op) {
  const uint64_t val = op.a[1];
  uint64_t v = 0;
  const auto at = [&](uint64_t off) { return static_cast<off_t>(region_pos(kV1Index, off)); };
  switch (op.a[0]) {
    case 0: {
      const uint32_t st = static_cast<uint32_t>(val);
      sys(::pwrite(dfd(), &st, 4, at(0)));
      break;
    }
    case 1:
      sys(::pread(dfd(), &v, 8, at(8)));
      break;
    case 2: {  // stage, then read what was staged, as QEMU does
      if (sys(::pread(dfd(), &v, 8, at(16))) != 8) break;
      uint64_t size = 0;
      if (sys(::pread(dfd(), &size, 8, at(24))) != 8 || size == 0) break;
      size = std::min<uint64_t>(size, WorkerMemory::kBufSize);
      const long n = sys(::pread(dfd(), w.mem->buf(), size, at(v)));
      if (n > 0 && w.sample.size() + n <= kMaxSample)
        w.sample.insert(w.sample.end(), w.mem->buf(), w.mem->buf() + n);
      break;
    }
    case 3:
      sys(::pread(dfd(), &v, 8, at(24)));
      break;
    case 4:
      sys(::pwrite(dfd(), &val, 8, at(24)));
      break;
    case 5: {  // resume: data into the section, then its size
      if (w.sample.empty()) break;
      const size_t from = op.a[2] % w.sample.size();
      const size_t len = std::min<size_t>({op.a[3], w.sample.size() - from, kV1DataSize});
      if (sys(::pwrite(dfd(), w.sample.data() + from, len, at(kV1DataOffset))) < 0) break;
      const uint64_t size = len;
      sys(::pwrite(dfd(), &size, 8, at(24)));
      break;
    }
    case 6: {
      const size_t len = std::min<uint64_t>(op.a[3], WorkerMemory::kBufSize);
      sys(::pread(dfd(), w.mem->buf(), len, at(op.a[2])));
      break;
    }
    case 7: {  // wrong sizes and offsets on the registers
      const size_t len = op.a[3] & 15;
      fill_random(w.mem->buf(), 16, val);
      if (val & 1)
        sys(::pwrite(dfd(), w.mem->buf(), len, at(op.a[2] & 0x3f)));
      else
        sys(::pread(dfd(), w.mem->buf(), len, at(op.a[2] & 0x3f)));
      break;
    }
    default: {
      uint32_t st = 0;
      sys(::pread(dfd(), &st, 4, at(0)));
      break;
    }
  }
}

// ---- mappings ----------------------------------------------------------------------------------

void SequenceRunner::op_mmap(Worker& w, const Op& op) {
  const uint64_t index = op.a[0];
  const uint64_t off = op.a[1] * 4096;
  uint64_t len = op.a[2] < 4096 ? op.a[2] * 4096 : op.a[2];
  len = std::min<uint64_t>(len, 1ULL << 36);
  int prot = 0;
  if (op.a[3] & 1) prot |= PROT_READ;
  if (op.a[3] & 2) prot |= PROT_WRITE;
  if (op.a[3] & 4) prot |= PROT_EXEC;
  const int flags = op.a[4] ? MAP_PRIVATE : MAP_SHARED;
  ctx_.syscalls.fetch_add(1, std::memory_order_relaxed);
  void* p = ::mmap(nullptr, len, prot, flags, dfd(), static_cast<off_t>(region_pos(index, off)));
  if (p == MAP_FAILED) return;
  w.maps.push_back(Map{static_cast<uint8_t*>(p), len});
  if (w.maps.size() > kMaxMaps) {
    sys(::munmap(w.maps.front().addr, w.maps.front().len));
    w.maps.erase(w.maps.begin());
  }
}

void SequenceRunner::op_touch(Worker& w, const Op& op) {
  if (w.maps.empty()) return;
  const Map& m = w.maps[op.a[0] % w.maps.size()];
  volatile uint8_t* p =
      m.addr + (op.a[1] % std::max<size_t>(1, m.len / 4096)) * 4096 + (op.a[3] & 0xff8);
  sigjmp_buf jb;
  if (sigsetjmp(jb, 1) == 0) {
    t_jump = &jb;
    std::atomic_signal_fence(std::memory_order_seq_cst);  // armed before the access
    if (op.a[2] != 1) (void)*p;
    if (op.a[2] != 0) *p = static_cast<uint8_t>(op.a[3] >> 12);
    std::atomic_signal_fence(std::memory_order_seq_cst);
  }
  t_jump = nullptr;
  ctx_.syscalls.fetch_add(1, std::memory_order_relaxed);  // a fault, counted as an entry
}

void SequenceRunner::op_mprotect_munmap(Worker& w, const Op& op, bool unmap) {
  if (w.maps.empty()) return;
  const size_t i = op.a[0] % w.maps.size();
  Map& m = w.maps[i];
  const size_t pages = std::max<size_t>(1, m.len / 4096);
  const size_t first = op.a[1] % pages;
  const size_t n = std::min<size_t>(op.a[2], pages - first);
  uint8_t* at = m.addr + first * 4096;
  if (!unmap) {
    sys(::mprotect(at, n * 4096, static_cast<int>(op.a[3] & 7)));
    return;
  }
  if (first == 0 && n == pages) {
    sys(::munmap(m.addr, m.len));
    w.maps.erase(w.maps.begin() + static_cast<long>(i));
    return;
  }
  // A hole: replace the pages atomically with an inaccessible anonymous mapping, so the
  // address range never gets reused behind our back while we still track it.
  sys(reinterpret_cast<long>(
      ::mmap(at, n * 4096, PROT_NONE, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)));
}

void SequenceRunner::op_rw_via_map(Worker& w, const Op& op) {
  if (w.maps.empty()) return;
  const Map& m = w.maps[op.a[3] % w.maps.size()];
  const size_t at = (op.a[5] % m.len) & ~size_t{7};
  const size_t len = std::min<uint64_t>(op.a[2], m.len - at);
  const off_t pos = static_cast<off_t>(region_pos(op.a[0], op.a[1] % (mem_size_ ? mem_size_ : 1)));
  if (op.a[4])
    sys(::pwrite(dfd(), m.addr + at, len, pos));
  else
    sys(::pread(dfd(), m.addr + at, len, pos));
}

// ---- sysfs -----------------------------------------------------------------------------------

void SequenceRunner::op_sysfs(const Op& op) {
  static constexpr const char* kModes[] = {"passthrough", "tracked",     "trapped",     "", "bogus",
                                           "tracked\n",   "trapped\n\n", "passthroughX"};
  static constexpr const char* kBools[] = {"0", "1", "yes", "n", "2", "", "1\n", "on"};
  static constexpr const char* kDirty[] = {"clear",  "clear\n", "x", "",
                                           "clearx", "clear",   "1", "clear"};
  const std::string dir = dev_dir_ + "/mdevmig/";
  ctx_.syscalls.fetch_add(3, std::memory_order_relaxed);
  switch (op.a[0]) {
    case 0:
      lab::write_file(dir + "mode", kModes[op.a[1] % 8]);
      break;
    case 1:
      lab::write_file(dir + "force_trapped", kBools[op.a[1] % 8]);
      break;
    case 2:
      lab::write_file(dir + "dirty_pages", kDirty[op.a[1] % 8]);
      break;
    case 3:
      (void)lab::read_file(dir + "dirty_ranges");
      break;
    case 4:
      (void)lab::read_file(dir + "migration");
      break;
    case 5:
      (void)lab::read_file(dir + (op.a[1] & 1 ? "mode" : op.a[1] & 2 ? "memory" : "dirty_pages"));
      break;
    default:
      (void)lab::read_file(lab::type_dir(ctx_.parent, s_.type) + "/available_instances");
      break;
  }
}

// ---- guest-side chaos ----------------------------------------------------------------------

void SequenceRunner::op_bar0(const Op& op) {
  const size_t len = std::min<uint64_t>(op.a[1], 8);
  sys(::pwrite(dfd(), &op.a[2], len,
               static_cast<off_t>(region_pos(VFIO_PCI_BAR0_REGION_INDEX, op.a[0]))));
}

void SequenceRunner::op_config(const Op& op) {
  const size_t len = std::min<uint64_t>(op.a[1], 8);
  sys(::pwrite(dfd(), &op.a[2], len,
               static_cast<off_t>(region_pos(VFIO_PCI_CONFIG_REGION_INDEX, op.a[0]))));
}

void SequenceRunner::op_ring(const Op& op) {
  uint16_t cmd = op.a[3] ? PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER : 0;
  if (op.a[5] & 1) cmd |= PCI_COMMAND_INTX_DISABLE;
  sys(::pwrite(dfd(), &cmd, 2,
               static_cast<off_t>(region_pos(VFIO_PCI_CONFIG_REGION_INDEX, PCI_COMMAND))));
  if (op.a[4]) {
    pwrite32(VFIO_PCI_CONFIG_REGION_INDEX, MDEVMIG_CFG_MSI_CAP + PCI_MSI_ADDRESS_LO, 0xfee00000);
    const uint16_t data = 0x41,
                   flags = static_cast<uint16_t>(PCI_MSI_FLAGS_ENABLE | ((op.a[5] >> 1) & 0x70));
    sys(::pwrite(dfd(), &data, 2,
                 static_cast<off_t>(region_pos(VFIO_PCI_CONFIG_REGION_INDEX,
                                               MDEVMIG_CFG_MSI_CAP + PCI_MSI_DATA_64))));
    sys(::pwrite(dfd(), &flags, 2,
                 static_cast<off_t>(region_pos(VFIO_PCI_CONFIG_REGION_INDEX,
                                               MDEVMIG_CFG_MSI_CAP + PCI_MSI_FLAGS))));
  }
  const uint64_t base = op.a[0] < 64 ? kIova + op.a[0] * (64u << 10) : op.a[0];
  pwrite32(VFIO_PCI_BAR0_REGION_INDEX, MDEVMIG_REG_RING_BASE_LO, static_cast<uint32_t>(base));
  pwrite32(VFIO_PCI_BAR0_REGION_INDEX, MDEVMIG_REG_RING_BASE_HI, static_cast<uint32_t>(base >> 32));
  pwrite32(VFIO_PCI_BAR0_REGION_INDEX, MDEVMIG_REG_RING_SIZE, static_cast<uint32_t>(op.a[1]));
  pwrite32(VFIO_PCI_BAR0_REGION_INDEX, MDEVMIG_REG_INT_MASK,
           static_cast<uint32_t>(op.a[5] >> 8) & 0xf);
  pwrite32(VFIO_PCI_BAR0_REGION_INDEX, MDEVMIG_REG_CTRL, static_cast<uint32_t>(op.a[2]));
}

void SequenceRunner::op_descs(const Op& op) {
  const uint64_t base =
      pread32(VFIO_PCI_BAR0_REGION_INDEX, MDEVMIG_REG_RING_BASE_LO) |
      (uint64_t{pread32(VFIO_PCI_BAR0_REGION_INDEX, MDEVMIG_REG_RING_BASE_HI)} << 32);
  const uint32_t size = pread32(VFIO_PCI_BAR0_REGION_INDEX, MDEVMIG_REG_RING_SIZE);
  const uint32_t tail = pread32(VFIO_PCI_BAR0_REGION_INDEX, MDEVMIG_REG_RING_TAIL);
  const uint32_t count = static_cast<uint32_t>(std::min<uint64_t>(op.a[0], 4096));
  auto* guest = static_cast<uint8_t*>(guest_->data());
  Rng r(op.a[1]);
  const auto guest_iova = [&] {
    return r.chance(85)
               ? kIova + (r.below(kGuestSize) & ~static_cast<uint64_t>(r.chance(80) ? 7 : 0))
               : interesting(r);
  };
  const auto dev_off = [&] {
    return r.chance(85) ? r.below(mem_size_ ? mem_size_ : 1) : interesting(r);
  };
  for (uint32_t i = 0; size && size <= 4096 && i < count; ++i) {
    mdevmig_dma_desc d{};
    d.opcode = r.chance(90) ? 1 + static_cast<uint32_t>(r.below(MDEVMIG_DMA_OP_MAX))
                            : static_cast<uint32_t>(interesting(r));
    d.flags =
        r.chance(90) ? static_cast<uint32_t>(r.below(2)) : static_cast<uint32_t>(interesting(r));
    switch (d.opcode) {
      case MDEVMIG_DMA_OP_COPY_TO_DEV:
        d.src = guest_iova();
        d.dst = dev_off();
        break;
      case MDEVMIG_DMA_OP_COPY_FROM_DEV:
        d.src = dev_off();
        d.dst = guest_iova();
        break;
      case MDEVMIG_DMA_OP_COPY_GUEST:
        d.src = guest_iova();
        d.dst = guest_iova();
        break;
      case MDEVMIG_DMA_OP_FILL:
        d.dst = dev_off();
        d.pattern = r.next();
        break;
      case MDEVMIG_DMA_OP_HASH:
        d.src = dev_off();
        d.dst = guest_iova();
        break;
      default:
        d.src = r.next();
        d.dst = r.next();
        break;
    }
    d.len = r.chance(70) ? r.below(64u << 10) : r.chance(70) ? r.below(kGuestSize) : interesting(r);
    d.cmpl = r.chance(85) ? kIova + (64u << 10) + ((tail + i) % size) * 32 : guest_iova();
    d.user_data = r.next();
    d.rsvd = r.chance(95) ? 0 : r.next();
    const uint64_t at = base + uint64_t{(tail + i) % size} * sizeof d;
    if (at >= kIova && at - kIova <= kGuestSize - sizeof d)
      std::memcpy(guest + (at - kIova), &d, sizeof d);
  }
  uint32_t new_tail = tail + count;
  if (op.a[2] == 4) new_tail = static_cast<uint32_t>(r.next());
  if (op.a[2] != 5) pwrite32(VFIO_PCI_BAR0_REGION_INDEX, MDEVMIG_REG_RING_TAIL, new_tail);
}

void SequenceRunner::op_dma_remap(const Op& op) {
  const int cfd = m_->container.fd();
  vfio_iommu_type1_dma_unmap un{};
  un.argsz = sizeof un;
  vfio_iommu_type1_dma_map map{};
  map.argsz = sizeof map;
  switch (op.a[0]) {
    case 0:
      un.iova = kIova;
      un.size = kGuestSize;
      sys(::ioctl(cfd, VFIO_IOMMU_UNMAP_DMA, &un));
      break;
    case 1:
      un.iova = kIova + op.a[1];
      un.size = op.a[2];
      sys(::ioctl(cfd, VFIO_IOMMU_UNMAP_DMA, &un));
      break;
    case 2:
      map.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
      map.vaddr = reinterpret_cast<uintptr_t>(guest_->data());
      map.iova = kIova;
      map.size = kGuestSize;
      sys(::ioctl(cfd, VFIO_IOMMU_MAP_DMA, &map));
      break;
    case 3:  // a read-only alias of the same memory
      map.flags = VFIO_DMA_MAP_FLAG_READ;
      map.vaddr = reinterpret_cast<uintptr_t>(guest_->data()) + op.a[1] % kGuestSize;
      map.iova = kAliasIova;
      map.size = std::min<uint64_t>(op.a[2], kGuestSize - op.a[1] % kGuestSize);
      sys(::ioctl(cfd, VFIO_IOMMU_MAP_DMA, &map));
      break;
    default:
      un.iova = kAliasIova;
      un.size = kGuestSize;
      sys(::ioctl(cfd, VFIO_IOMMU_UNMAP_DMA, &un));
      break;
  }
}

void SequenceRunner::op_bad_ioctl(Worker& w, const Op& op) {
  unsigned long cmd;
  if (op.a[2] % 10 < 7) {
    cmd = _IOC(op.a[0] & 3, ';', (op.a[0] >> 8) & 0xff, (op.a[0] >> 16) & 0x3fff);
  } else {
    cmd = static_cast<uint32_t>(op.a[0]);
    if (_IOC_TYPE(cmd) == 'X' || _IOC_TYPE(cmd) == 0x94 || _IOC_TYPE(cmd) == 'f' ||
        _IOC_TYPE(cmd) == 0)
      cmd = _IOC(_IOC_NONE, ';', 0xfe, 0);  // keep clear of generic file and freeze ioctls
  }
  std::memset(w.mem->buf(), 0, 65536);
  void* arg = op.a[1] == 0   ? static_cast<void*>(w.mem->buf())
              : op.a[1] == 1 ? nullptr
                             : reinterpret_cast<void*>(op.a[3] & 0xffff);
  sys(::ioctl(dfd(), cmd, arg));
}

// ---- global ops ---------------------------------------------------------------------------------

void SequenceRunner::exec_global(const GlobalOp& op) {
  if (!ctx_.skip.empty() && ctx_.skip.count(global_kind_name(op.kind))) {
    ctx_.skipped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (ctx_.log_ops) {
    std::printf("  %s\n", global_op_text(op).c_str());
    std::fflush(stdout);
  }
  ctx_.ops.fetch_add(1, std::memory_order_relaxed);
  switch (op.kind) {
    case GlobalKind::kReopen:
      g_reopen(op);
      break;
    case GlobalKind::kSecondFd:
      g_second_fd(op);
      break;
    case GlobalKind::kRemoveOpen:
      g_remove_open(op);
      break;
    case GlobalKind::kSimAdd:
      g_sim_add(op);
      break;
    case GlobalKind::kSimRemove:
      g_sim_remove(op);
      break;
    case GlobalKind::kCreate:
      g_create(op);
      break;
    case GlobalKind::kRemove:
      g_remove(op);
      break;
    case GlobalKind::kCount:
      break;
  }
}

void SequenceRunner::g_reopen(const GlobalOp& op) {
  close_device();
  if (auto err = open_device(); !err.empty()) {
    finding("reopen: " + err);
    return;
  }
  // The previous opener's data must be gone: the v1 data section and device memory.
  std::vector<uint8_t> buf(256u << 10);
  const uint64_t v1_check = ctx_.avoid.count("v1-data-after-close") ? 0 : kV1DataSize;
  for (uint64_t off = 0; off < v1_check; off += buf.size()) {
    if (sys(::pread(dfd(), buf.data(), buf.size(),
                    static_cast<off_t>(region_pos(kV1Index, kV1DataOffset + off)))) !=
        static_cast<long>(buf.size()))
      break;
    if (std::any_of(buf.begin(), buf.end(), [](uint8_t b) { return b != 0; })) {
      finding(
          "after close and reopen, the v1 data section still holds the previous opener's data (at "
          "+" +
          std::to_string(off) + ")");
      return;
    }
  }
  Rng r(op.a[2]);
  for (int i = 0; i < 4 && mem_size_ >= buf.size(); ++i) {
    const uint64_t off =
        i == 0 ? 0 : r.below(mem_size_ / 4096) * 4096 % (mem_size_ - buf.size() + 1);
    if (sys(::pread(dfd(), buf.data(), buf.size(),
                    static_cast<off_t>(region_pos(VFIO_PCI_BAR2_REGION_INDEX, off)))) !=
        static_cast<long>(buf.size()))
      break;
    if (std::any_of(buf.begin(), buf.end(), [](uint8_t b) { return b != 0; })) {
      finding("after close and reopen, device memory at " + std::to_string(off) + " is not zero");
      return;
    }
  }
  if (pread32(VFIO_PCI_BAR0_REGION_INDEX, MDEVMIG_REG_ID) != MDEVMIG_ID_MAGIC ||
      pread32(VFIO_PCI_BAR0_REGION_INDEX, MDEVMIG_REG_RING_SIZE) != 0)
    finding("after reopen BAR0 is not at its reset values");
}

void SequenceRunner::g_second_fd(const GlobalOp& op) {
  ctx_.syscalls.fetch_add(1, std::memory_order_relaxed);
  const int fd = ::ioctl(m_->group.fd(), VFIO_GROUP_GET_DEVICE_FD, uuid_.c_str());
  if (fd < 0) return;
  vfio_device_info info{};
  info.argsz = sizeof info;
  sys(::ioctl(fd, VFIO_DEVICE_GET_INFO, &info));
  uint32_t v;
  sys(::pread(fd, &v, 4, static_cast<off_t>(region_pos(VFIO_PCI_CONFIG_REGION_INDEX, 0))));
  if (op.a[0] & 1) sys(::ioctl(fd, VFIO_DEVICE_RESET));
  sys(::close(fd));
}

void SequenceRunner::g_remove_open(const GlobalOp& op) {
  // The remove waits for the device to be closed; close it while it waits.
  std::thread remover([this] { lab::write_file(dev_dir_ + "/remove", "1"); });
  std::this_thread::sleep_for(std::chrono::milliseconds(10 * (op.a[0] % 16)));
  close_device();
  remover.join();
  ctx_.syscalls.fetch_add(2, std::memory_order_relaxed);
  removed_ = true;
}

void SequenceRunner::g_sim_add(const GlobalOp& op) {
  static constexpr const char* kVals[] = {"1",   "2", "4",    "8",           "16", "3", "0",  "-1",
                                          "abc", "",  "0x10", "99999999999", "64", "5", "32", " 8"};
  if (fuzz_parents_.size() >= 2) return;
  const auto before = lab::mdevmig_parents();
  ctx_.syscalls.fetch_add(3, std::memory_order_relaxed);
  if (lab::write_file("/sys/class/mdevmig/sim_add", kVals[op.a[0] % 16]) != 0) return;
  for (const auto& p : lab::mdevmig_parents())
    if (std::find(before.begin(), before.end(), p) == before.end()) fuzz_parents_.push_back(p);
}

void SequenceRunner::g_sim_remove(const GlobalOp& op) {
  std::string name;
  switch (op.a[0] % 4) {
    case 0:
      if (fuzz_parents_.empty()) return;
      name = fuzz_parents_[op.a[1] % fuzz_parents_.size()];
      break;
    case 1:
      name = ctx_.parent;
      break;  // busy: our instance lives there
    case 2:
      name = "mdevmig_sim999";
      break;
    default:
      name = "x\n";
      break;
  }
  ctx_.syscalls.fetch_add(3, std::memory_order_relaxed);
  if (lab::write_file("/sys/class/mdevmig/sim_remove", name) == 0) {
    if (name == ctx_.parent)
      finding("sim_remove of " + name + " succeeded while an instance of it is open");
    fuzz_parents_.erase(std::remove(fuzz_parents_.begin(), fuzz_parents_.end(), name),
                        fuzz_parents_.end());
  }
}

void SequenceRunner::g_create(const GlobalOp& op) {
  static constexpr const char* kTypes[] = {"full", "half", "quarter", "eighth"};
  if (extra_instances_.size() >= 3) return;
  const std::string parent = fuzz_parents_.empty() || op.a[0] % 3 == 0
                                 ? ctx_.parent
                                 : fuzz_parents_[op.a[0] % fuzz_parents_.size()];
  std::string uuid = lab::random_uuid();
  switch (op.a[2] % 8) {
    case 0:
      uuid = "not-a-uuid";
      break;
    case 1:
      uuid = uuid_;
      break;  // a duplicate
    default:
      break;
  }
  ctx_.syscalls.fetch_add(3, std::memory_order_relaxed);
  if (lab::write_file(lab::type_dir(parent, kTypes[op.a[1] % 4]) + "/create", uuid) == 0 &&
      uuid != uuid_)
    extra_instances_.push_back(uuid);
}

void SequenceRunner::g_remove(const GlobalOp& op) {
  ctx_.syscalls.fetch_add(3, std::memory_order_relaxed);
  if (op.a[0] % 2 == 0 && !extra_instances_.empty()) {
    const size_t i = op.a[1] % extra_instances_.size();
    lab::write_file("/sys/bus/mdev/devices/" + extra_instances_[i] + "/remove", "1");
    extra_instances_.erase(extra_instances_.begin() + static_cast<long>(i));
  } else {
    // Never a non-zero number: any removes the open instance (that is kRemoveOpen).
    static constexpr const char* kVals[] = {"0", "x", "", "0x0"};
    lab::write_file(dev_dir_ + "/remove", kVals[op.a[1] % 4]);
  }
}

}  // namespace

WorkerMemory::WorkerMemory() {
  const size_t page = 4096;
  void* p =
      ::mmap(nullptr, kBufSize + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  void* b = ::mmap(nullptr, kBitmapSize + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
  if (p == MAP_FAILED || b == MAP_FAILED) {
    std::perror("uapi_fuzz_lab: mmap of worker memory");
    std::abort();
  }
  buf_ = static_cast<uint8_t*>(p);
  bitmap_ = static_cast<uint8_t*>(b);
  ::mprotect(buf_ + kBufSize, page, PROT_NONE);
  ::mprotect(bitmap_ + kBitmapSize, page, PROT_NONE);
}

WorkerMemory::~WorkerMemory() {
  ::munmap(buf_, kBufSize + 4096);
  ::munmap(bitmap_, kBitmapSize + 4096);
}

std::string run_sequence(const Sequence& s, RunContext& ctx,
                         std::vector<std::unique_ptr<WorkerMemory>>& mem) {
  SequenceRunner r(s, ctx, mem);
  return r.run();
}

void install_fault_handlers() {
  struct sigaction sa {};
  sa.sa_sigaction = on_fault;
  sa.sa_flags = SA_SIGINFO | SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGBUS, &sa, nullptr);
  sigaction(SIGSEGV, &sa, nullptr);
}

}  // namespace mdevmig::fuzz
