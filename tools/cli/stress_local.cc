#include "tools/cli/stress_local.h"

#include <fcntl.h>
#include <linux/mdevmig.h>
#include <linux/pci_regs.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include <xxhash.h>

#include "migration/engine/session.h"
#include "migration/io/net.h"
#include "migration/vfio/uapi.h"
#include "tools/cli/device_arg.h"
#include "tools/stress/leaks.h"

namespace mdevmig::cli {

using qemu::FaultKind;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// ---- round plans and the stream fault (pure) -------------------------------------------

RoundPlanner::RoundPlanner(const LocalStressOptions& o) : o_(o), rng_(o.seed), order_(o.faults) {
  std::shuffle(order_.begin(), order_.end(), rng_);
}

LocalRoundPlan RoundPlanner::next() {
  LocalRoundPlan p;
  p.max_iterations = 1 + static_cast<uint32_t>(rng_() % std::max<uint32_t>(o_.max_iterations, 1));
  // A quarter of the rounds iterate to the cap; the others stop at a random target.
  p.downtime_ms = uniform(0, 1) < 0.25 ? 0 : 1 + static_cast<uint32_t>(rng_() % (o_.downtime_ms + 1));
  p.fault_point = uniform(0.1, 0.7);
  if (!order_.empty() && uniform(0, 1) < o_.fault_rate) p.fault = order_[next_fault_++ % order_.size()];
  return p;
}

StreamFault::Step StreamFault::apply(std::span<std::byte> data) {
  Step s{data.size(), false, false};
  const uint64_t end = pos_ + data.size();
  if (kind_ != FaultKind::kNone && !fired_ && offset_ < end) {
    const std::size_t at = offset_ > pos_ ? static_cast<std::size_t>(offset_ - pos_) : 0;
    fired_ = true;
    switch (kind_) {
      case FaultKind::kCorrupt: data[at] ^= std::byte{0x5a}; break;
      case FaultKind::kTruncate:
        s.forward = at;
        s.cut = true;
        break;
      default: s.fire = true; break;
    }
  }
  pos_ += s.forward;
  return s;
}

namespace {

// ---- the model shared between the stress process and its VMs --------------------------

constexpr uint32_t kCfg = VFIO_PCI_CONFIG_REGION_INDEX;
constexpr uint32_t kBar0 = VFIO_PCI_BAR0_REGION_INDEX;
constexpr uint32_t kBar2 = VFIO_PCI_BAR2_REGION_INDEX;
constexpr uint64_t kPage = 4096;
// Guest memory: the ring, its completions, and the DMA results area.
constexpr uint64_t kGuestIova = 1ull << 30;
constexpr uint64_t kGuestBytes = 2u << 20;
constexpr uint32_t kRingEntries = 64;
constexpr uint64_t kCmplOff = 64u << 10;
constexpr uint64_t kDataOff = 1u << 20;
constexpr uint64_t kDataBytes = 1u << 20;
constexpr uint64_t kDmaLen = 16u << 10;
constexpr uint32_t kTickMs = 10;

// Device memory: the lower half takes BAR2 writes, the upper half DMA fills and is the
// source of DMA copies, so the two writers never race and the model is exact.
struct ModelHeader {
  uint64_t bar2_writes = 0;
  uint64_t descs = 0;  // descriptors issued (a free-running ring tail)
  uint64_t scratch_writes = 0;
  uint64_t dma_failures = 0;
  uint32_t seq_base = 0;
  uint32_t scratch[MDEVMIG_NR_SCRATCH] = {};
};

// One copy of the model: header, device memory, the DMA results area of guest memory;
// and an image of all guest memory (ring, completions), taken only for checkpoints.
struct Model {
  ModelHeader* hdr = nullptr;
  std::byte* mem = nullptr;
  std::byte* data = nullptr;
  std::byte* guest_image = nullptr;
  uint64_t mem_size = 0;
  [[nodiscard]] uint64_t ops() const { return hdr->bar2_writes + hdr->descs + hdr->scratch_writes; }
};

// MAP_SHARED memory created before the VMs fork: the live model and the checkpoint's.
class SharedModels {
 public:
  static Result<SharedModels> create(uint64_t mem_size) {
    SharedModels s;
    s.mem_size_ = mem_size;
    s.one_ = kPage + mem_size + kDataBytes + kGuestBytes;
    void* p = ::mmap(nullptr, 2 * s.one_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return Error::from_errno("mmap", "stress model");
    s.base_ = static_cast<std::byte*>(p);
    return s;
  }
  SharedModels(SharedModels&& o) noexcept
      : base_(std::exchange(o.base_, nullptr)), one_(o.one_), mem_size_(o.mem_size_) {}
  SharedModels& operator=(SharedModels&&) = delete;
  ~SharedModels() {
    if (base_) ::munmap(base_, 2 * one_);
  }
  [[nodiscard]] Model live() const { return at(0); }
  [[nodiscard]] Model checkpoint() const { return at(one_); }
  static void copy(const Model& from, const Model& to) {
    std::memcpy(to.hdr, from.hdr, kPage + from.mem_size + kDataBytes + kGuestBytes);
  }

 private:
  SharedModels() = default;
  [[nodiscard]] Model at(uint64_t off) const {
    std::byte* p = base_ + off;
    return {reinterpret_cast<ModelHeader*>(p), p + kPage, p + kPage + mem_size_, p + kPage + mem_size_ + kDataBytes,
            mem_size_};
  }
  std::byte* base_ = nullptr;
  uint64_t one_ = 0, mem_size_ = 0;
};

// ---- control messages: one JSON object per SOCK_SEQPACKET record, fds attached -----------

Result<void> send_msg(int fd, const json& j, int pass_fd = -1) {
  const std::string s = j.dump();
  iovec iov{const_cast<char*>(s.data()), s.size()};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int))];
  if (pass_fd >= 0) {
    m.msg_control = cbuf;
    m.msg_controllen = sizeof cbuf;
    cmsghdr* c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
  }
  if (::sendmsg(fd, &m, MSG_NOSIGNAL) < 0) return Error::from_errno("send", "stress control message");
  return ok();
}

