#!/usr/bin/env bash
# Self-test of tools/lab/lab.sh: each bad outcome must fail the run with its reason,
# and a good job must pass.   selftest.sh WORKDIR
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../.." && pwd)
lab=$top/tools/lab/lab.sh
work=${1:?usage: selftest.sh WORKDIR}
mkdir -p "$work"
failures=0

# expect NAME WANT_RC_NONZERO(1|0) PATTERN -- lab args...
expect() {
  local name=$1 want_fail=$2 pattern=$3; shift 4
  local out rc
  out=$("$lab" --quiet --name "selftest-$name" "$@" 2>&1); rc=$?
  if { [ "$want_fail" = 1 ] && [ $rc -eq 0 ]; } || { [ "$want_fail" = 0 ] && [ $rc -ne 0 ]; } ||
     ! grep -qE "$pattern" <<<"$out"; then
    echo "selftest: $name: FAILED (rc=$rc), output was:"; echo "$out" | sed 's/^/    /'
    failures=$((failures + 1))
  else
    echo "selftest: $name: ok ($(tail -n1 <<<"$out"))"
  fi
}

# A test-only module that WARNs on load, built against the lab kernel's headers.
kver=$(for k in /boot/vmlinuz-*; do k=${k#/boot/vmlinuz-}; [ -d "/lib/modules/$k/kernel" ] && echo "$k"; done | sort -V | tail -n1)
mkdir -p "$work/warn_kmod"
cp "$here/warn_kmod/Kbuild" "$here/warn_kmod/lab_warn.c" "$work/warn_kmod/"
make -s -C "/lib/modules/$kver/build" M="$work/warn_kmod" modules >/dev/null 2>&1 ||
  { echo "selftest: cannot build the WARN module for $kver"; exit 1; }

expect pass 0 'lab: PASS' -- --timeout 120 -- true
expect exit1 1 'job exited 1' -- --timeout 120 -- bash -c 'exit 1'
expect warn 1 'kernel: WARNING:' -- --timeout 120 -- insmod "$work/warn_kmod/lab_warn.ko"
# Either hang verdict is right: the job's limit, or the boot's when a loaded machine
# boots slowly.
expect hang 1 'job killed at its time limit|did not finish within' -- --timeout 120 -- sleep 600
expect panic 1 'kernel: .*(Kernel panic|sysrq)' -- --timeout 120 -- bash -c 'echo c > /proc/sysrq-trigger; sleep 60'

echo "$((5 - failures)) passed, $failures failed"
[ $failures -eq 0 ]
