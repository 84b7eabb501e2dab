// libFuzzer target: a guest driving the device model through config space, BAR0,
// descriptors in its memory and doorbells, with IOMMU faults and migrations (save on
// one simulated device, load on another, continue there) mixed in.
//
// Checked beyond "no crash, no sanitizer report": the simulator aborts on an INTx
// callback without a level change, an MSI vector outside the enabled ones and a
// mem_dirty range outside device memory; every migration must load, re-save
// byte-identically, and leave both devices in the same state after running to idle.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "mmio_program.h"
#include "tools/guest/layout.h"

namespace mdevmig::fuzz {
namespace {

using vendor_sim::SimDevice;
// Ring and completions where the seeds' RING_BASE writes point (tools/guest's layout).
constexpr guest::Layout kLayout = guest::kSimLayout;

class Reader {
 public:
  Reader(const uint8_t* p, size_t n) : p_(p), n_(n) {}
  bool empty() const { return n_ == 0; }
  uint8_t u8() { return n_ ? (n_--, *p_++) : 0; }
  uint16_t u16() { return static_cast<uint16_t>(u8() | (u8() << 8)); }
  uint32_t u32() {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= uint32_t{u8()} << (8 * i);
    return v;
  }
  uint64_t u64() {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= uint64_t{u8()} << (8 * i);
    return v;
  }

 private:
  const uint8_t* p_;
  size_t n_;
};

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "vendor_mmio_fuzz: invariant broken: %s\n", what);
  std::abort();
}

// Two devices, reused across executions (fresh allocations would make page faults the
// main cost): the current one and a migration destination.
SimDevice* device(int i) {
  static SimDevice* devs[2];
  if (!devs[i]) {
    devs[i] = new SimDevice(kMemSize, 1);
    if (!devs[i]->iommu().map(kBuf, kBufSize)) fail("map");
    if (!devs[i]->iommu().map(kLayout.base, guest::Layout::kSize)) fail("map the guest layout");
  }
  return devs[i];
}

// A fuzz op may have unmapped the guest buffer: bring it back before reuse.
void restore(SimDevice& d) {
  if (!d.iommu().translate(kBuf, kBufSize)) d.iommu().map(kBuf, kBufSize);
  d.reset_all();
}

void write_desc(SimDevice& dev, Reader& in) {
  uint8_t slot = in.u8() % kRingEntries;
  mdevmig_dma_desc d{};
  d.opcode = in.u8() % (MDEVMIG_DMA_OP_MAX + 2);
  d.flags = in.u8() & 3;
  uint8_t src = in.u8(), dst = in.u8(), len = in.u8();
  uint64_t raw = in.u64();
  d.src = select_value(src, raw);
  d.dst = select_value(dst, raw);
  d.len = select_value(len, raw);
  if (d.opcode == MDEVMIG_DMA_OP_FILL) {
    d.pattern = raw;
    d.src = 0;
  }
  d.cmpl = kLayout.cmpl(slot);
  d.user_data = slot;
  uint8_t buf[MDEVMIG_DESC_SIZE];
  mdevmig_desc_encode(buf, &d);
  dev.iommu().write(kLayout.ring() + uint64_t{slot} * MDEVMIG_DESC_SIZE, buf, sizeof(buf));
}

void run_to_idle(SimDevice& dev) {
  // Bounded: each step moves at most 64 KiB and a ring holds 15 descriptors.
  for (int i = 0; i < 100000 && mdevmig_model_run(dev.model(), 16); i++) {
  }
}

// Migrates src to dst (guest memory copied along), checking the round trip.
void migrate(SimDevice& src, SimDevice& dst) {
  static std::vector<uint8_t> s, again;
  src.save(s);
  dst.reset_all();
  dst.iommu() = src.iommu();
  auto r = dst.load(s, 1 + s.size() % 4093);
  if (r.err) fail(mdevmig_loader_reason_str(r.reason));
  dst.save(again);
  if (again != s) fail("save after load differs");
}

}  // namespace
}  // namespace mdevmig::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mdevmig::fuzz;
  Reader in(data, size);
  int cur = 0;
  restore(*device(0));
  unsigned migrations = 0;

  while (!in.empty()) {
    SimDevice& d = *device(cur);
    uint8_t buf[8];
    switch (in.u8() % kNumOps) {
      case kCfgWrite: {
        uint32_t off = in.u8(), len = 1 + in.u8() % 4, v = in.u32();
        mdevmig_put_le32(buf, v);
        int ret = mdevmig_model_cfg_write(d.model(), off, buf, len);
        if ((ret == 0) != (off + len <= MDEVMIG_CFG_SIZE)) fail("cfg write range check");
        break;
      }
      case kCfgRead: {
        uint32_t off = in.u8(), len = 1 + in.u8() % 4;
        int ret = mdevmig_model_cfg_read(d.model(), off, buf, len);
        if ((ret == 0) != (off + len <= MDEVMIG_CFG_SIZE)) fail("cfg read range check");
        break;
      }
      case kRegWrite: {
        uint8_t idx = in.u8() % (sizeof(kRegs) / sizeof(kRegs[0]));
        d.mmio_write32(kRegs[idx], in.u32());
        break;
      }
      case kMmio: {
        static constexpr uint32_t kLens[] = {1, 2, 4, 8};
        uint32_t off = in.u16() % (MDEVMIG_REGS_SIZE + 8), len = kLens[in.u8() % 4];
        bool write = in.u8() & 1;
        mdevmig_put_le64(buf, in.u64());
        int ret = write ? mdevmig_model_mmio_write(d.model(), off, buf, len)
                        : mdevmig_model_mmio_read(d.model(), off, buf, len);
        bool valid = off % len == 0 && off < MDEVMIG_REGS_SIZE;
        if ((ret == 0) != valid) fail("mmio access check");
        break;
      }
      case kRun: {
        unsigned steps = in.u8() % 32;
        int more = d.run(steps);
        if (more != 0 && more != 1) fail("run result");
        if (more != static_cast<int>(mdevmig_model_work_pending(d.model())))
          fail("run vs work_pending");
        break;
      }
      case kDesc:
        write_desc(d, in);
        break;
      case kDoorbell:
        d.mmio_write32(MDEVMIG_REG_RING_TAIL, in.u8());
        break;
      case kIommu: {
        uint8_t action = in.u8() % 3, n = in.u8();
        if (action == 0) d.iommu().fail_after(n);
        if (action == 1) d.iommu().unmap(kBuf);
        if (action == 2) d.iommu().map(kBuf, kBufSize);
        break;
      }
      case kSaveLoad: {
        if (migrations++ >= 4) break;  // keep executions fast
        SimDevice& dst = *device(1 - cur);
        d.iommu().clear_fail();
        migrate(d, dst);
        // Source and destination continue identically.
        static std::vector<uint8_t> s1, s2;
        run_to_idle(d);
        run_to_idle(dst);
        d.save(s1);
        dst.save(s2);
        if (s1 != s2) fail("source and destination diverged");
        cur = 1 - cur;
        break;
      }
    }
    d.msis.clear();
  }
  // However the program ended, the final state migrates cleanly.
  SimDevice& last = *device(cur);
  last.iommu().clear_fail();
  migrate(last, *device(1 - cur));
  restore(*device(1 - cur));
  restore(last);
  return 0;
}