// The next message; EPIPE once the peer is gone. A passed fd lands in `fd_out`.
Result<json> recv_msg(int fd, std::chrono::milliseconds timeout, UniqueFd* fd_out = nullptr) {
  pollfd p{fd, POLLIN, 0};
  const int rc = ::poll(&p, 1, static_cast<int>(timeout.count()));
  if (rc < 0) return Error::from_errno("poll", "stress control");
  if (rc == 0) return Error::make(ETIMEDOUT, "stress control", "no answer in " + std::to_string(timeout.count()) + " ms");
  std::string buf(256u << 10, '\0');
  iovec iov{buf.data(), buf.size()};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int))];
  m.msg_control = cbuf;
  m.msg_controllen = sizeof cbuf;
  const ssize_t n = ::recvmsg(fd, &m, MSG_CMSG_CLOEXEC);
  if (n < 0) return Error::from_errno("recv", "stress control");
  for (cmsghdr* c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      int got;
      std::memcpy(&got, CMSG_DATA(c), sizeof got);
      if (fd_out) fd_out->reset(got);
      else ::close(got);
    }
  }
  if (n == 0) return Error::make(EPIPE, "stress control", "the peer exited");
  buf.resize(static_cast<std::size_t>(n));
  json j = json::parse(buf, nullptr, false);
  if (j.is_discarded()) return Error::make(EPROTO, "stress control", "malformed message");
  return j;
}

json error_json(const Error& e) { return {{"ok", false}, {"error", e.message()}}; }

// Runs this binary (`mdevmig ARGS`) with `dev_fd` inherited; its error line on failure.
Result<void> run_self(std::vector<std::string> args, int dev_fd) {
  int err[2];
  if (::pipe2(err, O_CLOEXEC) != 0) return Error::from_errno("pipe");
  const pid_t pid = ::fork();
  if (pid < 0) return Error::from_errno("fork");
  if (pid == 0) {
    ::dup2(err[1], 2);
    const int null = ::open("/dev/null", O_WRONLY);
    if (null >= 0) ::dup2(null, 1);
    ::fcntl(dev_fd, F_SETFD, 0);  // VFIO device fds are O_CLOEXEC
    std::vector<char*> argv{const_cast<char*>("mdevmig")};
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv("/proc/self/exe", argv.data());
    ::_exit(127);
  }
  ::close(err[1]);
  std::string text;
  char buf[512];
  for (ssize_t n; (n = ::read(err[0], buf, sizeof buf)) > 0;) text.append(buf, static_cast<std::size_t>(n));
  ::close(err[0]);
  int st = 0;
  ::waitpid(pid, &st, 0);
  if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return ok();
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return Error::make(EIO, "mdevmig " + args[0], text.empty() ? "exit status " + std::to_string(st) : text);
}

// ---- the VM process ------------------------------------------------------------------------

// The workload of a VM: BAR2 writes, scratch registers and DMA descriptors at given
// rates, each applied to the model as it is issued. pause() is the vCPU stopping.
class ModelWorkload {
 public:
  ModelWorkload(const vfio::Device& dev, engine::GuestMemory& guest, vfio::Mapping& bar2, Model m, double writes,
                double descs)
      : dev_(dev), guest_(guest), bar2_(bar2), m_(m), writes_per_tick_(writes * kTickMs / 1000.0),
        desc_every_(descs > 0 ? std::max<uint32_t>(1, static_cast<uint32_t>(1000.0 / descs / kTickMs)) : 0) {}
  ~ModelWorkload() { stop(); }

  /// Runs (starting the thread the first time).
  void run() {
    {
      std::lock_guard lock(mu_);
      paused_ = false;
    }
    cv_.notify_all();
    if (!thread_.joinable()) thread_ = std::thread([this] { loop(); });
  }
  /// Returns once nothing is being issued and nothing will be until run().
  void pause() {
    std::lock_guard lock(mu_);
    paused_ = true;
  }
  void stop() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  /// With the workload paused: waits until the device executed every descriptor.
  [[nodiscard]] Result<void> drain(std::chrono::milliseconds timeout) {
    const auto until = Clock::now() + timeout;
    while (!last_done()) {
      if (Clock::now() > until) return Error::make(ETIMEDOUT, "drain DMA", "the last descriptor did not complete");
      std::this_thread::sleep_for(5ms);
    }
    return ok();
  }

