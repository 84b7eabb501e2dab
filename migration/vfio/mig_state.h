// Names and numbers of the VFIO migration states (v2 enum and v1 region bits).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mdevmig::vfio {

/// The v2 device states, with the uAPI's numbers (enum vfio_device_mig_state).
/// PRE_COPY and PRE_COPY_P2P exist from Linux 6.2; the enum has them regardless.
enum class MigState : uint32_t {
  kError = 0,
  kStop = 1,
  kRunning = 2,
  kStopCopy = 3,
  kResuming = 4,
  kRunningP2P = 5,
  kPreCopy = 6,
  kPreCopyP2P = 7,
};

/// Number of v2 states. Code that tabulates per-state behaviour static_asserts on this,
/// so adding a state forces every table to be revisited.
inline constexpr std::size_t kMigStateCount = 8;

/// The uAPI name without prefix ("STOP_COPY"), or "INVALID(n)" for unknown values.
[[nodiscard]] std::string mig_state_name(MigState state);
/// Parses a name as printed by mig_state_name (case-insensitive).
[[nodiscard]] std::optional<MigState> parse_mig_state(std::string_view name);
/// Whether `raw` is one of the kMigStateCount values.
[[nodiscard]] constexpr bool mig_state_valid(uint32_t raw) { return raw < kMigStateCount; }

/// The VFIO_DEVICE_FEATURE_MIGRATION flags as "STOP_COPY|P2P|PRE_COPY" (unknown bits in
/// hex), or "none".
[[nodiscard]] std::string mig_flags_text(uint64_t flags);

/// The v1 migration-region device_state as a name: "STOP", "RUNNING", "PRE_COPY"
/// (SAVING|RUNNING), "STOP_COPY" (SAVING), "RESUMING", "ERROR" (SAVING|RESUMING) or
/// "INVALID(n)"; reserved bits 3..31 are ignored, as the v1 protocol requires.
[[nodiscard]] std::string v1_state_name(uint32_t device_state);

}  // namespace mdevmig::vfio
