#include "tools/guest/replay.h"

#include <cstring>

#include "base/check.h"

namespace mdevmig::guest {

Replay::Replay(uint64_t mem_size, Layout layout, uint32_t entries, bool prefill)
    : layout_(layout),
      dev_(std::make_unique<vendor_sim::SimDevice>(mem_size)),
      port_(*dev_),
      ring_(layout, entries, prefill) {
  auto up = [&]() -> Result<void> {
    MDEVMIG_TRY(port_.map(layout_));
    MDEVMIG_TRY(enable_bus_master(port_));
    MDEVMIG_TRY(port_.set_reg(MDEVMIG_REG_INT_MASK, 0));
    return ring_.program(port_);
  }();
  MDEVMIG_CHECK(up.ok(), "bring up the replay device: %s",
                up.ok() ? "" : up.error().message().c_str());
}

Replay::Replay(const Replay& other)
    : layout_(other.layout_),
      dev_(std::make_unique<vendor_sim::SimDevice>(other.mem_size())),
      port_(*dev_),
      ring_(other.ring_) {
  auto mapped = port_.map(layout_);
  MDEVMIG_CHECK(mapped.ok(), "map the copy's guest memory");
  vendor_sim::LoadResult r = dev_->load(other.dev_->save());
  MDEVMIG_CHECK(r.err == 0, "copy the replay device: load failed %d (reason %d)", r.err,
                static_cast<int>(r.reason));
  std::memcpy(dev_->iommu().translate(layout_.base, Layout::kSize),
              other.dev_->iommu().translate(layout_.base, Layout::kSize), Layout::kSize);
}

Replay& Replay::operator=(const Replay& other) {
  if (this == &other) return *this;
  Replay copy(other);
  layout_ = copy.layout_;
  dev_ = std::move(copy.dev_);
  port_ = SimPort(*dev_);
  ring_ = copy.ring_;
  return *this;
}

std::vector<uint8_t> Replay::snapshot() const {
  std::vector<uint8_t> out = dev_->save();
  const uint8_t* g = dev_->iommu().translate(layout_.base, Layout::kSize);
  out.insert(out.end(), g, g + Layout::kSize);
  return out;
}

Result<void> Replay::restore(std::span<const uint8_t> snapshot, uint64_t queued) {
  if (snapshot.size() < Layout::kSize)
    return Error::make(EINVAL, "restore a replay",
                       "snapshot of " + std::to_string(snapshot.size()) + " bytes");
  dev_->reset_all();
  vendor_sim::LoadResult r = dev_->load(snapshot.first(snapshot.size() - Layout::kSize));
  if (r.err != 0)
    return Error::make(
        r.err < 0 ? -r.err : r.err, "restore a replay",
        "the model refused the stream (reason " + std::to_string(static_cast<int>(r.reason)) + ")");
  std::memcpy(dev_->iommu().translate(layout_.base, Layout::kSize),
              snapshot.last(Layout::kSize).data(), Layout::kSize);
  ring_.resync(queued);
  return ok();
}

std::span<const uint8_t> Replay::guest(uint64_t addr, uint64_t len) const {
  const uint8_t* p = dev_->iommu().translate(addr, len);
  MDEVMIG_CHECK(p != nullptr && addr >= layout_.base && addr - layout_.base + len <= Layout::kSize,
                "guest memory %#llx+%llu outside the layout", static_cast<unsigned long long>(addr),
                static_cast<unsigned long long>(len));
  return {p, len};
}

}  // namespace mdevmig::guest