 private:
  mdevmig_dma_cmpl* cmpl(uint64_t n) const {
    return reinterpret_cast<mdevmig_dma_cmpl*>(guest_.data() + kCmplOff + (n % kRingEntries) * sizeof(mdevmig_dma_cmpl));
  }
  bool last_done() const {
    return m_.hdr->descs == 0 || __atomic_load_n(&cmpl(m_.hdr->descs - 1)->status, __ATOMIC_ACQUIRE) != MDEVMIG_DMA_ST_PENDING;
  }
  void loop() {
    auto next = Clock::now();
    double budget = 0;
    for (uint64_t tick = 0;; ++tick) {
      next += std::chrono::milliseconds(kTickMs);
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return !paused_ || stopping_; });
        if (stopping_) return;
        budget += writes_per_tick_;
        for (; budget >= 1; budget -= 1) bar2_write();
        if (tick % 16 == 0) scratch_write();
        if (desc_every_ && tick % desc_every_ == 0 && last_done()) issue_desc();
      }
      std::this_thread::sleep_until(next);
    }
  }
  void bar2_write() {
    const uint64_t v = ++m_.hdr->bar2_writes;
    const uint64_t pages = m_.mem_size / 2 / kPage;
    const uint64_t off = (v * 7919 % pages) * kPage + (v % (kPage / 8)) * 8;
    std::memcpy(static_cast<std::byte*>(bar2_.data()) + off, &v, sizeof v);
    std::memcpy(m_.mem + off, &v, sizeof v);
  }
  void scratch_write() {
    const uint64_t n = ++m_.hdr->scratch_writes;
    const uint32_t i = static_cast<uint32_t>(n % MDEVMIG_NR_SCRATCH);
    const uint32_t v = static_cast<uint32_t>(n * 0x9e3779b9u);
    if (dev_.write_as(kBar0, MDEVMIG_REG_SCRATCH(i), v).ok()) m_.hdr->scratch[i] = v;
  }
  void issue_desc() {
    const uint64_t n = m_.hdr->descs;
    if (n > 0 && cmpl(n - 1)->status != MDEVMIG_DMA_ST_OK) ++m_.hdr->dma_failures;
    const uint64_t half = m_.mem_size / 2, blocks = half / kDmaLen;
    mdevmig_dma_desc d{};
    d.flags = MDEVMIG_DMA_F_NO_IRQ;
    d.len = kDmaLen;
    d.user_data = n;
    d.cmpl = kGuestIova + kCmplOff + (n % kRingEntries) * sizeof(mdevmig_dma_cmpl);
    if (n % 2 == 0) {  // fill a block of the upper half
      d.opcode = MDEVMIG_DMA_OP_FILL;
      d.dst = half + (n / 2 * 13 % blocks) * kDmaLen;
      d.pattern = 0x0123456789abcdefull ^ (n * 0x100000001b3ull);
      for (uint64_t i = 0; i < kDmaLen; i += 8) std::memcpy(m_.mem + d.dst + i, &d.pattern, 8);
    } else {  // copy a block of it into the results area
      d.opcode = MDEVMIG_DMA_OP_COPY_FROM_DEV;
      d.src = half + (n / 2 * 7 % blocks) * kDmaLen;
      const uint64_t slot = (n / 2 % (kDataBytes / kDmaLen)) * kDmaLen;
      d.dst = kGuestIova + kDataOff + slot;
      std::memcpy(m_.data + slot, m_.mem + d.src, kDmaLen);
    }
    mdevmig_dma_cmpl* c = cmpl(n);
    std::memset(c, 0, sizeof *c);
    __atomic_store_n(&c->status, MDEVMIG_DMA_ST_PENDING, __ATOMIC_RELEASE);
    std::memcpy(guest_.data() + (n % kRingEntries) * sizeof d, &d, sizeof d);
    guest_.mark_cpu_dirty((n % kRingEntries) * sizeof d, sizeof d);
    guest_.mark_cpu_dirty(kCmplOff + (n % kRingEntries) * sizeof *c, sizeof *c);
    m_.hdr->descs = n + 1;
    if (!dev_.write_as(kBar0, MDEVMIG_REG_RING_TAIL, static_cast<uint32_t>(n + 1)).ok()) ++m_.hdr->dma_failures;
  }

  const vfio::Device& dev_;
  engine::GuestMemory& guest_;
  vfio::Mapping& bar2_;
  Model m_;
  double writes_per_tick_;
  uint32_t desc_every_;
  std::mutex mu_;  // held while an op is issued; pause() takes it
  std::condition_variable cv_;
  bool paused_ = true, stopping_ = false;
  std::thread thread_;
};

enum class VmRole { kBoot, kIncoming, kRestore };

struct VmSpec {
  std::string uuid;
  VmRole role = VmRole::kBoot;
  std::string checkpoint_file;
  const SharedModels* models = nullptr;
  const LocalStressOptions* options = nullptr;
};

// A process that owns one instance like a VMM: device, container, guest memory, the
// workload. Driven by messages on `ctrl`.
class VmProcess {
 public:
  VmProcess(VmSpec spec, int ctrl) : spec_(std::move(spec)), ctrl_(ctrl), model_(spec_.models->live()) {}

  int main(int mig_fd) {
    auto r = open();
    if (r.ok() && spec_.role == VmRole::kBoot) r = boot();
    if (r.ok() && spec_.role == VmRole::kRestore) r = restore();
    if (!r.ok()) {
      reply(error_json(r.error()));
      return 3;
    }
    if (spec_.role == VmRole::kIncoming) {
      incoming(UniqueFd(mig_fd));
    } else {
      reply({{"ok", true}});
    }
    for (;;) {
      UniqueFd passed;
      auto m = recv_msg(ctrl_, std::chrono::hours(24), &passed);
      if (!m.ok()) break;
      const std::string cmd = m->value("cmd", "");
      if (cmd == "quit") break;
      if (cmd == "verify") reply(verify());
      else if (cmd == "checkpoint") reply(checkpoint());
      else if (cmd == "migrate") migrate(*m, std::move(passed));
      else if (cmd == "cancel") cancel();
    }
    if (source_.joinable()) source_.join();
    if (workload_) workload_->stop();
    return 0;
  }

 private:
  void reply(const json& j) {
    std::lock_guard lock(reply_mu_);
    (void)send_msg(ctrl_, j);
  }

  Result<void> open() {
    dev_ = std::make_unique<OpenedDevice>(MDEVMIG_TRY(OpenedDevice::open(MDEVMIG_TRY(parse_device_spec(spec_.uuid)))));
    id_ = MDEVMIG_TRY(dev_->identity());
    guest_.emplace(MDEVMIG_TRY(engine::GuestMemory::create(*dev_->container(), kGuestIova, kGuestBytes, true)));
    bar2_ = MDEVMIG_TRY(dev().mmap_region(kBar2, 0));
    if (bar2_.size() < model_.mem_size) return Error::make(EINVAL, "stress VM", "BAR2 smaller than device memory");
    workload_.emplace(dev(), *guest_, bar2_, model_, spec_.options->bar2_writes_per_s, spec_.options->descs_per_s);
    return ok();
  }
  [[nodiscard]] const vfio::Device& dev() const { return dev_->dev(); }

