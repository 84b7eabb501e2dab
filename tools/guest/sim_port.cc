#include "tools/guest/sim_port.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>

namespace mdevmig::guest {
namespace {

Error sim_error(int err, const char* op, uint64_t at) {
  return Error::make(err < 0 ? -err : err, op, "simulator, offset " + std::to_string(at));
}

template <typename T>
T must(Result<T> r, const char* what) {
  if (!r.ok()) {
    std::fprintf(stderr, "SimRing: %s failed: %s\n", what, r.error().message().c_str());
    std::abort();
  }
  if constexpr (!std::is_void_v<T>) return std::move(r).value();
}

}  // namespace

Result<void> SimPort::map(const Layout& layout) {
  if (!dev_->iommu().map(layout.base, Layout::kSize))
    return sim_error(EEXIST, "map guest memory", layout.base);
  return ok();
}

// BAR0 goes through the model's register file; BAR2 is device memory, which the
// module maps into the guest: a CPU access reaches the memory directly.
Result<void> SimPort::mmio(Bar bar, uint64_t off, void* buf, uint32_t len, bool write) {
  if (bar == Bar::kMem) {
    if (off > dev_->mem_size() || len > dev_->mem_size() - off)
      return sim_error(EINVAL, "BAR2 access", off);
    if (write) {
      std::memcpy(dev_->mem() + off, buf, len);
      dev_->dirty[off >> MDEVMIG_PAGE_SHIFT] = true;
    } else {
      std::memcpy(buf, dev_->mem() + off, len);
    }
    return ok();
  }
  if (off > UINT32_MAX) return sim_error(EINVAL, "BAR0 access", off);
  int ret = write ? mdevmig_model_mmio_write(dev_->model(), static_cast<uint32_t>(off), buf, len)
                  : mdevmig_model_mmio_read(dev_->model(), static_cast<uint32_t>(off), buf, len);
  if (ret) return sim_error(ret, write ? "BAR0 write" : "BAR0 read", off);
  return ok();
}

Result<uint32_t> SimPort::read32(Bar bar, uint64_t off) {
  uint8_t b[4];
  MDEVMIG_TRY(mmio(bar, off, b, 4, false));
  return mdevmig_get_le32(b);
}

Result<void> SimPort::write32(Bar bar, uint64_t off, uint32_t v) {
  uint8_t b[4];
  mdevmig_put_le32(b, v);
  return mmio(bar, off, b, 4, true);
}

Result<uint64_t> SimPort::read64(Bar bar, uint64_t off) {
  uint8_t b[8];
  MDEVMIG_TRY(mmio(bar, off, b, 8, false));
  return mdevmig_get_le64(b);
}

Result<void> SimPort::write64(Bar bar, uint64_t off, uint64_t v) {
  uint8_t b[8];
  mdevmig_put_le64(b, v);
  return mmio(bar, off, b, 8, true);
}

Result<void> SimPort::read_bar(Bar bar, uint64_t off, std::span<uint8_t> out) {
  if (bar != Bar::kMem) {
    for (std::size_t i = 0; i < out.size(); i += 4) {
      uint32_t v = MDEVMIG_TRY(read32(bar, off + i));
      std::memcpy(out.data() + i, &v, std::min<std::size_t>(4, out.size() - i));
    }
    return ok();
  }
  if (out.size() > UINT32_MAX) return sim_error(EINVAL, "BAR2 read", off);
  return mmio(bar, off, out.data(), static_cast<uint32_t>(out.size()), false);
}

Result<uint32_t> SimPort::cfg_read(uint32_t off, uint32_t len) {
  uint8_t b[4] = {};
  if (len > 4) return sim_error(EINVAL, "config read", off);
  if (int ret = mdevmig_model_cfg_read(dev_->model(), off, b, len))
    return sim_error(ret, "config read", off);
  return mdevmig_get_le32(b);
}

Result<void> SimPort::cfg_write(uint32_t off, uint32_t len, uint32_t v) {
  uint8_t b[4];
  if (len > 4) return sim_error(EINVAL, "config write", off);
  mdevmig_put_le32(b, v);
  if (int ret = mdevmig_model_cfg_write(dev_->model(), off, b, len))
    return sim_error(ret, "config write", off);
  return ok();
}

Result<void> SimPort::mem_read(uint64_t addr, std::span<uint8_t> out) {
  if (int ret = dev_->iommu().read(addr, out.data(), out.size()))
    return sim_error(ret, "guest memory read", addr);
  return ok();
}

Result<void> SimPort::mem_write(uint64_t addr, std::span<const uint8_t> data) {
  if (int ret = dev_->iommu().write(addr, data.data(), data.size()))
    return sim_error(ret, "guest memory write", addr);
  return ok();
}

SimRing::SimRing(vendor_sim::SimDevice& dev, uint32_t entries, Layout layout)
    : port_(dev), ring_(layout, entries) {
  must(port_.map(layout), "map the layout");
  must(enable_bus_master(port_), "enable bus master");
  must(ring_.program(port_), "program the ring");
}

uint32_t SimRing::submit(const mdevmig_dma_desc& d) {
  return must(ring_.submit(port_, d), "submit");
}
uint32_t SimRing::queue(const mdevmig_dma_desc& d) { return must(ring_.queue(port_, d), "queue"); }
void SimRing::doorbell() { must(ring_.doorbell(port_), "doorbell"); }
mdevmig_dma_cmpl SimRing::completion(uint32_t slot) {
  return must(ring_.completion(port_, slot), "completion");
}

}  // namespace mdevmig::guest
