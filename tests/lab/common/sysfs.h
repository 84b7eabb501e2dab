// Small helpers for lab tests: sysfs files, mdev instance lifecycle.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace mdevmig::lab {

// True inside the lab guest (tools/lab/lab.sh sets MDEVMIG_LAB=1).
bool in_lab();

// Reads a whole sysfs/proc file, without the trailing newline; nullopt if unreadable.
std::optional<std::string> read_file(const std::string& path);
// Writes `value` to a sysfs file in one write(); returns 0 or -errno.
int write_file(const std::string& path, const std::string& value);
// Names in a directory, sorted; empty if it does not exist.
std::vector<std::string> list_dir(const std::string& path);

// The running kernel's release as major * 100 + minor (6.12 -> 612).
int kernel_release();

// A random RFC 4122 v4 UUID string.
std::string random_uuid();

// The mdevmig parents visible in /sys/class/mdev_bus (e.g. "mdevmig_sim0").
std::vector<std::string> mdevmig_parents();
// sysfs dir of a type of a parent: /sys/class/mdev_bus/<parent>/mdev_supported_types/mdevmig-<type>.
std::string type_dir(const std::string& parent, const std::string& type);

}  // namespace mdevmig::lab

// Skips the test outside the lab (where it cannot run); inside, the skip fails the run.
#define MDEVMIG_REQUIRE_LAB()                                                  \
  do {                                                                         \
    if (!::mdevmig::lab::in_lab()) GTEST_SKIP() << "needs the lab (tools/lab/lab.sh)"; \
  } while (0)
