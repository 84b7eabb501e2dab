#include "sim.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

namespace mdevmig::vendor_sim {
namespace {

[[noreturn]] void die(const char* what, int err) {
  std::fprintf(stderr, "vendor_sim: %s failed: %d\n", what, err);
  std::abort();
}

}  // namespace

// ---- FakeIommu ---------------------------------------------------------------------

bool FakeIommu::map(uint64_t iova, uint64_t size) {
  if (size == 0 || iova + size < iova) return false;
  auto next = maps_.lower_bound(iova);
  if (next != maps_.end() && next->first < iova + size) return false;
  if (next != maps_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second.mem.size() > iova) return false;
  }
  maps_[iova].mem.assign(size, 0);
  return true;
}

bool FakeIommu::unmap(uint64_t iova) { return maps_.erase(iova) == 1; }

uint8_t* FakeIommu::translate(uint64_t iova, uint64_t len) {
  auto it = maps_.upper_bound(iova);
  if (it == maps_.begin()) return nullptr;
  --it;
  uint64_t off = iova - it->first;
  if (off > it->second.mem.size() || len > it->second.mem.size() - off) return nullptr;
  return it->second.mem.data() + off;
}

void FakeIommu::zero() {
  for (auto& [iova, m] : maps_) std::memset(m.mem.data(), 0, m.mem.size());
  fail_countdown_ = -1;
  accesses_ = 0;
  faults_ = 0;
}

bool FakeIommu::inject_fault() {
  if (fail_countdown_ < 0) return false;
  if (fail_countdown_-- > 0) return false;
  fail_countdown_ = -1;
  return true;
}

// Calls fn(host_ptr, offset_in_access, bytes) for each mapping piece of the range;
// fails without calling fn at all if any byte is unmapped.
template <typename Fn>
int FakeIommu::walk(uint64_t iova, size_t len, Fn&& fn) {
  accesses_++;
  if (inject_fault() || iova + len < iova) {
    faults_++;
    return -EFAULT;
  }
  // Check first, then copy: a faulting access has no partial effect in the sim.
  for (int pass = 0; pass < 2; pass++) {
    size_t done = 0;
    while (done < len) {
      auto it = maps_.upper_bound(iova + done);
      if (it == maps_.begin()) {
        faults_++;
        return -EFAULT;
      }
      --it;
      uint64_t off = iova + done - it->first;
      if (off >= it->second.mem.size()) {
        faults_++;
        return -EFAULT;
      }
      size_t n = std::min<uint64_t>(len - done, it->second.mem.size() - off);
      if (pass == 1) fn(it->second.mem.data() + off, done, n);
      done += n;
    }
  }
  return 0;
}

int FakeIommu::read(uint64_t iova, void* buf, size_t len) {
  auto* out = static_cast<uint8_t*>(buf);
  return walk(iova, len, [&](uint8_t* p, size_t at, size_t n) { std::memcpy(out + at, p, n); });
}

int FakeIommu::write(uint64_t iova, const void* buf, size_t len) {
  const auto* in = static_cast<const uint8_t*>(buf);
  return walk(iova, len, [&](uint8_t* p, size_t at, size_t n) { std::memcpy(p, in + at, n); });
}

// ---- SimDevice ---------------------------------------------------------------------

const mdevmig_model_ops SimDevice::kOps = {
    .dma_read = &SimDevice::op_dma_read,
    .dma_write = &SimDevice::op_dma_write,
    .msi = &SimDevice::op_msi,
    .intx = &SimDevice::op_intx,
    .kick = &SimDevice::op_kick,
    .mem_dirty = &SimDevice::op_mem_dirty,
};

SimDevice::SimDevice(uint64_t mem_size, uint32_t type_id)
    : dirty(mem_size >> MDEVMIG_PAGE_SHIFT), mem_(mem_size) {
  mdevmig_model_config cfg{.mem = mem_.data(), .mem_size = mem_size, .type_id = type_id};
  int ret = mdevmig_model_init(&model_, &cfg, &kOps, this);
  if (ret) die("mdevmig_model_init", ret);
}