  // A fresh VM: bus master, the ring in guest memory, the engine on; the model starts
  // from the device's memory as it is.
  Result<void> boot() {
    *model_.hdr = ModelHeader{};
    MDEVMIG_TRY(dev().write_as(kCfg, PCI_COMMAND, uint16_t{PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER}));
    MDEVMIG_TRY(dev().write_as(kBar0, MDEVMIG_REG_RING_BASE_LO, static_cast<uint32_t>(kGuestIova)));
    MDEVMIG_TRY(dev().write_as(kBar0, MDEVMIG_REG_RING_BASE_HI, static_cast<uint32_t>(kGuestIova >> 32)));
    MDEVMIG_TRY(dev().write_as(kBar0, MDEVMIG_REG_RING_SIZE, kRingEntries));
    MDEVMIG_TRY(dev().write_as(kBar0, MDEVMIG_REG_CTRL, uint32_t{MDEVMIG_CTRL_ENABLE}));
    model_.hdr->seq_base = MDEVMIG_TRY(dev().read_as<uint32_t>(kBar0, MDEVMIG_REG_SEQ));
    for (uint32_t i = 0; i < MDEVMIG_NR_SCRATCH; ++i)
      model_.hdr->scratch[i] = MDEVMIG_TRY(dev().read_as<uint32_t>(kBar0, MDEVMIG_REG_SCRATCH(i)));
    MDEVMIG_TRY(dev().read(kBar2, 0, std::span(model_.mem, model_.mem_size)));
    std::memset(model_.data, 0, kDataBytes);
    return ok();
  }

  // After a lost VM: the checkpoint's model becomes the live one, the device loads the
  // checkpoint file (`mdevmig restore`), guest memory gets the checkpoint's image.
  Result<void> restore() {
    SharedModels::copy(spec_.models->checkpoint(), model_);
    MDEVMIG_TRY(run_self({"restore", "fd:" + std::to_string(dev().fd()), spec_.checkpoint_file}, dev().fd()));
    std::memcpy(guest_->data(), model_.guest_image, kGuestBytes);
    guest_->mark_cpu_dirty(0, kGuestBytes);
    return ok();
  }

  void incoming(UniqueFd sock) {
    // The channel and the connection are closed before the answer, so the VM's fds
    // are settled when the stress process looks.
    auto rep = [&]() -> Result<engine::MigrationReport> {
      auto ch = MDEVMIG_TRY(engine::open_channel(dev(), spec_.options->channel, true));
      engine::DestinationOptions o;
      o.peer_timeout = spec_.options->timeout;
      return engine::run_destination(*ch, id_, &*guest_, sock.get(), o);
    }();
    sock.reset();
    reply(rep.ok() ? json{{"ok", true}, {"downtime_s", rep->downtime_s}} : error_json(rep.error()));
  }

  void migrate(const json& m, UniqueFd sock) {
    if (source_.joinable()) source_.join();
    if (!sock.valid()) {
      reply(error_json(Error::make(EINVAL, "migrate", "no connection passed")));
      return;
    }
    sock_fd_ = sock.get();
    source_ = std::thread([this, m, s = std::move(sock)]() mutable {
      auto rep = [&]() -> Result<engine::MigrationReport> {
        auto ch = MDEVMIG_TRY(engine::open_channel(dev(), spec_.options->channel, true));
        engine::SourceOptions o;
        o.policy.downtime_target_s = m.value("downtime_ms", 0u) / 1000.0;
        o.policy.max_iterations = m.value("max_iterations", 1u);
        o.peer_timeout = spec_.options->timeout;
        o.before_stop = [this] { workload_->pause(); };
        o.after_recover = [this] { workload_->run(); };
        return engine::run_source(*ch, id_, &*guest_, s.get(), o);
      }();
      {
        std::lock_guard lock(sock_mu_);
        sock_fd_ = -1;
        s.reset();
      }
      if (!rep.ok()) {
        reply(error_json(rep.error()));
        return;
      }
      json log = json::array();
      for (const auto& it : rep->log)
        log.push_back({{"iteration", it.iteration}, {"device_bytes", it.device_bytes}, {"guest_pages", it.guest_pages},
                       {"seconds", it.seconds}});
      reply({{"ok", true},
             {"total_s", rep->total_s},
             {"downtime_s", rep->downtime_s},
             {"precopy_s", rep->precopy_s},
             {"iterations", rep->iterations},
             {"switchover_reason", rep->switchover_reason},
             {"stream_bytes", rep->stream_bytes},
             {"wire_bytes", rep->wire_bytes},
             {"precopy_bytes", rep->precopy_device_bytes + rep->precopy_guest_bytes},
             {"stopcopy_bytes", rep->stopcopy_device_bytes + rep->stopcopy_guest_bytes},
             {"log", log}});
    });
  }

  // Aborts the session in flight: its connection goes down under it.
  void cancel() {
    std::lock_guard lock(sock_mu_);
    if (sock_fd_ >= 0) ::shutdown(sock_fd_, SHUT_RDWR);
  }

  // Drains the workload and compares everything with the model; the workload runs after.
  json verify() {
    workload_->pause();
    json out = compare();
    workload_->run();
    return out;
  }

