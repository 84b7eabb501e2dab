#include "migration/vfio/mig_state.h"

#include <strings.h>
#include <array>
#include <cstdio>

#include "migration/vfio/uapi.h"

namespace mdevmig::vfio {
namespace {

// Indexed by state number; the static_asserts tie our numbers to the installed header.
constexpr std::array<std::string_view, kMigStateCount> kStateNames = {
    "ERROR", "STOP", "RUNNING", "STOP_COPY", "RESUMING", "RUNNING_P2P", "PRE_COPY", "PRE_COPY_P2P",
};

static_assert(static_cast<uint32_t>(MigState::kError) == VFIO_DEVICE_STATE_ERROR);
static_assert(static_cast<uint32_t>(MigState::kStop) == VFIO_DEVICE_STATE_STOP);
static_assert(static_cast<uint32_t>(MigState::kRunning) == VFIO_DEVICE_STATE_RUNNING);
static_assert(static_cast<uint32_t>(MigState::kStopCopy) == VFIO_DEVICE_STATE_STOP_COPY);
static_assert(static_cast<uint32_t>(MigState::kResuming) == VFIO_DEVICE_STATE_RESUMING);
static_assert(static_cast<uint32_t>(MigState::kRunningP2P) == VFIO_DEVICE_STATE_RUNNING_P2P);
static_assert(static_cast<uint32_t>(MigState::kPreCopyP2P) + 1 == kMigStateCount);

std::string invalid(uint64_t raw) { return "INVALID(" + std::to_string(raw) + ")"; }

}  // namespace

std::string mig_state_name(MigState state) {
  const auto raw = static_cast<uint32_t>(state);
  if (!mig_state_valid(raw)) return invalid(raw);
  return std::string(kStateNames[raw]);
}

std::optional<MigState> parse_mig_state(std::string_view name) {
  for (uint32_t i = 0; i < kMigStateCount; ++i) {
    const std::string_view candidate = kStateNames[i];
    if (candidate.size() == name.size() &&
        ::strncasecmp(candidate.data(), name.data(), name.size()) == 0) {
      return static_cast<MigState>(i);
    }
  }
  return std::nullopt;
}

std::string mig_flags_text(uint64_t flags) {
  struct Flag {
    uint64_t bit;
    const char* name;
  };
  static constexpr Flag kFlags[] = {
      {VFIO_MIGRATION_STOP_COPY, "STOP_COPY"},
      {VFIO_MIGRATION_P2P, "P2P"},
      {VFIO_MIGRATION_PRE_COPY, "PRE_COPY"},
  };
  std::string out;
  for (const Flag& f : kFlags) {
    if ((flags & f.bit) == 0) continue;
    if (!out.empty()) out += '|';
    out += f.name;
    flags &= ~f.bit;
  }
  if (flags != 0) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "0x%llx", static_cast<unsigned long long>(flags));
    if (!out.empty()) out += '|';
    out += buf;
  }
  return out.empty() ? "none" : out;
}

std::string v1_state_name(uint32_t device_state) {
  const uint32_t s = device_state & VFIO_DEVICE_STATE_MASK;
  switch (s) {
    case VFIO_DEVICE_STATE_V1_STOP:
      return "STOP";
    case VFIO_DEVICE_STATE_V1_RUNNING:
      return "RUNNING";
    case VFIO_DEVICE_STATE_V1_SAVING | VFIO_DEVICE_STATE_V1_RUNNING:
      return "PRE_COPY";
    case VFIO_DEVICE_STATE_V1_SAVING:
      return "STOP_COPY";
    case VFIO_DEVICE_STATE_V1_RESUMING:
      return "RESUMING";
    case VFIO_DEVICE_STATE_V1_SAVING | VFIO_DEVICE_STATE_V1_RESUMING:
      return "ERROR";
    default:
      return invalid(s);
  }
}

}  // namespace mdevmig::vfio
