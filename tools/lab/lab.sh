#!/usr/bin/env bash
# The lab: run a job inside a QEMU TCG guest that boots the installed Debian kernel.
#
#   tools/lab/lab.sh [options] -- COMMAND [ARGS...]
#
# The guest sees the host's root read-only (9p + tmpfs overlay), so COMMAND is any host
# program or script; it runs as root in the current directory with MDEVMIG_LAB=1,
# MDEVMIG_KO (path of mdevmig.ko for the guest kernel, if built) and MDEVMIG_LAB_OUT
# (a writable results folder that survives the boot) in its environment.
#
# Exit status: the job's, or 1 with a one-line "lab: FAIL <name>: <reason>" when the
# kernel reported anything (WARN, BUG, a SLUB/KFENCE/KASAN/UBSAN report, lockdep, a hung
# task, a lockup or stall, kmemleak, an oops or panic), hung, lost part of its log, or no
# exit code came back.
#
# Every boot checks kernel memory: slub_debug=FZPU (red zones, poisoning, consistency
# checks on every slab), init_on_free=1, and KFENCE sampling where the kernel has it. The
# whole kernel log is kept in the results folder (kmsg.txt, read from /dev/kmsg as the
# job runs; log_buf_len is large too) and the verdict reads that, not the console, which
# `quiet` limits to errors.
#
# Options:
#   --name NAME        label of this test group (default: job)
#   --timeout SECONDS  limit for the whole boot (default 600)
#   --kmod-dir DIR     where kmod/build.sh put its output (DIR/<kver>/mdevmig.ko)
#   --out DIR          results folder (default: $MDEVMIG_LAB_DIR/runs/NAME-<time>)
#   --mem SIZE         guest RAM (default 2G)
#   --ivshmem SIZE     give the guest an ivshmem-plain PCI function with SIZE of shared
#                      memory (a PCI parent for mdevmig); repeatable
#   --kver KVER        kernel release to boot (default: newest installed with modules)
#   --profile P        bookworm (default: this host's root, kernel and QEMU), or trixie /
#                      sid: a root built by tools/lab/mkroot.sh, booted with its own
#                      kernel; the project is shared in at its host path; or debug: this
#                      host's root booting the debug kernel tools/lab/mkdebugkernel.sh
#                      built (KASAN, lockdep, ...; its modules are shared in). Also
#                      $MDEVMIG_LAB_PROFILE.
#   --net PORT:PEERPORT
#                      a virtio-net NIC on a network that exists only between two lab
#                      guests: a QEMU UDP socket netdev from 127.0.0.1:PORT to the other
#                      guest's 127.0.0.1:PEERPORT (connectionless, so either guest may
#                      boot first or boot again; tools/lab/pair.sh starts both)
#   --addr CIDR        the NIC's address inside the guest (192.0.2.0/24), set by init
#   --share DIR        a host folder shared read-write at /share (two guests rendezvous
#                      there: no caching, so each sees the other's files)
#   --env NAME=VALUE   exported to the job; repeatable
#   --kill-on FILE     power the guest off the hard way (SIGKILL to its QEMU: a host that
#                      dies, with no shutdown and no goodbye on the network) when FILE
#                      appears on this host. The verdict then reads the kernel log up to
#                      that moment: a report fails the run, otherwise it passes without
#                      an exit code (the job asked for its own end)
#   --qemu BIN         the QEMU that runs the guest (default: qemu-system-x86_64 on the
#                      PATH; a guest that runs KVM wants tools/lab/qemu.sh's build)
#   --tcg-thread MODE  multi (default) or single: TCG runs the guest's CPUs in one
#                      thread, switching between them (how tools/lab/qemu.sh's fix was
#                      found: a switch is what makes QEMU deliver an interrupt twice; a
#                      lab that runs KVM guests wants it, see tests/lab/guest/guest.sh)
#   --quiet            print only the verdict line
set -euo pipefail

name=job timeout=600 kmod_dir= out= mem=2G kver= quiet=0 profile=${MDEVMIG_LAB_PROFILE:-bookworm}
ivshmem=() net= addr= share= jobenv=() kill_on= qemu=qemu-system-x86_64 tcg_thread=multi
while [ $# -gt 0 ]; do
  case "$1" in
    --name) name=$2; shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    --kmod-dir) kmod_dir=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --mem) mem=$2; shift 2 ;;
    --ivshmem) ivshmem+=("$2"); shift 2 ;;
    --kver) kver=$2; shift 2 ;;
    --profile) profile=$2; shift 2 ;;
    --net) net=$2; shift 2 ;;
    --addr) addr=$2; shift 2 ;;
    --share) share=$2; shift 2 ;;
    --env) jobenv+=("$2"); shift 2 ;;
    --kill-on) kill_on=$2; shift 2 ;;
    --qemu) qemu=$2; shift 2 ;;
    --tcg-thread) tcg_thread=$2; shift 2 ;;
    --quiet) quiet=1; shift ;;
    --) shift; break ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "lab: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ $# -gt 0 ] || { echo "lab: no command given (see --help)" >&2; exit 2; }
