#!/usr/bin/env bash
# Self-test of tools/lab/lab.sh: each bad outcome must fail the run with its reason,
# and a good job must pass.   selftest.sh WORKDIR [PROFILE]
# PROFILE is the lab profile to boot (bookworm, the default; trixie/sid: the test modules
# are then built inside that profile's root, for its kernel; debug: for the debug kernel).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../.." && pwd)
lab=$top/tools/lab/lab.sh
work=${1:?usage: selftest.sh WORKDIR [PROFILE]}
profile=${2:-bookworm}
mkdir -p "$work"
work=$(cd "$work" && pwd)
failures=0 cases=0
# The runner's own logic (a job's exit code, time limits, kills on request, what is not a
# kernel report) is the same whatever kernel boots: it is tested on bookworm, the host's
# profile. Another profile's boot only checks that its kernel's reports (WARN, slab
# corruption, a report buried under output, a panic) are recognised; MDEVMIG_RUNNER_ALL=1
# runs every case there too.
all=$([ "$profile" = bookworm ] || [ "${MDEVMIG_RUNNER_ALL:-0}" = 1 ] && echo 1 || echo 0)

# expect NAME WANT_RC_NONZERO(1|0) PATTERN -- lab args...
expect() {
  local name=$1 want_fail=$2 pattern=$3; shift 4
  local out rc
  cases=$((cases + 1))
  out=$("$lab" --quiet --name "selftest-$name" --profile "$profile" "$@" 2>&1); rc=$?
  if { [ "$want_fail" = 1 ] && [ $rc -eq 0 ]; } || { [ "$want_fail" = 0 ] && [ $rc -ne 0 ]; } ||
     ! grep -qE "$pattern" <<<"$out"; then
    echo "selftest: $name: FAILED (rc=$rc), output was:"; echo "$out" | sed 's/^/    /'
    failures=$((failures + 1))
  else
    echo "selftest: $name: ok ($(tail -n1 <<<"$out"))"
  fi
}

# Test-only modules (kmods/), built against the lab kernel's headers: one WARNs on
# load, one overruns a kmalloc'ed object into its red zone, one WARNs and then prints
# 10,000 lines after it.
. "$top/scripts/lib.sh"
build_test_kmods "$here/kmods" "$work" "$profile" || { echo "selftest: no test modules"; exit 1; }

# Limits are generous: with the memory checks a boot takes 5-10 s more, and much more on
# a loaded machine (a guest still booting at 120 s has been seen). The hang test keeps a
# short limit, its own limit being what it tests.
[ "$all" = 0 ] || expect pass 0 'lab: PASS' -- --timeout 300 -- true
# What the job prints, and what user space writes to the kernel log, is not a kernel
# report, whatever its words.
[ "$all" = 0 ] || expect user-text 0 'lab: PASS' -- --timeout 300 -- bash -c \
  'echo "WARNING: CPU: 0 PID: 1 (job output)"; echo "<3>BUG: written to /dev/kmsg" > /dev/kmsg'
[ "$all" = 0 ] || expect exit1 1 'job exited 1' -- --timeout 300 -- bash -c 'exit 1'
expect warn 1 'kernel: WARNING:' -- --timeout 300 -- insmod "$work/kmods/lab_warn.ko"
# SLUB's report has no colon after BUG: "BUG kmalloc-32 (...): Right Redzone overwritten"
# on 6.1, "BUG kmalloc-32 (...): Object corrupt [Right Redzone overwritten] ..." in the
# reason on 6.12 (or KFENCE's report, when it sampled that object; KASAN's on the debug
# kernel).
expect redzone 1 'kernel: (BUG [^ ]+ \(.*\): .*Redzone overwritten|BUG: (KFENCE|KASAN): )' -- \
  --timeout 300 -- insmod "$work/kmods/lab_redzone.ko"
# A WARN followed by 10,000 lines (more than the default 128 KiB ring holds; `quiet`
# keeps warnings off the console) still fails the run.
expect buried-warn 1 'kernel: WARNING: .*lab_noise' -- --timeout 300 -- \
  insmod "$work/kmods/lab_noise.ko" lines=10000
# Either hang verdict is right: the job's limit (30 s of the 60), or the boot's when a
# loaded machine boots slowly. Each second of this limit is a second of every test run.
[ "$all" = 0 ] || expect hang 1 'job killed at its time limit|did not finish within' -- --timeout 60 -- sleep 600
# The panic ends the boot at once, so its limit only has to cover a slow boot (120 s was
# not enough at load average 20, the kernel still silent).
expect panic 1 'kernel: .*(Kernel panic|sysrq)' -- --timeout 300 -- bash -c 'echo c > /proc/sysrq-trigger; sleep 60'
# A guest killed on request (--kill-on, as pair.sh's hosts kill each other) passes
# without an exit code only if its kernel reported nothing before: a WARN still fails it.
# The job asks through its results folder, which is FILE's folder on the host.
[ "$all" = 0 ] || rm -f "$work/killed/kill"
[ "$all" = 0 ] || expect killed-after-warn 1 'kernel: WARNING:' -- --timeout 300 --out "$work/killed" --kill-on "$work/killed/kill" \
  -- bash -c "insmod $work/kmods/lab_warn.ko; sleep 5; touch /out/kill; sleep 600"

echo "$((cases - failures)) passed, $failures failed"
[ $failures -eq 0 ]
