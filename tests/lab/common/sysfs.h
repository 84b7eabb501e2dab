// Small helpers for lab tests: sysfs files, mdev instance lifecycle. The sysfs and mdev
// helpers are tools/mdev's (the one copy the tools use too); these are the test-side
// spellings of them.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "tools/mdev/mdev.h"

namespace mdevmig::lab {

// True inside the lab guest (tools/lab/lab.sh sets MDEVMIG_LAB=1).
bool in_lab();

// Reads a whole sysfs/proc file, without the trailing newline; nullopt if unreadable.
std::optional<std::string> read_file(const std::string& path);
// Writes `value` to a sysfs file in one write(); returns 0 or -errno.
int write_file(const std::string& path, const std::string& value);
// Names in a directory, sorted; empty if it does not exist.
using mdev::list_dir;

// The running kernel's release as major * 100 + minor (6.12 -> 612).
int kernel_release();

// A random RFC 4122 v4 UUID string.
using mdev::random_uuid;

// The mdevmig parents visible in /sys/class/mdev_bus (e.g. "mdevmig_sim0").
inline std::vector<std::string> mdevmig_parents() { return mdev::mdevmig_parents(); }
// sysfs dir of a type of a parent:
// /sys/class/mdev_bus/<parent>/mdev_supported_types/mdevmig-<type>.
inline std::string type_dir(const std::string& parent, const std::string& type) {
  return mdev::type_dir(parent, type);
}

}  // namespace mdevmig::lab

// Skips the test outside the lab (where it cannot run); inside, the skip fails the run.
#define MDEVMIG_REQUIRE_LAB()                                                          \
  do {                                                                                 \
    if (!::mdevmig::lab::in_lab()) GTEST_SKIP() << "needs the lab (tools/lab/lab.sh)"; \
  } while (0)
