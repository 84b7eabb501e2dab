// The hand-over from `mdevmig hold` to the mdevmig commands it runs: which instances
// are held open, and by which inherited fds.
//
// `hold` opens each instance once and keeps its VFIO group fd and device fd open and
// inheritable while its command runs, and says so in the environment:
//
//   MDEVMIG_HELD="UUID:GROUP_FD:DEVICE_FD[ UUID:GROUP_FD:DEVICE_FD...]"
//
// with canonical (lower-case) UUIDs. A DEVICE given by UUID that is listed there is not
// opened from scratch (which would reset it, and fail anyway: the group is taken): the
// command checks that GROUP_FD is that instance's group (/dev/vfio/N, by device number)
// and DEVICE_FD a VFIO device fd, then asks the kernel for the instance by name through
// GROUP_FD. The kernel finds the instance within that group or refuses, and since the
// holder keeps it open, this open neither resets it nor does the close forget its state.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/fd.h"
#include "base/result.h"
#include "migration/vfio/mdev.h"

namespace mdevmig::cli {

/// The environment variable `hold` sets for its command.
inline constexpr const char* kHeldEnv = "MDEVMIG_HELD";

/// One held instance.
struct HeldEntry {
  std::string uuid;    ///< canonical (lower case)
  int group_fd = -1;   ///< the instance's VFIO group, /dev/vfio/N
  int device_fd = -1;  ///< a VFIO device fd of the instance, kept open by the holder
  bool operator==(const HeldEntry&) const = default;
};

/// Parses the value of MDEVMIG_HELD (empty: nothing held). A usage error naming the
/// variable and the bad entry if an entry is not UUID:FD:FD, or a UUID appears twice.
[[nodiscard]] Result<std::vector<HeldEntry>> parse_held(std::string_view text);
/// The value of MDEVMIG_HELD for `entries` (parse_held's inverse).
[[nodiscard]] std::string format_held(const std::vector<HeldEntry>& entries);
/// The entry for `uuid` (any case), if held.
[[nodiscard]] std::optional<HeldEntry> find_held(const std::vector<HeldEntry>& entries,
                                                 std::string_view uuid);

/// MDEVMIG_HELD of this process, parsed (nothing when unset).
[[nodiscard]] Result<std::vector<HeldEntry>> held_from_env();

/// Where the checks of open_held() look; tests point them at temporary directories.
struct HeldPaths {
  vfio::VfioPaths vfio;
  std::string proc_self_fd = "/proc/self/fd";
  std::string proc_self_fdinfo = "/proc/self/fdinfo";
};

/// A new device fd of a held instance, from the kernel through the held group fd, after
/// checking that the group fd is the instance's group and the device fd a VFIO device
/// fd. EBADF, naming MDEVMIG_HELD and the fd, when a check fails: nothing is adopted.
[[nodiscard]] Result<UniqueFd> open_held(const HeldEntry& entry, const HeldPaths& paths = {});

/// What --help of hold says about the hand-over.
inline constexpr const char* kHeldHelp =
    "While CMD runs, the instances stay open in mdevmig hold, and CMD inherits their VFIO\n"
    "group and device fds, listed in the environment (UUIDs in lower case) as\n\n"
    "  MDEVMIG_HELD=\"UUID:GROUP_FD:DEVICE_FD ...\"\n\n"
    "An mdevmig command given a DEVICE by UUID (in any case) that is listed there uses the\n"
    "held instance instead of opening it: it checks that GROUP_FD is that instance's\n"
    "/dev/vfio group and DEVICE_FD a VFIO device fd, and gets the instance from the kernel\n"
    "through GROUP_FD. So `mdevmig restore UUID FILE` then `mdevmig save UUID FILE2` inside\n"
    "one hold saves what was restored. Other programs may use fd:DEVICE_FD.\n\n"
    "When CMD has ended, a device CMD left stopped or mid-migration (STOP, STOP_COPY,\n"
    "RESUMING...) is returned to RUNNING (reset if that fails), and mdevmig hold says so;\n"
    "then it closes the instances, which forget their state.\n\n"
    "SIGINT, SIGTERM and SIGHUP sent to mdevmig hold are passed on to CMD (a Ctrl-C on the\n"
    "terminal reaches CMD directly), and mdevmig hold waits for CMD to end.";

}  // namespace mdevmig::cli
