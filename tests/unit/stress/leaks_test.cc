// is_kernel_bug_line: the lab verdict's patterns (tools/lab/kernel-reports.ere) as the
// in-lab checkers use them, on lines the kernels the lab boots print.
#include "tools/stress/leaks.h"

#include <gtest/gtest.h>

namespace mdevmig::stress {
namespace {

TEST(KernelBugLine, MatchesTheReportsOfWarnBugSlubKasanAndLockdep) {
  // Two of the lines are split for width. NOLINTBEGIN(bugprone-suspicious-missing-comma)
  for (const char* line : {
           "WARNING: CPU: 1 PID: 117 at drivers/vfio/vfio_main.c:1171 "
           "vfio_mig_get_next_state+0x24/0x70 [vfio]",
           "BUG: unable to handle page fault for address: ffffc90000a00000",
           "BUG kmalloc-64 (Tainted: G           O      ): Right Redzone overwritten",
           "BUG: KASAN: slab-out-of-bounds in mdevmig_log_read_and_clear+0x1a/0x2b [mdevmig]",
           "BUG: KFENCE: out-of-bounds write in lab_redzone_init+0x12/0x30 [lab_redzone]",
           "WARNING: possible circular locking dependency detected",
           "general protection fault, probably for non-canonical address 0xdead000000000100: 0000 "
           "[#1] PREEMPT SMP",
           "invalid opcode: 0000 [#1] PREEMPT SMP NOPTI",
           "Call Trace:",
           "INFO: task rmmod:412 blocked for more than 120 seconds.",
           "refcount_t: underflow; use-after-free.",
           "UBSAN: shift-out-of-bounds in kmod/dirty.c:88:12",
       })
    EXPECT_TRUE(is_kernel_bug_line(line)) << line;
  // NOLINTEND(bugprone-suspicious-missing-comma)
}

TEST(KernelBugLine, LeavesOrdinaryAndQuotingLinesAlone) {
  for (const char* line : {
           "mdevmig 2b4e9c4a-0d1e-4f6e-9a53-1f0c8a7d2e11: resume rejected: bad record",
           "lab-init: job starting",
           "the job printed WARNING: as part of its own output",
           "vfio_mdev 2b4e9c4a-0d1e-4f6e-9a53-1f0c8a7d2e11: Adding to iommu group 0",
           "",
       })
    EXPECT_FALSE(is_kernel_bug_line(line)) << line;
}

}  // namespace
}  // namespace mdevmig::stress