case "$net" in
  ''|[0-9]*:[0-9]*) ;;
  *) echo "lab: --net wants PORT:PEERPORT, got '$net'" >&2; exit 2 ;;
esac
[ -z "$addr" ] || [ -n "$net" ] || { echo "lab: --addr needs --net" >&2; exit 2; }
case "$tcg_thread" in
  multi|single) ;;
  *) echo "lab: --tcg-thread wants multi or single, got '$tcg_thread'" >&2; exit 2 ;;
esac
for e in "${jobenv[@]}"; do
  [[ $e =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || { echo "lab: --env wants NAME=VALUE, got '$e'" >&2; exit 2; }
done

here=$(cd "$(dirname "$0")" && pwd)
labdir=${MDEVMIG_LAB_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mdevmig-lab}
mkdir -p "$labdir"

fail() { echo "lab: FAIL $name: $*"; exit 1; }

# --- the root the guest runs: this host's, or a profile's ----------------------------
project=$(cd "$here/../.." && pwd)
# kroot: where the kernel and its modules are (boot/, lib/modules/).
case "$profile" in
  bookworm) sysroot= kroot= ;;
  trixie|sid) sysroot=$("$here/mkroot.sh" "$profile") || fail "cannot build the $profile root"; kroot=$sysroot ;;
  debug) sysroot=
         kroot=$("$here/mkdebugkernel.sh" --path) ||
           fail "no debug kernel: build it once with tools/lab/mkdebugkernel.sh (long, see BENCHMARKS.md)" ;;
  *) echo "lab: unknown profile $profile" >&2; exit 2 ;;
esac