int SimDevice::op_dma_read(void* host, uint64_t iova, void* buf, size_t len) {
  return static_cast<SimDevice*>(host)->iommu_.read(iova, buf, len);
}

int SimDevice::op_dma_write(void* host, uint64_t iova, const void* buf, size_t len) {
  return static_cast<SimDevice*>(host)->iommu_.write(iova, buf, len);
}

void SimDevice::op_msi(void* host, unsigned int vector) {
  auto* dev = static_cast<SimDevice*>(host);
  mdevmig_model_irq_info info;
  mdevmig_model_get_irq_info(&dev->model_, &info);
  if (!info.msi_enabled || vector >= info.msi_vectors)
    die("MSI vector not enabled", static_cast<int>(vector));
  dev->msis.push_back(vector);
}

void SimDevice::op_intx(void* host, bool asserted) {
  auto* dev = static_cast<SimDevice*>(host);
  if (dev->intx == asserted) die("intx callback without a level change", asserted);
  dev->intx = asserted;
  dev->intx_changes++;
}

void SimDevice::op_kick(void* host) { static_cast<SimDevice*>(host)->kicks++; }

void SimDevice::op_mem_dirty(void* host, uint64_t offset, uint64_t len) {
  auto* dev = static_cast<SimDevice*>(host);
  if (offset > dev->mem_.size() || len > dev->mem_.size() - offset) die("mem_dirty range", 0);
  if (len == 0) return;
  for (uint64_t p = offset >> MDEVMIG_PAGE_SHIFT; p <= (offset + len - 1) >> MDEVMIG_PAGE_SHIFT;
       p++)
    dev->dirty[p] = true;
}

void SimDevice::clear_events() {
  msis.clear();
  intx_changes = 0;
  kicks = 0;
  std::fill(dirty.begin(), dirty.end(), false);
}

void SimDevice::reset_all() {
  std::memset(mem_.data(), 0, mem_.size());
  iommu_.zero();
  mdevmig_model_reset(&model_);  // deasserts INTx through op_intx
  clear_events();
}

uint32_t SimDevice::cfg_read(uint32_t off, uint32_t len) {
  uint8_t b[4] = {};
  if (len > 4) die("cfg_read len", static_cast<int>(len));
  int ret = mdevmig_model_cfg_read(&model_, off, b, len);
  if (ret) die("mdevmig_model_cfg_read", ret);
  return mdevmig_get_le32(b);
}

void SimDevice::cfg_write(uint32_t off, uint32_t val, uint32_t len) {
  uint8_t b[4];
  if (len > 4) die("cfg_write len", static_cast<int>(len));
  mdevmig_put_le32(b, val);
  int ret = mdevmig_model_cfg_write(&model_, off, b, len);
  if (ret) die("mdevmig_model_cfg_write", ret);
}

uint32_t SimDevice::mmio_read32(uint32_t off) {
  uint8_t b[4];
  int ret = mdevmig_model_mmio_read(&model_, off, b, 4);
  if (ret) die("mdevmig_model_mmio_read", ret);
  return mdevmig_get_le32(b);
}

uint64_t SimDevice::mmio_read64(uint32_t off) {
  uint8_t b[8];
  int ret = mdevmig_model_mmio_read(&model_, off, b, 8);
  if (ret) die("mdevmig_model_mmio_read", ret);
  return mdevmig_get_le64(b);
}

void SimDevice::mmio_write32(uint32_t off, uint32_t val) {
  uint8_t b[4];
  mdevmig_put_le32(b, val);
  int ret = mdevmig_model_mmio_write(&model_, off, b, 4);
  if (ret) die("mdevmig_model_mmio_write", ret);
}

void SimDevice::mmio_write64(uint32_t off, uint64_t val) {
  uint8_t b[8];
  mdevmig_put_le64(b, val);
  int ret = mdevmig_model_mmio_write(&model_, off, b, 8);
  if (ret) die("mdevmig_model_mmio_write", ret);
}

