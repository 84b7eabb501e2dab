#include "tools/cli/migrate_workload.h"

#include <linux/mdevmig.h>
#include <linux/pci_regs.h>

#include <chrono>
#include <cstdio>
#include <cstring>

#include "migration/engine/identity.h"
#include "migration/vfio/uapi.h"
#include "tools/cli/guest_memory_port.h"
#include "tools/guest/descriptors.h"
#include "tools/guest/ring.h"

namespace mdevmig::cli {
namespace {

constexpr uint32_t kBar0 = VFIO_PCI_BAR0_REGION_INDEX;
constexpr uint32_t kBar2 = VFIO_PCI_BAR2_REGION_INDEX;
constexpr uint64_t kPage = 4096;
// The DMA workload uses tools/guest's layout at the guest memory's IOVA.
constexpr uint32_t kRingEntries = 64;
constexpr uint64_t kDmaLen = 64u << 10;

}  // namespace

Result<WorkloadConfig> parse_workload(std::string_view text) {
  WorkloadConfig c;
  if (text == "none") return c;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const std::size_t comma = text.find(',', pos);
    const std::string_view item =
        text.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
    if (item == "bar2") {
      c.bar2 = true;
    } else if (item == "dma") {
      c.dma = true;
    } else {
      return Error::make(
          EINVAL, "usage",
          "--workload wants none, bar2, dma or bar2,dma; got '" + std::string(text) + "'");
    }
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  return c;
}

Result<void> check_mdevmig_layout(const schema::DeviceIdentity& id, std::string_view what) {
  const std::string who = id.uuid.empty() ? std::string("the device") : id.uuid;
  auto refuse = [&](const std::string& why) {
    return Error::make_verdict(EOPNOTSUPP, std::string(what), who + " " + why);
  };
  if (!engine::is_mdevmig(id) || !id.compat) {
    char ids[48];
    std::snprintf(ids, sizeof(ids), "PCI %04x:%04x", id.pci_vendor, id.pci_device);
    return refuse(std::string("is not an mdevmig device (") + ids + ")");
  }
  const auto size_of = [&](uint32_t index) {
    return index < id.region_sizes.size() ? id.region_sizes[index] : 0;
  };
  if (size_of(kBar0) < MDEVMIG_REGS_SIZE || id.compat->mem_size == 0 ||
      size_of(kBar2) < id.compat->mem_size) {
    return refuse("has mdevmig's IDs but not its region layout (BAR0 " +
                  std::to_string(size_of(kBar0)) + " bytes, BAR2 " +
                  std::to_string(size_of(kBar2)) + " for " + std::to_string(id.compat->mem_size) +
                  " bytes of device memory)");
  }
  return ok();
}

Result<std::unique_ptr<Workload>> Workload::start(const vfio::Device& dev,
                                                  const schema::DeviceIdentity& id,
                                                  engine::GuestMemory* guest,
                                                  const WorkloadConfig& cfg) {
  const char* what = cfg.bar2 && cfg.dma ? "--workload bar2,dma"
                     : cfg.dma           ? "--workload dma"
                                         : "--workload bar2";
  if (auto ours = check_mdevmig_layout(id, what); !ours.ok()) {
    ours.error().context += "; the workloads drive mdevmig devices only";
    return std::move(ours).error();
  }
  auto w = std::unique_ptr<Workload>(new Workload(cfg));
  if (cfg.bar2) {
    w->bar2_ = MDEVMIG_TRY(dev.mmap_region(kBar2, 0));
    w->mem_size_ = w->bar2_.size();
    const uint64_t lo = MDEVMIG_TRY(dev.read_as<uint32_t>(kBar0, MDEVMIG_REG_MEM_SIZE_LO));
    const uint64_t hi = MDEVMIG_TRY(dev.read_as<uint32_t>(kBar0, MDEVMIG_REG_MEM_SIZE_HI));
    if ((lo | hi << 32) != 0) w->mem_size_ = std::min<uint64_t>(w->mem_size_, lo | hi << 32);
  }
  if (cfg.dma) {
    if (guest == nullptr || guest->size() < guest::Layout::kDataOff + 2 * kDmaLen) {
      return Error::make(
          EINVAL, "usage",
          "--workload dma needs --guest-mem of at least 2M and a device opened by UUID");
    }
    // Bus master on, the ring in guest memory, the engine enabled.
    w->port_ = std::make_unique<GuestMemoryPort>(dev, *guest);
    w->ring_ = std::make_unique<guest::Ring>(guest::Layout{.base = guest->iova()}, kRingEntries);
    MDEVMIG_TRY(w->port_->cfg_write(PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER));
    MDEVMIG_TRY(w->ring_->program(*w->port_));
    const uint64_t lo = MDEVMIG_TRY(dev.read_as<uint32_t>(kBar0, MDEVMIG_REG_MEM_SIZE_LO));
    const uint64_t hi = MDEVMIG_TRY(dev.read_as<uint32_t>(kBar0, MDEVMIG_REG_MEM_SIZE_HI));
    if (w->mem_size_ == 0) w->mem_size_ = lo | hi << 32;
  }
  if (cfg.bar2) w->bar2_thread_ = std::thread([p = w.get()] { p->bar2_loop(); });
  if (cfg.dma) w->dma_thread_ = std::thread([p = w.get()] { p->dma_loop(); });
  return w;
}

Workload::~Workload() { stop(); }

bool Workload::gate(std::unique_lock<std::mutex>& lock) {
  cv_.wait(lock, [&] { return !paused_ || stopping_; });
  return !stopping_;
}

void Workload::pause() {
  std::lock_guard lock(mu_);  // no write is in progress while we hold it
  paused_ = true;
}

void Workload::resume() {
  {
    std::lock_guard lock(mu_);
    paused_ = false;
  }
  cv_.notify_all();
}

void Workload::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (bar2_thread_.joinable()) bar2_thread_.join();
  if (dma_thread_.joinable()) dma_thread_.join();
}

