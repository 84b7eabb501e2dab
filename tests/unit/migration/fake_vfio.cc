#include "fake_vfio.h"

#include <dlfcn.h>
#include <linux/fuse.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdarg>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <system_error>
#include <thread>

#include "migration/vfio/uapi.h"

namespace fakevfio {
namespace {

State* g_state = nullptr;
std::mutex g_mu;
std::condition_variable g_changed;  // the device state changed (under g_mu)
std::vector<int> g_device_fds;      // fds the fake created (closed by the client)

constexpr uint64_t kRegionShift = 20;

std::string path_of(int fd) {
  char buf[4096];
  const std::string link = "/proc/self/fd/" + std::to_string(fd);
  const ssize_t n = ::readlink(link.c_str(), buf, sizeof(buf) - 1);
  return n < 0 ? std::string() : std::string(buf, static_cast<std::size_t>(n));
}

int fail(int e) {
  errno = e;
  return -1;
}

template <typename T>
T load(const void* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

template <typename T>
void store(void* p, const T& v) {
  std::memcpy(p, &v, sizeof(T));
}

// ---- the scripted data_fd: one file on a FUSE mount, served by a thread -----------------

constexpr uint64_t kDataNode = 2;
constexpr const char* kDataName = "data_fd";

class FuseDataFile {
 public:
  // Mounts and starts serving; an empty reason on success.
  std::string start() {
    namespace fs = std::filesystem;
    std::string templ = (fs::temp_directory_path() / "fakevfio-fuse-XXXXXX").string();
    if (::mkdtemp(templ.data()) == nullptr) return "mkdtemp: " + std::string(std::strerror(errno));
    dir_ = templ;
    dev_ = ::open("/dev/fuse", O_RDWR | O_CLOEXEC);
    if (dev_ < 0) return "/dev/fuse: " + std::string(std::strerror(errno));
    const std::string opts = "fd=" + std::to_string(dev_) +
                             ",rootmode=40000,user_id=" + std::to_string(::geteuid()) +
                             ",group_id=" + std::to_string(::getegid());
    if (::mount("fakevfio", dir_.c_str(), "fuse", MS_NOSUID | MS_NODEV, opts.c_str()) != 0) {
      return "mount fuse: " + std::string(std::strerror(errno));
    }
    mounted_ = true;
    stop_ = ::eventfd(0, EFD_CLOEXEC);
    wake_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    thread_ = std::thread([this] { serve(); });
    return {};
  }

  ~FuseDataFile() {
    if (thread_.joinable()) {
      {
        std::lock_guard lock(g_mu);
        stopping_ = true;
      }
      g_changed.notify_all();
      const uint64_t one = 1;
      (void)!::write(stop_, &one, sizeof(one));
      thread_.join();
    }
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
    if (dev_ >= 0) ::close(dev_);  // aborts the connection: reads still waiting fail
    if (stop_ >= 0) ::close(stop_);
    if (wake_ >= 0) ::close(wake_);
    if (!dir_.empty()) ::rmdir(dir_.c_str());
  }

  std::string path() const { return dir_ + "/" + kDataName; }

  // The device state changed (called with g_mu held): a read waiting for it may go on.
  void state_changed() {
    const uint64_t one = 1;
    (void)!::write(wake_, &one, sizeof(one));
  }

 private:
  void reply(uint64_t unique, int error, const void* body, std::size_t len) {
    fuse_out_header h{};
    h.len = static_cast<uint32_t>(sizeof(h) + (error == 0 ? len : 0));
    h.error = error == 0 ? 0 : -error;
    h.unique = unique;
    iovec iov[2] = {{&h, sizeof(h)}, {const_cast<void*>(body), error == 0 ? len : 0}};
    (void)::writev(dev_, iov, 2);
  }

  static fuse_attr attr_of(uint64_t node) {
    fuse_attr a{};
    a.ino = node;
    a.mode = node == FUSE_ROOT_ID ? (S_IFDIR | 0755) : (S_IFREG | 0600);
    a.nlink = 1;
    a.blksize = 4096;
    // A data_fd has no size; a large one keeps the kernel from cutting reads short at it.
    if (node != FUSE_ROOT_ID) a.size = uint64_t{1} << 40;
    return a;
  }

  // Whether the next answer may go now (its state is reached); called with g_mu held.
  bool answer_ready_locked() const {
    if (stopping_ || g_state == nullptr || g_state->data_answers.empty()) return true;
    const uint32_t want = g_state->data_answers.front().after_state;
    return want == 0 || g_state->mig_state == want;
  }
  bool answer_ready() {
    std::lock_guard lock(g_mu);
    return answer_ready_locked();
  }

  // The next answer, once its state is reached (or the fake stops: 0 bytes).
  DataAnswer next_answer() {
    std::unique_lock lock(g_mu);
    DataAnswer a;
    g_changed.wait(lock, [&] { return answer_ready_locked(); });
    if (!stopping_ && g_state != nullptr && !g_state->data_answers.empty()) {
      a = std::move(g_state->data_answers.front());
      g_state->data_answers.pop_front();
    }
    return a;
  }

  // Records an answered read (after the reply went to the kernel).
  void record(uint32_t at_request) {
    {
      std::lock_guard lock(g_mu);
      if (g_state != nullptr) g_state->data_reads.emplace_back(at_request, g_state->mig_state);
    }
    g_changed.notify_all();
  }

  static uint32_t state_now() {
    std::lock_guard lock(g_mu);
    return g_state != nullptr ? g_state->mig_state : 0;
  }

  void serve() {
    std::vector<std::byte> buf(FUSE_MIN_READ_BUFFER + (256u << 10));
    for (;;) {
      pollfd p[3] = {{dev_, POLLIN, 0}, {stop_, POLLIN, 0}, {wake_, POLLIN, 0}};
      if (::poll(p, 3, -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (p[1].revents != 0) return;
      if (p[2].revents != 0) {
        uint64_t n = 0;
        (void)!::read(wake_, &n, sizeof(n));
        if (poll_kh_ && answer_ready()) {
          // The poll the kernel waits on (io_uring's, before it reads) is ready now.
          fuse_out_header h{};
          fuse_notify_poll_wakeup_out w{};
          w.kh = *poll_kh_;
          h.len = sizeof(h) + sizeof(w);
          h.error = FUSE_NOTIFY_POLL;
          iovec iov[2] = {{&h, sizeof(h)}, {&w, sizeof(w)}};
          (void)::writev(dev_, iov, 2);
          poll_kh_.reset();
        }
      }
      if (p[0].revents == 0) continue;
      const ssize_t n = ::read(dev_, buf.data(), buf.size());
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN || errno == ENOENT) continue;
        return;  // ENODEV: unmounted
      }
      if (static_cast<std::size_t>(n) < sizeof(fuse_in_header)) continue;
      const auto in = load<fuse_in_header>(buf.data());
      const std::byte* arg = buf.data() + sizeof(in);
      switch (in.opcode) {
        case FUSE_INIT: {
          const auto i = load<fuse_init_in>(arg);
          fuse_init_out o{};
          o.major = FUSE_KERNEL_VERSION;
          o.minor = FUSE_KERNEL_MINOR_VERSION;
          o.max_readahead = i.max_readahead;
          // Asynchronous direct I/O: a read io_uring submits waits for its answer in
          // the kernel, not in the submitting thread (which is the test's).
          o.flags = i.flags & FUSE_ASYNC_DIO;
          o.max_background = 16;
          o.congestion_threshold = 12;
          o.max_write = 4096;
          o.time_gran = 1;
          o.max_pages = 32;
          reply(in.unique, 0, &o, sizeof(o));
          break;
        }
        case FUSE_LOOKUP: {
          if (std::strcmp(reinterpret_cast<const char*>(arg), kDataName) != 0) {
            reply(in.unique, ENOENT, nullptr, 0);
            break;
          }
          fuse_entry_out e{};
          e.nodeid = kDataNode;
          e.generation = 1;
          e.attr = attr_of(kDataNode);
          reply(in.unique, 0, &e, sizeof(e));
          break;
        }
        case FUSE_GETATTR: {
          fuse_attr_out o{};
          o.attr = attr_of(in.nodeid);
          reply(in.unique, 0, &o, sizeof(o));
          break;
        }
        case FUSE_OPEN: {
          fuse_open_out o{};
          o.fh = 1;
          o.open_flags = FOPEN_DIRECT_IO | FOPEN_NONSEEKABLE | FOPEN_STREAM;
          reply(in.unique, 0, &o, sizeof(o));
          break;
        }
        case FUSE_READ: {
          const auto r = load<fuse_read_in>(arg);
          if (r.offset != 0) {
            // io_uring reading on after a short read of a regular file (a data_fd is
            // not one): the answer ends here, the next one is for the next read.
            reply(in.unique, 0, nullptr, 0);
            break;
          }
          const uint32_t at_request = state_now();
          DataAnswer a = next_answer();
          if (a.err != 0) {
            reply(in.unique, a.err, nullptr, 0);
          } else {
            reply(in.unique, 0, a.data.data(), std::min<std::size_t>(a.data.size(), r.size));
          }
          record(at_request);
          break;
        }
        case FUSE_FLUSH:
        case FUSE_RELEASE:
        case FUSE_DESTROY:
          reply(in.unique, 0, nullptr, 0);
          break;
        case FUSE_POLL: {
          // Readable once the next answer may go: io_uring polls before it reads, and a
          // read it then issues waits for the answer in the submitting thread.
          const auto pin = load<fuse_poll_in>(arg);
          fuse_poll_out o{};
          if (answer_ready()) {
            o.revents = POLLIN;
          } else if (pin.flags & FUSE_POLL_SCHEDULE_NOTIFY) {
            poll_kh_ = pin.kh;
          }
          reply(in.unique, 0, &o, sizeof(o));
          break;
        }
        case FUSE_FORGET:
        case FUSE_BATCH_FORGET:
        case FUSE_INTERRUPT:
          break;  // no reply
        default:
          reply(in.unique, ENOSYS, nullptr, 0);
          break;
      }
    }
  }

  std::string dir_;
  int dev_ = -1;
  int stop_ = -1;
  int wake_ = -1;
  std::optional<uint64_t> poll_kh_;  // a poll to notify when the next answer may go
  bool mounted_ = false;
  bool stopping_ = false;  // under g_mu
  std::thread thread_;
};

std::unique_ptr<FuseDataFile> g_fuse;  // while a Scope is installed

// The scripted data_fd (called with g_mu held; the open is served by the FUSE thread,
// which does not take g_mu for it).
int scripted_data_fd() {
  if (!g_fuse) {
    auto f = std::make_unique<FuseDataFile>();
    if (!f->start().empty()) return -1;
    g_fuse = std::move(f);
  }
  return ::open(g_fuse->path().c_str(), O_RDONLY | O_CLOEXEC);
}

// The argsz protocol from the driver side: the fixed struct, then caps if they fit.
int reply_with_caps(void* arg, std::size_t fixed, const std::vector<std::byte>& caps,
                    uint32_t* cap_offset_field_in_fixed, void* fixed_copy) {
  const uint32_t argsz = load<uint32_t>(arg);
  if (argsz < fixed) return fail(EINVAL);
  const std::size_t need = fixed + caps.size();
  if (caps.empty()) {
    *cap_offset_field_in_fixed = 0;
    std::memcpy(arg, fixed_copy, fixed);
    return 0;
  }
  if (argsz < need) {
    *cap_offset_field_in_fixed = 0;
    store<uint32_t>(fixed_copy, static_cast<uint32_t>(need));
    std::memcpy(arg, fixed_copy, fixed);
    return 0;
  }
  *cap_offset_field_in_fixed = static_cast<uint32_t>(fixed);
  store<uint32_t>(fixed_copy, argsz);
  std::memcpy(arg, fixed_copy, fixed);
  std::memcpy(static_cast<std::byte*>(arg) + fixed, caps.data(), caps.size());
  return 0;
}

int container_ioctl(State& s, unsigned long req, void* arg) {
  switch (req) {
    case VFIO_GET_API_VERSION:
      return VFIO_API_VERSION;
    case VFIO_CHECK_EXTENSION:
      return reinterpret_cast<uintptr_t>(arg) == VFIO_TYPE1v2_IOMMU ? 1 : 0;
    case VFIO_SET_IOMMU:
      if (!s.container_set) return fail(EINVAL);
      s.iommu_type = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(arg));
      return 0;
    case VFIO_IOMMU_GET_INFO: {
      vfio_iommu_type1_info info{};
      info.flags = VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS;
      info.iova_pgsizes = 0x1000;
      vfio_iommu_type1_info_cap_migration mig{};
      mig.header = {VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION, 1, 0};
      mig.pgsize_bitmap = 0x1000;
      mig.max_dirty_bitmap_size = 256 << 20;
      std::vector<std::byte> caps(sizeof(mig));
      std::memcpy(caps.data(), &mig, sizeof(mig));
      return reply_with_caps(arg, sizeof(info), caps, &info.cap_offset, &info);
    }
    case VFIO_IOMMU_MAP_DMA: {
      const auto m = load<vfio_iommu_type1_dma_map>(arg);
      if (m.argsz < sizeof(m) || m.size == 0) return fail(EINVAL);
      s.maps.push_back(m.iova);
      return 0;
    }
    case VFIO_IOMMU_UNMAP_DMA: {
      auto u = load<vfio_iommu_type1_dma_unmap>(arg);
      u.size = u.size / 2;  // report a partial unmap, as the kernel may
      store(arg, u);
      return 0;
    }
    case VFIO_IOMMU_DIRTY_PAGES: {
      const auto hdr = load<vfio_iommu_type1_dirty_bitmap>(arg);
      if (hdr.flags == VFIO_IOMMU_DIRTY_PAGES_FLAG_START) return (s.dirty_tracking = true), 0;
      if (hdr.flags == VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP) return (s.dirty_tracking = false), 0;
      if (hdr.flags != VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP) return fail(EINVAL);
      if (hdr.argsz < sizeof(hdr) + sizeof(vfio_iommu_type1_dirty_bitmap_get)) return fail(EINVAL);
      const auto get =
          load<vfio_iommu_type1_dirty_bitmap_get>(static_cast<std::byte*>(arg) + sizeof(hdr));
      if (!s.dirty_tracking || get.bitmap.pgsize != s.dirty_pgsize) return fail(EINVAL);
      const uint64_t pages = get.size / get.bitmap.pgsize;
      if (get.bitmap.size != (pages + 63) / 64 * 8) return fail(EINVAL);
      std::memcpy(get.bitmap.data, s.dirty_words.data(),
                  std::min<std::size_t>(get.bitmap.size, s.dirty_words.size() * 8));
      return 0;
    }
    default:
      return fail(ENOTTY);
  }
}

int device_fd_for(State& s) {
  const int fd = ::memfd_create("fake-vfio-device", MFD_CLOEXEC);
  if (fd < 0) return -1;
  uint64_t end = 0;
  for (const auto& [index, r] : s.regions)
    end = std::max(end, (uint64_t{index} << kRegionShift) + r.size);
  if (::ftruncate(fd, static_cast<off_t>(end)) != 0) return -1;
  g_device_fds.push_back(fd);
  return fd;
}

int group_ioctl(State& s, unsigned long req, void* arg) {
  switch (req) {
    case VFIO_GROUP_GET_STATUS: {
      auto st = load<vfio_group_status>(arg);
      st.flags = (s.group_viable ? VFIO_GROUP_FLAGS_VIABLE : 0) |
                 (s.container_set ? VFIO_GROUP_FLAGS_CONTAINER_SET : 0);
      store(arg, st);
      return 0;
    }
    case VFIO_GROUP_SET_CONTAINER: {
      const int cfd = load<int>(arg);
      if (path_of(cfd) != s.container_path) return fail(EINVAL);
      s.container_set = true;
      return 0;
    }
    case VFIO_GROUP_GET_DEVICE_FD:
      if (static_cast<const char*>(arg) != s.device_name) return fail(ENODEV);
      if (s.iommu_type == 0) return fail(EINVAL);
      return device_fd_for(s);
    default:
      return fail(ENOTTY);
  }
}

int feature_ioctl(State& s, void* arg) {
  const auto hdr = load<vfio_device_feature>(arg);
  std::byte* data = static_cast<std::byte*>(arg) + sizeof(hdr);
  const uint32_t index = hdr.flags & VFIO_DEVICE_FEATURE_MASK;
  const bool get = hdr.flags & VFIO_DEVICE_FEATURE_GET;
  const bool set = hdr.flags & VFIO_DEVICE_FEATURE_SET;
  const bool known = index == VFIO_DEVICE_FEATURE_MIGRATION ||
                     index == VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE ||
                     index == VFIO_DEVICE_FEATURE_DMA_LOGGING_START ||
                     index == VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP ||
                     index == VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT ||
                     (index == VFIO_DEVICE_FEATURE_MIG_DATA_SIZE && s.has_data_size);
  if (!known) return fail(ENOTTY);
  if (hdr.flags & VFIO_DEVICE_FEATURE_PROBE) return 0;
  const std::size_t payload = hdr.argsz - sizeof(hdr);
  switch (index) {
    case VFIO_DEVICE_FEATURE_MIGRATION:
      if (!get || payload < sizeof(vfio_device_feature_migration)) return fail(EINVAL);
      store(data, vfio_device_feature_migration{s.mig_flags});
      return 0;
    case VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE: {
      if (payload < sizeof(vfio_device_feature_mig_state)) return fail(EINVAL);
      auto st = load<vfio_device_feature_mig_state>(data);
      if (get) {
        st.device_state = s.mig_state;
        store(data, st);
        return 0;
      }
      if (s.fail_set_state_errno != 0) return fail(s.fail_set_state_errno);
      const uint32_t from = s.mig_state;
      s.mig_state = st.device_state;
      g_changed.notify_all();
      if (g_fuse) g_fuse->state_changed();
      st.data_fd = -1;
      if (s.scripted_data) {
        // A save session's data_fd; PRE_COPY -> STOP_COPY keeps it.
        const bool saving = st.device_state == VFIO_DEVICE_STATE_STOP_COPY || st.device_state == 6;
        const bool was_saving = from == VFIO_DEVICE_STATE_STOP_COPY || from == 6 || from == 7;
        if (saving && !was_saving) {
          const int fd = scripted_data_fd();
          if (fd < 0) return fail(EIO);
          st.data_fd = fd;
          s.data_fds.push_back(fd);
        }
      } else if (st.device_state == VFIO_DEVICE_STATE_STOP_COPY ||
                 st.device_state == 6 /* PRE_COPY */) {
        int p[2];
        if (::pipe2(p, O_CLOEXEC) != 0) return -1;
        ::close(p[1]);
        st.data_fd = p[0];
        s.data_fds.push_back(p[0]);
      }
      store(data, st);
      return 0;
    }
    case VFIO_DEVICE_FEATURE_MIG_DATA_SIZE:
      store(data, vfio_device_feature_mig_data_size{s.data_size});
      return 0;
    case VFIO_DEVICE_FEATURE_DMA_LOGGING_START: {
      if (!set) return fail(EINVAL);
      const auto ctl = load<vfio_device_feature_dma_logging_control>(data);
      s.logging_ranges.clear();
      for (uint32_t i = 0; i < ctl.num_ranges; ++i) {
        const auto r = load<vfio_device_feature_dma_logging_range>(
            reinterpret_cast<const std::byte*>(ctl.ranges) +
            i * sizeof(vfio_device_feature_dma_logging_range));
        s.logging_ranges.emplace_back(r.iova, r.length);
      }
      s.dma_logging = true;
      return 0;
    }
    case VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP:
      s.dma_logging = false;
      return 0;
    case VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT: {
      const auto rep = load<vfio_device_feature_dma_logging_report>(data);
      if (!s.dma_logging || rep.page_size != s.dirty_pgsize) return fail(EINVAL);
      const uint64_t bytes = (rep.length / rep.page_size + 63) / 64 * 8;
      std::memcpy(reinterpret_cast<void*>(rep.bitmap), s.dirty_words.data(),
                  std::min<std::size_t>(bytes, s.dirty_words.size() * 8));
      return 0;
    }
    default:
      return fail(ENOTTY);
  }
}

int device_ioctl(State& s, unsigned long req, void* arg) {
  switch (req) {
    case VFIO_DEVICE_GET_INFO: {
      auto info = load<vfio_device_info>(arg);
      if (info.argsz < offsetof(vfio_device_info, cap_offset)) return fail(EINVAL);
      info.flags = s.device_flags;
      info.num_regions = s.regions.empty() ? 0 : s.regions.rbegin()->first + 1;
      info.num_irqs = s.num_irqs;
      info.cap_offset = 0;
      store(arg, info);
      return 0;
    }
    case VFIO_DEVICE_GET_REGION_INFO: {
      ++s.region_info_calls;
      auto info = load<vfio_region_info>(arg);
      const auto it = s.regions.find(info.index);
      if (it == s.regions.end()) return fail(EINVAL);
      info.flags = it->second.flags | (it->second.caps.empty() ? 0 : VFIO_REGION_INFO_FLAG_CAPS);
      info.size = it->second.size;
      info.offset = uint64_t{info.index} << kRegionShift;
      return reply_with_caps(arg, sizeof(info), it->second.caps, &info.cap_offset, &info);
    }
    case VFIO_DEVICE_GET_IRQ_INFO: {
      auto info = load<vfio_irq_info>(arg);
      if (info.index >= s.num_irqs) return fail(EINVAL);
      info.flags = VFIO_IRQ_INFO_EVENTFD |
                   (info.index == 0 ? VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED : 0);
      info.count = info.index <= 1 ? 1 : 0;
      store(arg, info);
      return 0;
    }
    case VFIO_DEVICE_SET_IRQS: {
      const auto set = load<vfio_irq_set>(arg);
      const auto* p = static_cast<const std::byte*>(arg);
      s.irq_sets.emplace_back(p, p + set.argsz);
      return 0;
    }
    case VFIO_DEVICE_RESET:
      ++s.resets;
      return 0;
    case VFIO_DEVICE_FEATURE:
      return feature_ioctl(s, arg);
    default:
      return fail(ENOTTY);
  }
}

int data_fd_ioctl(State& s, unsigned long req, void* arg) {
  if (req != VFIO_MIG_GET_PRECOPY_INFO) return fail(ENOTTY);
  if (s.mig_state != 6 && s.mig_state != 7) return fail(EINVAL);
  auto info = load<vfio_precopy_info>(arg);
  info.initial_bytes = s.precopy_initial;
  info.dirty_bytes = s.precopy_dirty;
  store(arg, info);
  return 0;
}

bool contains(const std::vector<int>& v, int fd) {
  return std::find(v.begin(), v.end(), fd) != v.end();
}

}  // namespace

Scope::Scope(State& state) {
  std::lock_guard lock(g_mu);
  g_state = &state;
}

Scope::~Scope() {
  std::unique_ptr<FuseDataFile> fuse;
  {
    std::lock_guard lock(g_mu);
    fuse = std::move(g_fuse);
  }
  fuse.reset();  // takes g_mu itself
  std::lock_guard lock(g_mu);
  g_state = nullptr;
  g_device_fds.clear();
}

void wait_data_reads(const State& state, std::size_t n) {
  std::unique_lock lock(g_mu);
  g_changed.wait(lock, [&] { return state.data_reads.size() >= n; });
}

std::string fuse_unavailable_reason() {
  FuseDataFile f;
  return f.start();
}

std::vector<std::byte> chain(std::size_t fixed_size,
                             const std::vector<std::vector<std::byte>>& caps) {
  std::vector<std::byte> out;
  for (std::size_t i = 0; i < caps.size(); ++i) {
    std::vector<std::byte> c = caps[i];
    const uint32_t next =
        i + 1 < caps.size() ? static_cast<uint32_t>(fixed_size + out.size() + c.size()) : 0;
    std::memcpy(c.data() + offsetof(vfio_info_cap_header, next), &next, sizeof(next));
    out.insert(out.end(), c.begin(), c.end());
  }
  return out;
}

// Dispatches to the fake by fd, else to the real ioctl.
int dispatch(int fd, unsigned long req, void* arg) {
  {
    std::lock_guard lock(g_mu);
    if (g_state != nullptr) {
      State& s = *g_state;
      // Fd numbers are reused after close, so also check what the fd is now.
      const std::string path = path_of(fd);
      if (contains(g_device_fds, fd) && path.starts_with("/memfd:fake-vfio-device")) {
        return device_ioctl(s, req, arg);
      }
      if (contains(s.data_fds, fd) &&
          (path.starts_with("pipe:") || (g_fuse && path == g_fuse->path()))) {
        return data_fd_ioctl(s, req, arg);
      }
      if (!path.empty() && path == s.container_path) return container_ioctl(s, req, arg);
      if (!path.empty() && path == s.group_path) return group_ioctl(s, req, arg);
    }
  }
  using IoctlFn = int (*)(int, unsigned long, ...);
  static const auto real = reinterpret_cast<IoctlFn>(::dlsym(RTLD_NEXT, "ioctl"));
  return real(fd, req, arg);
}

std::vector<std::byte> type_cap(uint32_t type, uint32_t subtype) {
  vfio_region_info_cap_type t{};
  t.header = {VFIO_REGION_INFO_CAP_TYPE, 1, 0};
  t.type = type;
  t.subtype = subtype;
  std::vector<std::byte> out(sizeof(t));
  std::memcpy(out.data(), &t, sizeof(t));
  return out;
}

std::filesystem::path make_mdev_tree(const std::string& prefix, const std::string& uuid, int group,
                                     State& state) {
  namespace fs = std::filesystem;
  std::string templ = (fs::temp_directory_path() / (prefix + "-XXXXXX")).string();
  if (::mkdtemp(templ.data()) == nullptr)
    throw fs::filesystem_error("mkdtemp", templ, std::error_code(errno, std::generic_category()));
  fs::path root = fs::canonical(templ);
  const fs::path dev = root / "sys/bus/mdev/devices" / uuid;
  const std::string g = std::to_string(group);
  fs::create_directories(dev);
  fs::create_directories(root / "sys/kernel/iommu_groups" / g);
  fs::create_directory_symlink("../../../../kernel/iommu_groups/" + g, dev / "iommu_group");
  fs::create_directories(root / "dev");
  std::ofstream(root / "dev/vfio") << "";
  std::ofstream(root / "dev" / g) << "";
  state.container_path = (root / "dev/vfio").string();
  state.group_path = (root / "dev" / g).string();
  state.device_name = uuid;
  state.device_flags = VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET;
  state.regions[0] = {VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE, 256, {}};
  state.mig_flags = VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P;
  return root;
}

}  // namespace fakevfio

// Interposes glibc's ioctl for this executable (the client library is linked statically).
extern "C" int ioctl(int fd, unsigned long request, ...) noexcept {
  va_list ap;
  va_start(ap, request);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  return fakevfio::dispatch(fd, request, arg);
}
