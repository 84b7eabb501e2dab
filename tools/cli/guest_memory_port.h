// The tool's guest memory (migration's GuestMemory) as an mdevmig device sees it,
// through tools/guest's VFIO backend; what the CPU writes there (ring, completion
// records) is marked dirty for the pre-copy of guest memory. The workloads of
// `mdevmig migrate` and `mdevmig stress --mode local` drive their rings through it.
#pragma once

#include "migration/engine/session.h"
#include "migration/vfio/device.h"
#include "tools/guest/vfio_port.h"

namespace mdevmig::cli {

class GuestMemoryPort final : public guest::VfioPort {
 public:
  GuestMemoryPort(const vfio::Device& dev, engine::GuestMemory& mem)
      : VfioPort(dev, {reinterpret_cast<uint8_t*>(mem.data()), mem.size()}, mem.iova()),
        mem_(mem) {}
  Result<void> mem_write(uint64_t addr, std::span<const uint8_t> data) override {
    MDEVMIG_TRY(VfioPort::mem_write(addr, data));
    mem_.mark_cpu_dirty(addr - mem_.iova(), data.size());
    return ok();
  }

 private:
  engine::GuestMemory& mem_;
};

}  // namespace mdevmig::cli
