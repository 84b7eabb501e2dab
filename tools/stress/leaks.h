// What a migration round must not leave behind: mdev instances, file descriptors,
// child processes, and kernel log lines that mean a kernel bug.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "base/fd.h"
#include "base/result.h"

namespace mdevmig::stress {

/// Reads the kernel log (/dev/kmsg) from the moment it was opened on.
class KmsgWatcher {
 public:
  /// Opens /dev/kmsg positioned at its end. Without access (not root, no /dev/kmsg)
  /// the watcher reports nothing and `available()` is false.
  KmsgWatcher();
  [[nodiscard]] bool available() const { return fd_.valid(); }
  /// Kernel messages since the last call (the text after the record header).
  [[nodiscard]] std::vector<std::string> take();

 private:
  UniqueFd fd_;
};

/// True for kernel messages that mean a kernel bug (WARN, BUG, oops, lockups,
/// sanitizer reports), the same set the lab runner fails on.
[[nodiscard]] bool is_kernel_bug_line(const std::string& line);

/// Open file descriptors of this process.
[[nodiscard]] std::size_t count_open_fds();
/// Live (not yet reaped) child processes of this process.
[[nodiscard]] std::vector<pid_t> child_processes();

/// A baseline taken when a run starts, compared after every round.
class LeakCheck {
 public:
  /// `allowed_instances`: mdev UUIDs the run itself uses (they exist between rounds).
  explicit LeakCheck(std::set<std::string> allowed_instances);
  /// Problems found since the baseline, given the children that should be alive now
  /// and the number of fds the run legitimately holds beyond the baseline. Kernel log
  /// lines are consumed; matching `expected_kernel` ones are counted in `expected_seen`.
  [[nodiscard]] std::vector<std::string> check(const std::set<pid_t>& live_children, long extra_fds,
                                               const std::string& expected_kernel,
                                               uint64_t* expected_seen);

 private:
  KmsgWatcher kmsg_;  // first: its fd is part of the baseline
  std::set<std::string> baseline_instances_;
  std::size_t baseline_fds_;
};

}  // namespace mdevmig::stress
