// Checking a device against its replay (replay.h): what the model holds after the same
// accesses is what the device must hold. Used by every driver that verifies a real
// device (the QEMU harness through qtest, `mdevmig stress --mode local` through VFIO).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "tools/guest/device_port.h"
#include "tools/guest/replay.h"

namespace mdevmig::guest {

/// The device's BAR0 registers behind `port` against the model's: identity, control,
/// the interrupt mask, the ring (base, size, head, tail), SEQ, ERR_DESC, the scratch
/// registers; ERR_DMA and ERR_RING must be 0. One line per register that differs.
[[nodiscard]] Result<std::vector<std::string>> compare_registers(DevicePort& port,
                                                                 const Replay& model);

/// "WHAT: N bytes differ, first at ADDR (got 0x.., want 0x..)", or empty if `got` and
/// `want` are equal; `base`: the address of their first byte.
[[nodiscard]] std::string describe_diff(const std::string& what, uint64_t base,
                                        std::span<const uint8_t> got,
                                        std::span<const uint8_t> want);

/// "0x1f".
[[nodiscard]] std::string hex(uint64_t v);

}  // namespace mdevmig::guest