  json compare() {
    std::vector<std::string> bad;
    auto note = [&](std::string s) {
      if (bad.size() < 8) bad.push_back(std::move(s));
    };
    if (auto d = workload_->drain(30s); !d.ok()) note(d.error().message());
    // Device memory, all of it, through the device fd (any access mode).
    XXH3_state_t* st = XXH3_createState();
    XXH3_64bits_reset(st);
    std::vector<std::byte> buf(1u << 20);
    uint64_t bad_pages = 0, first_bad = UINT64_MAX;
    for (uint64_t off = 0; off < model_.mem_size; off += buf.size()) {
      const std::size_t n = static_cast<std::size_t>(std::min<uint64_t>(buf.size(), model_.mem_size - off));
      if (auto r = dev().read(kBar2, off, std::span(buf.data(), n)); !r.ok()) {
        note(r.error().message());
        break;
      }
      XXH3_64bits_update(st, buf.data(), n);
      for (std::size_t p = 0; p < n; p += kPage) {
        if (std::memcmp(buf.data() + p, model_.mem + off + p, std::min<std::size_t>(kPage, n - p)) != 0) {
          ++bad_pages;
          first_bad = std::min(first_bad, off + p);
        }
      }
    }
    const uint64_t mem_hash = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    if (bad_pages) note(std::to_string(bad_pages) + " device memory pages differ from the model, first at " + std::to_string(first_bad));
    if (std::memcmp(guest_->data() + kDataOff, model_.data, kDataBytes) != 0) note("DMA results in guest memory differ from the model");
    const ModelHeader& h = *model_.hdr;
    auto reg = [&](const char* name, uint32_t r, uint32_t want) {
      auto v = dev().read_as<uint32_t>(kBar0, r);
      if (!v.ok()) note(v.error().message());
      else if (*v != want) note(std::string(name) + " is " + std::to_string(*v) + ", expected " + std::to_string(want));
    };
    const uint32_t idx = static_cast<uint32_t>(h.descs % kRingEntries);
    reg("CTRL", MDEVMIG_REG_CTRL, MDEVMIG_CTRL_ENABLE);
    reg("RING_BASE_LO", MDEVMIG_REG_RING_BASE_LO, static_cast<uint32_t>(kGuestIova));
    reg("RING_SIZE", MDEVMIG_REG_RING_SIZE, kRingEntries);
    reg("RING_HEAD", MDEVMIG_REG_RING_HEAD, idx);
    reg("RING_TAIL", MDEVMIG_REG_RING_TAIL, idx);
    reg("SEQ", MDEVMIG_REG_SEQ, static_cast<uint32_t>(h.seq_base + h.descs));
    reg("ERR_DESC", MDEVMIG_REG_ERR_DESC, 0);
    reg("ERR_DMA", MDEVMIG_REG_ERR_DMA, 0);
    for (uint32_t i = 0; i < MDEVMIG_NR_SCRATCH; ++i) reg("SCRATCH", MDEVMIG_REG_SCRATCH(i), h.scratch[i]);
    if (h.descs > 0) {
      const auto* c = reinterpret_cast<const mdevmig_dma_cmpl*>(guest_->data() + kCmplOff + (h.descs - 1) % kRingEntries * sizeof(mdevmig_dma_cmpl));
      if (c->status != MDEVMIG_DMA_ST_OK || c->user_data != h.descs - 1 || c->seq != static_cast<uint32_t>(h.seq_base + h.descs - 1))
        note("last completion: status " + std::to_string(c->status) + ", user_data " + std::to_string(c->user_data));
    }
    if (h.dma_failures) note(std::to_string(h.dma_failures) + " DMA descriptors or doorbells failed");
    return {{"ok", true},
            {"mismatches", bad},
            {"mem_hash", mem_hash},
            {"pages", model_.mem_size / kPage},
            {"seq", h.seq_base + h.descs},
            {"ops", model_.ops()},
            {"bar2_writes", h.bar2_writes},
            {"descs", h.descs},
            {"scratch", h.scratch_writes},
            {"fds", stress::count_open_fds()}};
  }

  // The checkpoint: with the workload drained, the device state to the file (by
  // `mdevmig save`, which leaves the device running) and the model to its checkpoint copy.
  json checkpoint() {
    workload_->pause();
    auto r = [&]() -> Result<void> {
      MDEVMIG_TRY(workload_->drain(30s));
      MDEVMIG_TRY(run_self({"save", "fd:" + std::to_string(dev().fd()), spec_.checkpoint_file}, dev().fd()));
      SharedModels::copy(model_, spec_.models->checkpoint());
      std::memcpy(spec_.models->checkpoint().guest_image, guest_->data(), kGuestBytes);
      return ok();
    }();
    workload_->run();
    return r.ok() ? json{{"ok", true}} : error_json(r.error());
  }

  VmSpec spec_;
  int ctrl_;
  Model model_;
  std::mutex reply_mu_;
  std::unique_ptr<OpenedDevice> dev_;
  schema::DeviceIdentity id_;
  std::optional<engine::GuestMemory> guest_;
  vfio::Mapping bar2_;
  std::optional<ModelWorkload> workload_;
  std::thread source_;
  std::mutex sock_mu_;  // sock_fd_
  int sock_fd_ = -1;
};

// ---- the stress process --------------------------------------------------------------------

struct Vm {
  pid_t pid = -1;
  UniqueFd ctrl;
  std::size_t instance = 0;
  std::optional<uint64_t> fds;  // its open fds at its first verification
};

// Relays src → dst through `fault` and dst → src as is, until either side ends.
void relay(UniqueFd src, UniqueFd dst, StreamFault& fault, const std::function<void()>& fire,
           std::chrono::milliseconds idle) {
  std::vector<std::byte> buf(256u << 10);
  auto send_all = [](int fd, const std::byte* p, std::size_t n) {
    while (n > 0) {
      const ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return false;
      p += w;
      n -= static_cast<std::size_t>(w);
    }
    return true;
  };
  for (bool go = true; go;) {
    pollfd p[2] = {{src.get(), POLLIN, 0}, {dst.get(), POLLIN, 0}};
    const int rc = ::poll(p, 2, static_cast<int>(idle.count()));
    if (rc <= 0) break;
    if (p[0].revents) {
      const ssize_t n = ::read(src.get(), buf.data(), buf.size());
      if (n <= 0) break;
      const auto s = fault.apply(std::span(buf.data(), static_cast<std::size_t>(n)));
      if (!send_all(dst.get(), buf.data(), s.forward)) break;
      if (s.fire && fire) fire();
      if (s.cut) go = false;
    }
    if (go && p[1].revents) {
      const ssize_t n = ::read(dst.get(), buf.data(), buf.size());
      if (n <= 0 || !send_all(src.get(), buf.data(), static_cast<std::size_t>(n))) break;
    }
  }
  ::shutdown(src.get(), SHUT_RDWR);
  ::shutdown(dst.get(), SHUT_RDWR);
}

