// libFuzzer target: the state stream loader on hostile input.
//
// Checked beyond "no crash, no sanitizer report":
//   - the outcome does not depend on how the input is segmented (whole vs. chunks);
//   - a failed load leaves the model in its reset state;
//   - an accepted stream re-saves byte-identically, and the engine can run from the
//     loaded state (in-flight work, with nothing mapped in the IOMMU) without tripping
//     the simulator's checks.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "sim.h"

namespace {

using mdevmig::vendor_sim::SimDevice;

constexpr uint64_t kMemSize = 16 << 10;  // seeds are generated for this geometry
constexpr uint32_t kTypeId = 3;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "vendor_loader_fuzz: invariant broken: %s\n", what);
  std::abort();
}

std::vector<uint8_t> config_space(SimDevice& d) {
  std::vector<uint8_t> b(MDEVMIG_CFG_SIZE);
  if (mdevmig_model_cfg_read(d.model(), 0, b.data(), MDEVMIG_CFG_SIZE)) fail("cfg read");
  return b;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> in(data, size);
  SimDevice whole(kMemSize, kTypeId);
  SimDevice chunked(kMemSize, kTypeId);
  auto a = whole.load(in);
  auto b = chunked.load(in, 1 + size % 61);
  if (a.err != b.err || a.reason != b.reason) fail("result depends on segmentation");
  if (std::memcmp(whole.mem(), chunked.mem(), kMemSize)) fail("memory depends on segmentation");

  if (a.err) {
    SimDevice fresh(kMemSize, kTypeId);
    if (config_space(whole) != config_space(fresh)) fail("config space not reset after failure");
    if (whole.model()->eng.active || whole.intx) fail("engine or INTx not reset after failure");
    for (uint32_t off = 0; off < 0x200; off += 4)
      if (whole.mmio_read32(off) != fresh.mmio_read32(off))
        fail("registers not reset after failure");
    return 0;
  }
  auto s = whole.save();
  if (chunked.save() != s) fail("state depends on segmentation");
  SimDevice again(kMemSize, kTypeId);
  if (again.load(s).err || again.save() != s) fail("accepted stream does not round-trip");
  // Whatever was accepted is a state the engine can run from.
  for (int i = 0; i < 64 && mdevmig_model_run(whole.model(), 64); i++) {
  }
  return 0;
}
