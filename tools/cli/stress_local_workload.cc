#include "tools/cli/stress_local_workload.h"

#include <linux/mdevmig.h>

#include <algorithm>
#include <cstring>

#include "tools/guest/descriptors.h"

namespace mdevmig::cli::local {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr uint32_t kTickMs = 10;

}  // namespace

GuestWorkload::GuestWorkload(guest::DevicePort& port, guest::Ring& ring, vfio::Mapping& bar2,
                             double writes, double descs)
    : port_(port),
      ring_(ring),
      bar2_(bar2),
      writes_per_tick_(writes * kTickMs / 1000.0),
      desc_every_(descs > 0 ? std::max<uint32_t>(1, static_cast<uint32_t>(1000.0 / descs / kTickMs))
                            : 0) {}

void GuestWorkload::run(Expected& expected) {
  {
    std::lock_guard lock(mu_);
    e_ = &expected;
    paused_ = false;
  }
  cv_.notify_all();
  if (!thread_.joinable()) thread_ = std::thread([this] { loop(); });
}

void GuestWorkload::pause() {
  std::lock_guard lock(mu_);
  paused_ = true;
}

void GuestWorkload::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Result<void> GuestWorkload::drain(std::chrono::milliseconds timeout) {
  const auto until = Clock::now() + timeout;
  while (!last_done()) {
    if (Clock::now() > until)
      return Error::make(ETIMEDOUT, "drain DMA", "the last descriptor did not complete");
    std::this_thread::sleep_for(5ms);
  }
  return ok();
}

// Whether the device wrote the completion of the last descriptor issued.
bool GuestWorkload::last_done() {
  if (e_ == nullptr || e_->counts.descs == 0) return true;
  auto c = ring_.completion(port_, ring_.slot(e_->counts.descs - 1));
  return c.ok() && c->status != MDEVMIG_DMA_ST_PENDING;
}

void GuestWorkload::loop() {
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

// Device memory: the lower half takes BAR2 writes, the upper half DMA fills and is the
// source of DMA copies, so the two writers never race.
void GuestWorkload::bar2_write() {
  const uint64_t v = ++e_->counts.bar2_writes;
  const uint64_t pages = e_->replay.mem_size() / 2 / kPage;
  const uint64_t off = (v * 7919 % pages) * kPage + (v % (kPage / 8)) * 8;
  std::memcpy(static_cast<std::byte*>(bar2_.data()) + off, &v, sizeof v);
  (void)e_->replay.port().write64(guest::Bar::kMem, off, v);
}

void GuestWorkload::scratch_write() {
  const uint64_t n = ++e_->counts.scratch_writes;
  const uint32_t reg = MDEVMIG_REG_SCRATCH(static_cast<uint32_t>(n % MDEVMIG_NR_SCRATCH));
  const uint32_t v = static_cast<uint32_t>(n * 0x9e3779b9u);
  if (port_.set_reg(reg, v).ok()) (void)e_->replay.port().set_reg(reg, v);
}

// Fills a block of the upper half, or copies one into the DMA results area.
void GuestWorkload::issue_desc() {
  const uint64_t n = e_->counts.descs;
  if (n > 0) {
    auto c = ring_.completion(port_, ring_.slot(n - 1));
    if (!c.ok() || c->status != MDEVMIG_DMA_ST_OK) ++e_->counts.dma_failures;
  }
  const uint64_t half = e_->replay.mem_size() / 2, blocks = half / kDmaLen;
  mdevmig_dma_desc d =
      n % 2 == 0
          ? guest::fill(half + (n / 2 * 13 % blocks) * kDmaLen, kDmaLen,
                        0x0123456789abcdefull ^ (n * 0x100000001b3ull))
          : guest::copy_from_dev(half + (n / 2 * 7 % blocks) * kDmaLen,
                                 kLayout.data((n / 2 % (kDataBytes / kDmaLen)) * kDmaLen), kDmaLen);
  d.flags = MDEVMIG_DMA_F_NO_IRQ;
  d.user_data = n;
  e_->counts.descs = n + 1;
  if (!ring_.submit(port_, d).ok()) ++e_->counts.dma_failures;
  if (e_->replay.ring().submit(e_->replay.port(), d).ok()) e_->replay.run();
}

}  // namespace mdevmig::cli::local