void Workload::bar2_loop() {
  using namespace std::chrono;
  const uint64_t pages = mem_size_ / kPage;
  if (pages == 0) return;
  const double per_tick =
      cfg_.dirty_pct_per_s / 100.0 * static_cast<double>(pages) * 0.01;  // 10 ms ticks
  double budget = 0;
  uint64_t page = 0, counter = 0;
  auto next = steady_clock::now();
  for (;;) {
    next += milliseconds(10);
    {
      std::unique_lock lock(mu_);
      if (!gate(lock)) return;
      budget += per_tick;
      auto* mem = static_cast<std::byte*>(bar2_.data());
      for (; budget >= 1; budget -= 1) {
        // A stride co-prime with the page count walks all pages in scattered order.
        page = (page + 7919) % pages;
        ++counter;
        std::memcpy(mem + page * kPage + (counter % 512) * 8, &counter, sizeof(counter));
        pages_written_.fetch_add(1, std::memory_order_relaxed);
      }
    }
    std::this_thread::sleep_until(next);
  }
}

void Workload::dma_loop() {
  using namespace std::chrono;
  const guest::Layout& layout = ring_->layout();
  uint64_t n = 0;
  for (;;) {
    std::this_thread::sleep_for(milliseconds(20));
    std::unique_lock lock(mu_);
    if (!gate(lock)) return;
    if (n > 0) {
      // One descriptor at a time: the previous one must have completed.
      auto prev = ring_->completion(*port_, ring_->slot(n - 1));
      if (!prev.ok()) return;
      if (prev->status == MDEVMIG_DMA_ST_PENDING) continue;
    }
    const uint64_t dev_off =
        (n * kDmaLen) % (mem_size_ > kDmaLen ? mem_size_ - kDmaLen : 1) / kPage * kPage;
    mdevmig_dma_desc d =
        n % 2 == 0 ? guest::fill(dev_off, kDmaLen, 0x0101010101010101ull * (n & 0xff))
                   : guest::copy_from_dev(dev_off, layout.data((n / 2 % 2) * kDmaLen), kDmaLen);
    d.user_data = n;
    if (!ring_->submit(*port_, d).ok()) return;
    ++n;
    descriptors_.fetch_add(1, std::memory_order_relaxed);
  }
}

}  // namespace mdevmig::cli