uint64_t SimDevice::run_to_idle(uint64_t max_steps) {
  uint64_t steps = 0;
  while (steps < max_steps && mdevmig_model_work_pending(&model_)) {
    mdevmig_model_run(&model_, 1);
    steps++;
  }
  return steps;
}

void append_compat(std::vector<uint8_t>& out, const mdevmig_model* m) {
  size_t at = out.size();
  out.resize(at + 256);
  long n = mdevmig_stream_put_compat(m, out.data() + at, 256);
  if (n < 0) die("mdevmig_stream_put_compat", static_cast<int>(n));
  out.resize(at + static_cast<size_t>(n));
}

void append_pages(std::vector<uint8_t>& out, const mdevmig_model* m, uint64_t first,
                  uint32_t count) {
  size_t at = out.size();
  size_t size = MDEVMIG_STREAM_PAGES_SIZE(count);
  out.resize(at + size);
  long n = mdevmig_stream_put_pages(m, first, count, out.data() + at, size);
  if (n < 0) die("mdevmig_stream_put_pages", static_cast<int>(n));
  out.resize(at + static_cast<size_t>(n));
}

void append_state(std::vector<uint8_t>& out, const mdevmig_model* m) {
  size_t at = out.size();
  size_t size = mdevmig_stream_state_size();
  out.resize(at + size);
  long n = mdevmig_stream_put_state(m, out.data() + at, size);
  if (n < 0) die("mdevmig_stream_put_state", static_cast<int>(n));
  out.resize(at + static_cast<size_t>(n));
}

void append_end(std::vector<uint8_t>& out) {
  size_t at = out.size();
  out.resize(at + sizeof(mdevmig_rec_hdr));
  long n = mdevmig_stream_put_end(out.data() + at, sizeof(mdevmig_rec_hdr));
  if (n < 0) die("mdevmig_stream_put_end", static_cast<int>(n));
}

std::vector<uint8_t> SimDevice::save() const {
  std::vector<uint8_t> out;
  save(out);
  return out;
}

void SimDevice::save(std::vector<uint8_t>& out) const {
  uint64_t npages = mem_.size() >> MDEVMIG_PAGE_SHIFT;
  out.clear();
  out.reserve(mem_.size() + (npages / MDEVMIG_REC_PAGES_MAX + 8) * 64 + 1024);
  append_compat(out, &model_);
  for (uint64_t p = 0; p < npages; p += MDEVMIG_REC_PAGES_MAX)
    append_pages(out, &model_, p,
                 static_cast<uint32_t>(std::min<uint64_t>(MDEVMIG_REC_PAGES_MAX, npages - p)));
  append_state(out, &model_);
  append_end(out);
}

std::vector<uint8_t> SimDevice::save_pages(std::span<const uint64_t> pages) const {
  std::vector<uint8_t> out;
  append_compat(out, &model_);
  size_t i = 0;
  while (i < pages.size()) {
    uint32_t count = 1;
    while (i + count < pages.size() && count < MDEVMIG_REC_PAGES_MAX &&
           pages[i + count] == pages[i] + count)
      count++;
    append_pages(out, &model_, pages[i], count);
    i += count;
  }
  append_state(out, &model_);
  append_end(out);
  return out;
}

LoadResult SimDevice::load(std::span<const uint8_t> stream, size_t chunk) {
  // One record buffer per thread, not zeroed: the loader never reads what it did not write.
  thread_local std::unique_ptr<uint8_t[]> recbuf(new uint8_t[MDEVMIG_LOADER_BUF_SIZE]);
  mdevmig_loader ld;
  LoadResult r;
  r.err = mdevmig_loader_init(&ld, &model_, recbuf.get(), MDEVMIG_LOADER_BUF_SIZE);
  if (r.err) return r;
  if (chunk == 0) chunk = 1;
  for (size_t at = 0; at < stream.size() && !r.err; at += chunk)
    r.err = mdevmig_loader_feed(&ld, stream.data() + at, std::min(chunk, stream.size() - at));
  if (!r.err) r.err = mdevmig_loader_finish(&ld);
  r.reason = mdevmig_loader_reason(&ld);
  return r;
}

}  // namespace mdevmig::vendor_sim
