// Replay: the expected state of a device, computed by the device model itself. A
// driver of a real device (a VM through qtest, a VFIO fd) replays what the device
// received (register writes, BAR2 writes, guest memory it wrote, doorbells) into the
// simulator, which runs vendor/ (the same C code as the module): what the simulator
// holds afterwards is what the real device must hold. No hand-written model of the
// device's semantics exists outside vendor/engine.c.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "base/result.h"
#include "sim.h"
#include "tools/guest/layout.h"
#include "tools/guest/ring.h"
#include "tools/guest/sim_port.h"

namespace mdevmig::guest {

class Replay {
 public:
  /// A device of `mem_size` bytes brought up as the driver being replayed brings up
  /// its own: guest memory of `layout` mapped, bus master on, interrupts unmasked, a
  /// ring of `entries` programmed (prefill as in Ring).
  Replay(uint64_t mem_size, Layout layout, uint32_t entries, bool prefill);
  /// A copy that continues independently (device state through the model's own
  /// save/load, guest memory byte for byte).
  Replay(const Replay& other);
  Replay& operator=(const Replay& other);

  /// Where replayed accesses go; run() executes what they queued.
  [[nodiscard]] DevicePort& port() { return port_; }
  [[nodiscard]] Ring& ring() { return ring_; }
  /// Runs the device until its queue is empty.
  void run() { dev_->run_to_idle(); }

  [[nodiscard]] uint64_t mem_size() const { return dev_->mem_size(); }
  [[nodiscard]] std::span<const uint8_t> mem() const { return {dev_->mem(), dev_->mem_size()}; }
  /// Guest memory [addr, addr + len), which must lie in the layout.
  [[nodiscard]] std::span<const uint8_t> guest(uint64_t addr, uint64_t len) const;
  /// A BAR0 register as the model holds it.
  [[nodiscard]] uint32_t reg(uint32_t off) const { return dev_->mmio_read32(off); }

  /// The whole state as bytes, for a replay in another process to continue from
  /// (restore()): the device model's own stream (its save), then the layout's guest memory.
  [[nodiscard]] std::vector<uint8_t> snapshot() const;
  /// Continues from `snapshot` of a replay of this one's geometry, whose ring had
  /// queued `queued` descriptors. Fails if the model refuses the stream.
  [[nodiscard]] Result<void> restore(std::span<const uint8_t> snapshot, uint64_t queued);

 private:
  Layout layout_;
  std::unique_ptr<vendor_sim::SimDevice> dev_;
  SimPort port_;
  Ring ring_;
};

}  // namespace mdevmig::guest