qemu::Verification to_verification(const json& j) {
  qemu::Verification v;
  if (!j.value("ok", false)) {
    v.mismatches.push_back("verification failed: " + j.value("error", std::string("?")));
    return v;
  }
  v.mismatches = j.value("mismatches", std::vector<std::string>{});
  v.mem_hash = j.value("mem_hash", uint64_t{0});
  v.pages_sampled = j.value("pages", uint64_t{0});
  v.descs = j.value("seq", uint64_t{0});
  return v;
}

class LocalStress {
 public:
  LocalStress(std::vector<mdev::MdevInstance> inst, const LocalStressOptions& o, SharedModels models, std::string dir)
      : inst_(std::move(inst)), o_(o), models_(std::move(models)), dir_(std::move(dir)),
        checkpoint_file_(dir_ + "/checkpoint.mdevmig") {}
  ~LocalStress() {
    if (vm_) end_vm(*vm_, true);
    ::unlink(checkpoint_file_.c_str());
    ::rmdir(dir_.c_str());
  }

  qemu::StressReport run();

 private:
  void say(const std::string& s) const {
    if (o_.log) o_.log(s);
  }
  [[nodiscard]] std::chrono::milliseconds wait() const { return o_.timeout; }

  Result<Vm> fork_vm(std::size_t instance, VmRole role, int mig_fd) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) return Error::from_errno("socketpair");
    std::fflush(stdout);
    std::fflush(stderr);
    const pid_t pid = ::fork();
    if (pid < 0) return Error::from_errno("fork");
    if (pid == 0) {
      // Only the control socket and the migration socket stay open in the VM: an
      // inherited copy of another end would hide a peer's exit.
      const int c = ::fcntl(sv[1], F_DUPFD, 100);
      const int m = mig_fd >= 0 ? ::fcntl(mig_fd, F_DUPFD, 100) : -1;
      ::dup2(c, 3);
      if (m >= 0) ::dup2(m, 4);
      ::close_range(m >= 0 ? 5 : 4, ~0u, 0);
      VmSpec spec{inst_[instance].uuid(), role, checkpoint_file_, &models_, &o_};
      ::_exit(VmProcess(std::move(spec), 3).main(m >= 0 ? 4 : -1));
    }
    ::close(sv[1]);
    Vm vm;
    vm.pid = pid;
    vm.ctrl.reset(sv[0]);
    vm.instance = instance;
    return vm;
  }

  // Quits (or, if `kill`, kills) a VM and reaps it; how it ended.
  std::string end_vm(Vm& vm, bool kill) {
    if (vm.pid < 0) return "gone";
    if (kill) ::kill(vm.pid, SIGKILL);
    else (void)send_msg(vm.ctrl.get(), {{"cmd", "quit"}});
    int st = 0;
    const auto until = Clock::now() + wait();
    pid_t r;
    while ((r = ::waitpid(vm.pid, &st, WNOHANG)) == 0 && Clock::now() < until) std::this_thread::sleep_for(5ms);
    if (r == 0) {
      ::kill(vm.pid, SIGKILL);
      ::waitpid(vm.pid, &st, 0);
    }
    vm.pid = -1;
    vm.ctrl.reset();
    if (WIFSIGNALED(st)) return std::string("killed by signal ") + std::to_string(WTERMSIG(st));
    return "exited " + std::to_string(WEXITSTATUS(st));
  }

  Result<json> ask(Vm& vm, const json& msg) {
    MDEVMIG_TRY(send_msg(vm.ctrl.get(), msg));
    return recv_msg(vm.ctrl.get(), wait());
  }

  // Verifies a VM against the model; a VM's fd count must not grow between rounds.
  qemu::Verification verify(Vm& vm) {
    auto j = ask(vm, {{"cmd", "verify"}});
    if (!j.ok()) {
      qemu::Verification v;
      v.mismatches.push_back("verify: " + j.error().message());
      return v;
    }
    qemu::Verification v = to_verification(*j);
    const uint64_t fds = j->value("fds", uint64_t{0});
    if (!vm.fds) vm.fds = fds;
    else if (fds > *vm.fds)
      v.mismatches.push_back("the VM holds " + std::to_string(fds) + " fds, " + std::to_string(*vm.fds) + " before");
    last_ops_ = j->value("ops", last_ops_);
    last_stats_ = {j->value("bar2_writes", uint64_t{0}), j->value("descs", uint64_t{0}), j->value("scratch", uint64_t{0}), 0, 0, 0};
    return v;
  }

  Result<void> checkpoint() {
    auto j = MDEVMIG_TRY(ask(*vm_, {{"cmd", "checkpoint"}}));
    if (!j.value("ok", false)) return Error::make(EIO, "checkpoint", j.value("error", std::string("?")));
    return ok();
  }

  // A new VM on `instance` from the checkpoint.
  Result<qemu::Verification> recover(std::size_t instance) {
    Vm vm = MDEVMIG_TRY(fork_vm(instance, VmRole::kRestore, -1));
    auto j = recv_msg(vm.ctrl.get(), wait());
    if (!j.ok() || !j->value("ok", false)) {
      std::string why = j.ok() ? j->value("error", std::string("?")) : j.error().message();
      end_vm(vm, true);
      return Error::make(EIO, "restore the checkpoint", why);
    }
    vm_.emplace(std::move(vm));
    return verify(*vm_);
  }

  Result<qemu::RoundReport> round(uint32_t n, const LocalRoundPlan& plan);

  std::vector<mdev::MdevInstance> inst_;
  LocalStressOptions o_;
  SharedModels models_;
  std::string dir_, checkpoint_file_;
  std::optional<Vm> vm_;
  uint64_t last_ops_ = 0;
  qemu::WorkloadStats last_stats_;
};

