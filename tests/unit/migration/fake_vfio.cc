#include "fake_vfio.h"

#include <dlfcn.h>
#include <sys/mman.h>
#include <unistd.h>

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstring>
#include <fstream>
#include <system_error>

#include "migration/vfio/uapi.h"

namespace fakevfio {
namespace {

State* g_state = nullptr;
std::mutex g_mu;
std::vector<int> g_device_fds;  // fds the fake created (closed by the client)

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
    case VFIO_GET_API_VERSION: return VFIO_API_VERSION;
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
      const auto get = load<vfio_iommu_type1_dirty_bitmap_get>(static_cast<std::byte*>(arg) + sizeof(hdr));
      if (!s.dirty_tracking || get.bitmap.pgsize != s.dirty_pgsize) return fail(EINVAL);
      const uint64_t pages = get.size / get.bitmap.pgsize;
      if (get.bitmap.size != (pages + 63) / 64 * 8) return fail(EINVAL);
      std::memcpy(get.bitmap.data, s.dirty_words.data(),
                  std::min<std::size_t>(get.bitmap.size, s.dirty_words.size() * 8));
      return 0;
    }
    default: return fail(ENOTTY);
  }
}

int device_fd_for(State& s) {
  const int fd = ::memfd_create("fake-vfio-device", MFD_CLOEXEC);
  if (fd < 0) return -1;
  uint64_t end = 0;
  for (const auto& [index, r] : s.regions) end = std::max(end, (uint64_t{index} << kRegionShift) + r.size);
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
    default: return fail(ENOTTY);
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
      s.mig_state = st.device_state;
      st.data_fd = -1;
      if (st.device_state == VFIO_DEVICE_STATE_STOP_COPY || st.device_state == 6 /* PRE_COPY */) {
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
            reinterpret_cast<const std::byte*>(ctl.ranges) + i * sizeof(vfio_device_feature_dma_logging_range));
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
    default: return fail(ENOTTY);
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
      info.flags = VFIO_IRQ_INFO_EVENTFD | (info.index == 0 ? VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED : 0);
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
    case VFIO_DEVICE_RESET: ++s.resets; return 0;
    case VFIO_DEVICE_FEATURE: return feature_ioctl(s, arg);
    default: return fail(ENOTTY);
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
  std::lock_guard lock(g_mu);
  g_state = nullptr;
  g_device_fds.clear();
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
      if (contains(s.data_fds, fd) && path.starts_with("pipe:")) return data_fd_ioctl(s, req, arg);
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
  if (::mkdtemp(templ.data()) == nullptr) throw fs::filesystem_error("mkdtemp", templ, std::error_code(errno, std::generic_category()));
  const fs::path root = fs::canonical(templ);
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