# --- the kernel: newest release that has both an image and its modules --------------
if [ -z "$kver" ]; then
  kver=$(for k in "$kroot"/boot/vmlinuz-*; do k=${k##*/vmlinuz-}; [ -d "$kroot/lib/modules/$k/kernel" ] && echo "$k"; done | sort -V | tail -n1)
fi
[ -n "$kver" ] && [ -r "$kroot/boot/vmlinuz-$kver" ] || fail "no bootable kernel in $kroot/boot (run scripts/setup.sh)"

# --- the initramfs: busybox + virtio/9p/overlay modules, cached per kernel and init ---
initmods="virtio_pci 9pnet_virtio 9p overlay virtio_net"
stamp=$( (echo "$profile $kver $initmods"; cat "$here/init.sh") | sha1sum | cut -c1-12)
initrd=$labdir/initramfs-$kver-$stamp.cpio.gz
if [ ! -s "$initrd" ]; then
  "$here/initramfs.sh" "$initrd" "$sysroot/bin/busybox" "$kroot" "$kver" "$here/init.sh" "$initmods" ||
    fail "cannot build the initramfs"
fi

# --- the run ---------------------------------------------------------------------------
[ -n "$out" ] || out=$labdir/runs/$name-$(date +%Y%m%d-%H%M%S)-$$
mkdir -p "$out"
out=$(cd "$out" && pwd)
rm -f "$out/job.rc" "$out/dmesg.txt" "$out/kmsg.txt" "$out/qemu.pid" "$out/killed"

ko=
if [ -n "$kmod_dir" ]; then
  ko=$(cd "$kmod_dir" 2>/dev/null && pwd)/$kver/mdevmig.ko
  [ -f "$ko" ] || fail "mdevmig.ko for $kver not built in $kmod_dir (cmake --build <dir> --target kmod)"
fi
{
  echo '#!/bin/bash'
  printf 'cd %q || exit 97\n' "$PWD"
  printf 'export MDEVMIG_LAB_OUT=/out MDEVMIG_KO=%q MDEVMIG_LAB_NAME=%q\n' "$ko" "$name"
  [ -z "$share" ] || echo 'export MDEVMIG_LAB_SHARE=/share'
  for e in "${jobenv[@]}"; do printf 'export %s=%q\n' "${e%%=*}" "${e#*=}"; done
  printf 'exec'; printf ' %q' "$@"; echo
} > "$out/job.sh"

# The job's own limit leaves the boot and shutdown a quarter of the boot's limit
# (30 s to 120 s): boots take ~6 s on an idle machine, 25 s and more on a loaded one.
margin=$((timeout / 4)); margin=$((margin < 30 ? 30 : margin > 120 ? 120 : margin))
job_limit=$((timeout > 2 * margin ? timeout - margin : timeout / 2))
devs=()
i=0
for sz in "${ivshmem[@]}"; do
  devs+=(-object "memory-backend-ram,id=ivmem$i,size=$sz,share=on" -device "ivshmem-plain,memdev=ivmem$i")
  i=$((i + 1))
done

projdev=()
if [ -n "$net" ]; then
  # Only the two QEMU processes are on this network: no host interface, no route out.
  host=${addr%%/*}; host=${host##*.}
  mac=$(printf '52:54:00:c0:02:%02x' "${host:-1}")
  devs+=(-netdev "socket,id=lan,localaddr=127.0.0.1:${net%%:*},udp=127.0.0.1:${net#*:}"
         -device "virtio-net-pci,netdev=lan,mac=$mac")
fi
if [ -n "$share" ]; then
  share=$(cd "$share" && pwd)
  devs+=(-fsdev "local,id=share,path=$share,security_model=none,multidevs=remap"
         -device virtio-9p-pci,fsdev=share,mount_tag=share)
fi
# A kernel from outside the guest's root brings its modules as a share, mounted by
# init.sh at /lib/modules/KVER.
if [ "$kroot" != "$sysroot" ]; then
  projdev+=(-fsdev "local,id=kmods,path=$kroot/lib/modules/$kver,security_model=none,readonly=on,multidevs=remap"
            -device virtio-9p-pci,fsdev=kmods,mount_tag=kmodules)
fi
if [ -n "$sysroot" ]; then
  projdev+=(-fsdev "local,id=proj,path=$project,security_model=none,readonly=on,multidevs=remap"
           -device virtio-9p-pci,fsdev=proj,mount_tag=project)
fi

# The kernel's command line. Besides the console and the job's limit:
# - memory checking: slub_debug=FZPU (consistency checks, red zones, poisoning and owner
#   tracking on every slab cache: SLUB reports an overrun, a use after free or a double
#   free as "BUG <cache> (...): ..."), init_on_free=1 (freed pages and objects are
#   cleared), and KFENCE's sampling every 10 ms where the kernel has KFENCE (Debian's
#   6.12 has, its 6.1 has not);
# - log_buf_len=16M: the ring holds a noisy job's log (the default 128 KiB wraps after a
#   few thousand lines), though the verdict reads the copy init.sh keeps (kmsg.txt);
# - watchdog_thresh and the RCU stall timeout three times their defaults (soft lockup
#   after 60 s, stall after 60 s): TCG on a loaded machine runs 10-25 times slower than
#   the hardware those defaults were set for, and only a real lockup should report;
# - quiet keeps the console to errors (a serial console under TCG is slow): warnings do
#   not reach console.log, so the verdict reads the whole log instead;
# - no_timer_check: at boot the kernel counts PIT ticks for a fixed number of TSC cycles
#   to see whether the timer reaches the IO-APIC. A TCG vCPU starved by a loaded host
#   takes fewer ticks than that, and the kernel then falls back to other timer routings:
#   it panicked ("IO-APIC + timer doesn't work!") or hung silently (seen in CI-like runs
#   at load 20; reproduced by stopping QEMU for 38 ms of every 40 ms during boot). QEMU's
#   PIT is always wired to the IO-APIC, so the check only ever misleads here.
kconfig=$kroot/boot/config-$kver
kopt() { [ ! -r "$kconfig" ] || grep -q "^$1=y" "$kconfig"; }
kargs="console=ttyS0 panic=-1 oops=panic quiet log_buf_len=16M no_timer_check"
kargs+=" watchdog_thresh=30 rcupdate.rcu_cpu_stall_timeout=60"
! kopt CONFIG_SLUB_DEBUG || kargs+=" slub_debug=FZPU"
kargs+=" init_on_free=1"
[ ! -r "$kconfig" ] || ! kopt CONFIG_KFENCE || kargs+=" kfence.sample_interval=10"
# KASAN kernels (the debug profile) boot with 4-level paging: on 6.1 with 5-level paging
# (QEMU's -cpu max has LA57), identify_cpu() clears the boot CPU's feature bits for a
# moment, KASAN's shadow bounds follow pgtable_l5_enabled() and shrink to 47 bits, and an
# interrupt in that window reports its own irq_desc lock as a wild-memory-access (seen in
# 2 of 16 boots). With 4-level paging every kernel address is inside both bounds.
[ ! -r "$kconfig" ] || ! kopt CONFIG_KASAN || kargs+=" no5lvl"
kargs+=" labtimeout=$job_limit${sysroot:+ labproj=$project}${addr:+ labaddr=$addr}${share:+ labshare=1}"
[ "$kroot" = "$sysroot" ] || kargs+=" labkmods=$kver"

# Kernel reports (kernel-reports.ere, one extended regular expression per line, also
# compiled into the in-lab checkers of tools/qemu and the uAPI fuzzer), matched at the
# start of a kernel message so that a job's output or a message quoting such words does
# not count: WARN and BUG in all their forms, SLUB's reports ("BUG kmalloc-32 (Tainted:
# ...): Right Redzone overwritten", no colon after BUG), KASAN and KFENCE ("BUG: KASAN:
# ...", "BUG: KFENCE: ..."), UBSAN, lockdep ("WARNING: possible circular locking
# dependency detected", "WARNING: inconsistent lock state", "WARNING: suspicious RCU
# usage", ...), "BUG: sleeping function called from invalid context", hung tasks, soft
# and hard lockups, RCU stalls, kmemleak, oopses, panics and any other stack dump
# ("Call Trace:").
reports=$here/kernel-reports.ere

# The kernel's own messages in a /dev/kmsg copy ("prio,seq,usec,flags;text" lines, and
# " KEY=value" lines after them): records written by user space (facility 1 and up, as
# every write to /dev/kmsg is) are left out. A gap in the records' sequence numbers,
# counted from the boot's first record, is printed as a line "<lost> FIRST-LAST".
kernel_messages() {
  awk '
    /^ / { next }
    {
      semi = index($0, ";"); if (!semi) next
      split(substr($0, 1, semi - 1), h, ",")
      seq = h[2] + 0
      if (seq < want) next
      if (seq > want) print "<lost> " want "-" (seq - 1)
      want = seq + 1
      if (h[1] + 0 < 8) print substr($0, semi + 1)
    }' "$1"
}
# The first report in kernel messages (stdin). SLUB on 6.12 prints what it found
# ("[Right Redzone overwritten] ...") before its "BUG kmalloc-32 (...): Object corrupt"
# line: the reason then names both.
first_report() {
  grep -aE -m1 -A3 -f "$reports" | awk '
    NR == 1 { first = $0; next }
    first ~ /^\[/ && /^BUG [^ ]+ \(/ { print $0 " " first; named = 1; exit }
    END { if (!named) print first }'
}
# The kernel's messages on the console: the lines with a printk time.
console_messages() {
  tr -d '\r' < "$1" | sed -nE 's/^[^[]*\[ *[0-9]+\.[0-9]+\] //p'
}
start=$EPOCHREALTIME
boot() {
  timeout -s KILL "$timeout" "$qemu" -accel "tcg,thread=$tcg_thread" -M pc -cpu max -smp 2 -m "$mem" \
    -nographic -no-reboot -nodefaults -serial "file:$out/console.log" -monitor none \
    -kernel "$kroot/boot/vmlinuz-$kver" -initrd "$initrd" \
    -append "$kargs" \
    -fsdev "local,id=hr,path=${sysroot:-/},security_model=none,readonly=on,multidevs=remap" \
    -device virtio-9p-pci,fsdev=hr,mount_tag=hostroot \
    -fsdev "local,id=out,path=$out,security_model=none,multidevs=remap" \
    -device virtio-9p-pci,fsdev=out,mount_tag=out -pidfile "$out/qemu.pid" \
    "${projdev[@]}" "${devs[@]}" > "$out/qemu.log" 2>&1
}
# --kill-on: a watcher that kills the guest's QEMU once FILE exists (and QEMU runs).
killer=
if [ -n "$kill_on" ]; then
  (
    until [ -e "$kill_on" ] && [ -s "$out/qemu.pid" ]; do sleep 0.2; done
    : > "$out/killed"
    kill -KILL "$(cat "$out/qemu.pid")"
  ) &
  killer=$!
fi
# The job's output (the console between init's two marks) is shown as it comes, unless
# --quiet: tail follows the console until the boot's process ends.
# bstart: when the boot began (the verdict tells a kill before the limit from a timeout).
boot_and_show() {
  bstart=$EPOCHREALTIME
  if [ "$quiet" = 1 ]; then
    boot
    return
  fi
  local b f r
  : > "$out/console.log"
  boot &
  b=$!
  # A background job ignores SIGINT: pass an interrupt on to the guest's QEMU.
  trap '[ ! -s "$out/qemu.pid" ] || kill -KILL "$(cat "$out/qemu.pid")" 2>/dev/null; exit 130' INT TERM
  tail -n +1 -F -s 0.3 --pid="$b" "$out/console.log" 2>/dev/null |
    sed -u -n '/lab-init: job rc=/q; /lab-init: job starting/,$ { /lab-init: job starting/!p }' &
  f=$!
  wait "$b"
  r=$?
  wait "$f"
  trap - INT TERM
  return "$r"
}
set +e
# (stderr: bash's own "Killed" note when --kill-on ended the guest; QEMU's goes to qemu.log)
boot_and_show 2>/dev/null
qrc=$?
# The kernel's early boot under multi-threaded TCG now and then dies in its own code
# patching (an int3 Oops in a patched function) before any of ours has run. Such a crash,
# before the job started, gets one more boot; its console stays as console-boot1.log.
if ! grep -q 'lab-init: job starting' "$out/console.log" 2>/dev/null &&
   line=$(console_messages "$out/console.log" 2>/dev/null | grep -aE -m1 -f "$reports"); then
  echo "lab: $name: the kernel crashed while booting, before the job started ($(echo "$line" | tr -d '\r' | sed 's/^.*\] //')); booting again"
  mv "$out/console.log" "$out/console-boot1.log"
  [ ! -f "$out/kmsg.txt" ] || mv "$out/kmsg.txt" "$out/kmsg-boot1.txt"
  boot_and_show 2>/dev/null
  qrc=$?
fi
[ -z "$killer" ] || { kill "$killer" 2>/dev/null; wait "$killer" 2>/dev/null; }
set -e
secs=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')

# --- the verdict -------------------------------------------------------------------------
# The whole log first: the earliest report is the one to name. The console only when
# the copy did not reach init's end mark (a panic or hang cut it short): it cannot tell
# the kernel's messages from what user space writes to /dev/kmsg, the copy can.
complete=0
grep -q 'lab-init: kernel log end' "$out/kmsg.txt" 2>/dev/null && complete=1
if [ -f "$out/kmsg.txt" ]; then
  line=$(kernel_messages "$out/kmsg.txt" | grep -avE '^<lost> ' | first_report || true)
  [ -z "$line" ] || fail "kernel: $line (see $out/kmsg.txt)"
fi
if [ "$complete" = 0 ] && [ -f "$out/console.log" ]; then
  line=$(console_messages "$out/console.log" | first_report || true)
  [ -z "$line" ] || fail "kernel: $line (see $out/console.log)"
fi
if [ -f "$out/killed" ] && [ ! -f "$out/job.rc" ]; then
  echo "lab: PASS $name (killed on request after ${secs}s as $kill_on asked; no kernel report before, $profile, kernel $kver)"
  exit 0
fi
if [ "$qrc" -eq 137 ] && [ ! -f "$out/job.rc" ]; then
  # SIGKILL: from timeout(1) at the limit, or from someone else before it (the host's
  # OOM killer, most likely: a lab's RAM is a good part of a small host's).
  bsecs=$(awk -v a="$bstart" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", b - a }')
  [ "$bsecs" -lt $((timeout - 2)) ] &&
    fail "no exit code: the guest's QEMU was killed (SIGKILL) after ${bsecs}s, before the ${timeout}s limit (the host's OOM killer? see the host's kernel log and $out/qemu.log)"
  fail "no exit code: guest did not finish within ${timeout}s (hang; see $out/console.log)"
fi
[ -f "$out/job.rc" ] || fail "no exit code: guest stopped without one (qemu rc=$qrc; see $out/console.log, $out/qemu.log)"
rc=$(cat "$out/job.rc")
if [ "$rc" = 137 ]; then
  fail "job killed at its time limit (${job_limit}s; see $out/console.log)"
fi
if [ "$rc" != 0 ]; then
  echo "lab: FAIL $name: job exited $rc (${secs}s; see $out)"
  exit "$rc"
fi
# A pass needs the whole log: every record from the boot's first to init's end mark.
[ "$complete" = 1 ] || fail "kernel log incomplete: no end mark in $out/kmsg.txt"
lost=$(kernel_messages "$out/kmsg.txt" | grep -a -m1 '^<lost> ' || true)
[ -z "$lost" ] || fail "kernel log incomplete: records ${lost#<lost> } lost (see $out/kmsg.txt)"
echo "lab: PASS $name (${secs}s, $profile, kernel $kver)"