Result<qemu::RoundReport> LocalStress::round(uint32_t n, const LocalRoundPlan& plan) {
  qemu::RoundReport rep;
  rep.round = n;
  rep.transport = qemu::Transport::kUnix;
  rep.fault = plan.fault;
  rep.migration.fault = plan.fault;
  const auto t0 = Clock::now();
  const uint64_t ops_before = last_ops_;
  Vm& src = *vm_;
  const std::size_t dst_instance = (src.instance + 1) % inst_.size();

  auto to_dst = MDEVMIG_TRY(io::stream_pair());
  auto to_src = MDEVMIG_TRY(io::stream_pair());
  Vm dst = MDEVMIG_TRY(fork_vm(dst_instance, VmRole::kIncoming, to_dst.second.get()));
  to_dst.second.reset();

  const uint64_t first_pass = models_.live().mem_size + kGuestBytes;
  const uint64_t offset = static_cast<uint64_t>(plan.fault_point * static_cast<double>(first_pass));
  StreamFault sf(plan.fault, offset);
  std::atomic<bool> fired{false};
  std::function<void()> fire = [&] {
    fired = true;
    switch (plan.fault) {
      case FaultKind::kKillDst: ::kill(dst.pid, SIGKILL); break;
      case FaultKind::kKillSrc: ::kill(src.pid, SIGKILL); break;
      case FaultKind::kCancel: (void)send_msg(src.ctrl.get(), {{"cmd", "cancel"}}); break;
      default: break;
    }
  };
  std::thread relay_thread(relay, std::move(to_src.first), std::move(to_dst.first), std::ref(sf), fire,
                           std::chrono::milliseconds(wait()));
  say("round " + std::to_string(n) + ": instance " + std::to_string(src.instance) + " -> " +
      std::to_string(dst_instance) + ", fault " + qemu::fault_name(plan.fault) + " at byte " + std::to_string(offset) +
      ", switchover within " + std::to_string(plan.max_iterations) + " iterations, target " +
      std::to_string(plan.downtime_ms) + " ms");
  auto sent = send_msg(src.ctrl.get(),
                       {{"cmd", "migrate"}, {"downtime_ms", plan.downtime_ms}, {"max_iterations", plan.max_iterations}},
                       to_src.second.get());
  to_src.second.reset();
  auto src_res = sent.ok() ? recv_msg(src.ctrl.get(), wait()) : Result<json>(std::move(sent).error());
  auto dst_res = recv_msg(dst.ctrl.get(), wait());
  relay_thread.join();
  rep.migration.wall_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  rep.migration.fault_fired = fired || ((plan.fault == FaultKind::kCorrupt || plan.fault == FaultKind::kTruncate) && sf.fired());
  if (rep.migration.fault_fired) rep.migration.fault_note = std::string(qemu::fault_name(plan.fault)) + " at " + std::to_string(offset) + " stream bytes";

  // Timeouts are the harness's failure, not a round's: stop the run.
  for (const Result<json>* r : {&src_res, &dst_res})
    if (!r->ok() && r->error().errnum == ETIMEDOUT) {
      end_vm(dst, true);
      return r->error();
    }
  const bool src_alive = src_res.ok();
  const bool dst_alive = dst_res.ok();
  const bool src_ok = src_alive && src_res->value("ok", false);
  const bool dst_ok = dst_alive && dst_res->value("ok", false);
  auto& m = rep.migration;
  if (src_ok) {
    const json& r = *src_res;
    m.total_ms = r.value("total_s", 0.0) * 1000;
    m.downtime_ms = r.value("downtime_s", 0.0) * 1000;
    m.setup_ms = 0;
    m.device_bytes = r.value("stream_bytes", uint64_t{0});
    m.device_iterations = r.value("iterations", uint64_t{0});
    m.wire_bytes = r.value("wire_bytes", uint64_t{0});
    m.wire_precopy_bytes = r.value("precopy_bytes", uint64_t{0});
    m.wire_downtime_bytes = r.value("stopcopy_bytes", uint64_t{0});
    m.final_query = r;
    double t = 0;
    for (const auto& it : r.value("log", json::array())) {
      qemu::PassRow row;
      row.pass = it.value("iteration", 0u);
      t += it.value("seconds", 0.0) * 1000;
      row.t_ms = t;
      row.device_bytes = it.value("device_bytes", uint64_t{0});
      row.device_pages = row.device_bytes / kPage;
      row.ram_pages = it.value("guest_pages", uint64_t{0});
      row.ram_bytes = row.ram_pages * kPage;
      row.wire_bytes = row.device_bytes + row.ram_bytes;
      m.passes.push_back(row);
    }
  } else if (src_alive) {
    m.error = src_res->value("error", std::string());
  } else if (dst_alive && !dst_ok) {
    m.error = dst_res->value("error", std::string());
  }
  if (!src_alive && plan.fault == FaultKind::kKillSrc) m.status = "source-killed";
  else if (src_ok && dst_ok) m.status = "completed";
  else if (plan.fault == FaultKind::kCancel && m.fault_fired) m.status = "cancelled";
  else m.status = "failed";
  if (!src_alive && plan.fault != FaultKind::kKillSrc) rep.problems.push_back("the source VM died: " + src_res.error().message());
  if (!dst_alive && plan.fault != FaultKind::kKillDst) rep.problems.push_back("the destination VM died: " + dst_res.error().message());
  if (src_ok != dst_ok && src_alive && dst_alive)
    rep.problems.push_back(std::string("source and destination disagree: the ") + (src_ok ? "source" : "destination") +
                           " completed");

  // The other side goes; the survivor holds the VM.
  if (src_ok && dst_ok) {
    rep.survivor = qemu::Survivor::kDestination;
    rep.src_end = end_vm(src, false);
    rep.dst_end = "running";
    vm_.emplace(std::move(dst));
  } else if (src_alive) {
    rep.survivor = qemu::Survivor::kSource;
    rep.src_end = "running";
    rep.dst_end = end_vm(dst, !dst_alive);
  } else {
    rep.survivor = qemu::Survivor::kNone;
    rep.src_end = end_vm(src, true);
    rep.dst_end = end_vm(dst, !dst_alive);
    vm_.reset();
  }
  if (rep.survivor != qemu::Survivor::kNone) {
    rep.verification = verify(*vm_);
    rep.ops_pending = last_ops_ - ops_before;
    rep.ops_landed = rep.verification->ok() ? rep.ops_pending : 0;
  }
  rep.workload = last_stats_;
  rep.round_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  return rep;
}

qemu::StressReport LocalStress::run() {
  qemu::StressReport report;
  const auto t0 = Clock::now();
  std::set<std::string> ours;
  for (const auto& i : inst_) ours.insert(i.uuid());
  stress::LeakCheck leaks(ours);
  auto abort = [&](const std::string& why) {
    report.aborted = why;
    report.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    return report;
  };

  {
    auto vm = fork_vm(0, VmRole::kBoot, -1);
    if (!vm.ok()) return abort("boot: " + vm.error().message());
    vm_.emplace(std::move(*vm));
    auto j = recv_msg(vm_->ctrl.get(), wait());
    if (!j.ok() || !j->value("ok", false))
      return abort("boot: " + (j.ok() ? j->value("error", std::string("?")) : j.error().message()));
    auto v = verify(*vm_);
    if (!v.ok()) return abort("the freshly booted VM does not verify: " + v.summary());
    if (auto c = checkpoint(); !c.ok()) return abort("first checkpoint: " + c.error().message());
  }

  RoundPlanner planner(o_);
  for (uint32_t n = 1; n <= o_.rounds; ++n) {
    const LocalRoundPlan plan = planner.next();
    const std::size_t src_instance = vm_->instance;
    auto r = round(n, plan);
    if (!r.ok()) {
      qemu::RoundReport failed;
      failed.round = n;
      failed.fault = plan.fault;
      failed.problems.push_back("harness: " + r.error().message());
      report.rounds.push_back(std::move(failed));
      ++report.unverified;
      return abort("round " + std::to_string(n) + ": " + r.error().message());
    }
    qemu::RoundReport rep = std::move(*r);
    const bool fired = rep.fault != FaultKind::kNone && rep.migration.fault_fired;
    if (fired) {
      ++report.faults_injected;
      // The relay flips a byte wherever it falls, maybe where it has no meaning (blind).
      if (auto p = stress::survivor_problem(rep, /*blind=*/true); !p.empty()) rep.problems.push_back(p);
    } else if (rep.survivor != qemu::Survivor::kDestination) {
      rep.problems.push_back(std::string("a migration without a fired fault left the VM on the ") +
                             qemu::survivor_name(rep.survivor) + (rep.migration.error.empty() ? "" : ": " + rep.migration.error));
    }
    if (rep.survivor == qemu::Survivor::kNone) {
      auto v = recover(src_instance);
      if (!v.ok()) {
        rep.problems.push_back("recovery from the checkpoint: " + v.error().message());
      } else {
        rep.recovered = true;
        rep.recovery_verification = std::move(*v);
      }
    }
    std::set<pid_t> live;
    if (vm_) live.insert(vm_->pid);
    for (auto& p : leaks.check(live, vm_ ? 1 : 0, "", nullptr)) rep.problems.push_back(p);
    if (fired && rep.verified()) ++report.recoveries_verified;
    if (!rep.verified()) ++report.unverified;
    say("round " + std::to_string(n) + ": " + rep.migration.status + ", survivor " + qemu::survivor_name(rep.survivor) +
        (rep.verified() ? ", verified" : ", NOT VERIFIED"));
    for (const auto& p : rep.problems) say("  problem: " + p);
    const bool recovered = rep.recovered;
    report.rounds.push_back(std::move(rep));
    if (!vm_) return abort("round " + std::to_string(n) + ": no VM after the round");
    if (n % o_.checkpoint_every == 0 || recovered) {
      if (auto c = checkpoint(); !c.ok()) return abort("checkpoint after round " + std::to_string(n) + ": " + c.error().message());
    }
  }
  report.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return report;
}

}  // namespace

qemu::StressReport run_local_stress(std::vector<mdev::MdevInstance> instances, const LocalStressOptions& options) {
  qemu::StressReport report;
  auto fail = [&](const std::string& why) {
    report.aborted = why;
    return report;
  };
  if (instances.size() != 2) return fail("local mode needs two instances");
  auto mem = instances[0].mem_size();
  if (!mem.ok()) return fail(mem.error().message());
  auto mem_b = instances[1].mem_size();
  if (!mem_b.ok() || *mem_b != *mem) return fail("the two instances must have the same device memory size");
  if (*mem < 4 * kDmaLen) return fail("device memory too small");
  auto models = SharedModels::create(*mem);
  if (!models.ok()) return fail(models.error().message());
  char tmpl[] = "/tmp/mdevmig-stress.XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return fail(Error::from_errno("mkdtemp", tmpl).message());
  // A VM that goes away is an error to handle, not a signal that kills this process.
  ::signal(SIGPIPE, SIG_IGN);
  LocalStress s(std::move(instances), options, std::move(*models), tmpl);
  return s.run();
}

json local_report_json(const qemu::StressReport& report, const LocalStressOptions& o) {
  json j = report.to_json("local", {{"rounds", o.rounds},
                                    {"fault_rate", o.fault_rate},
                                    {"faults", stress::fault_names(o.faults)},
                                    {"seed", o.seed},
                                    {"max_iterations", o.max_iterations},
                                    {"downtime_target_ms", o.downtime_ms},
                                    {"bar2_writes_per_s", o.bar2_writes_per_s},
                                    {"descs_per_s", o.descs_per_s},
                                    {"checkpoint_every", o.checkpoint_every}});
  for (auto& r : j["round_reports"]) r["transport"] = "socketpair";
  return j;
}

}  // namespace mdevmig::cli
