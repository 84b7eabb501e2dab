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
# kernel oopsed, panicked, hung, printed a WARN/BUG/... line, or no exit code came back.
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
#                      kernel; the project is shared in at its host path. Also
#                      $MDEVMIG_LAB_PROFILE.
#   --quiet            print only the verdict line
set -euo pipefail

name=job timeout=600 kmod_dir= out= mem=2G kver= quiet=0 profile=${MDEVMIG_LAB_PROFILE:-bookworm}
ivshmem=()
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
    --quiet) quiet=1; shift ;;
    --) shift; break ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "lab: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ $# -gt 0 ] || { echo "lab: no command given (see --help)" >&2; exit 2; }

here=$(cd "$(dirname "$0")" && pwd)
labdir=${MDEVMIG_LAB_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mdevmig-lab}
mkdir -p "$labdir"

fail() { echo "lab: FAIL $name: $*"; exit 1; }

# --- the root the guest runs: this host's, or a profile's ----------------------------
project=$(cd "$here/../.." && pwd)
case "$profile" in
  bookworm) sysroot= ;;
  trixie|sid) sysroot=$("$here/mkroot.sh" "$profile") || fail "cannot build the $profile root" ;;
  *) echo "lab: unknown profile $profile" >&2; exit 2 ;;
esac

# --- the kernel: newest release that has both an image and its modules --------------
if [ -z "$kver" ]; then
  kver=$(for k in "$sysroot"/boot/vmlinuz-*; do k=${k##*/vmlinuz-}; [ -d "$sysroot/lib/modules/$k/kernel" ] && echo "$k"; done | sort -V | tail -n1)
fi
[ -n "$kver" ] && [ -r "$sysroot/boot/vmlinuz-$kver" ] || fail "no bootable kernel in $sysroot/boot (run scripts/setup.sh)"

# --- the initramfs: busybox + virtio/9p/overlay modules, cached per kernel and init ---
stamp=$( (echo "$profile $kver"; cat "$here/init.sh") | sha1sum | cut -c1-12)
initrd=$labdir/initramfs-$kver-$stamp.cpio.gz
if [ ! -s "$initrd" ]; then
  root=$(mktemp -d "$labdir/initramfs.XXXXXX")
  trap 'rm -rf "$root"' EXIT
  mkdir -p "$root"/{bin,proc,sys,dev,lib/modules}
  cp "$sysroot/bin/busybox" "$root/bin/busybox"
  # Modules are copied uncompressed (Debian 6.12+ ships .ko.xz; busybox loads .ko).
  for m in virtio_pci 9pnet_virtio 9p overlay; do
    modprobe ${sysroot:+-d "$sysroot"} -S "$kver" --show-depends "$m" | awk '$1 == "insmod" { print $2 }' |
    while read -r ko; do
      rel=${ko#"$sysroot"}
      mkdir -p "$root$(dirname "$rel")"
      case "$ko" in
        *.xz) xz -dc "$ko" > "$root${rel%.xz}" ;;
        *.zst) zstd -qdc "$ko" > "$root${rel%.zst}" ;;
        *) cp "$ko" "$root$rel" ;;
      esac
    done
  done
  cp "$sysroot/lib/modules/$kver/modules.order" "$sysroot/lib/modules/$kver/modules.builtin"* "$root/lib/modules/$kver/" 2>/dev/null || true
  depmod -b "$root" "$kver"
  install -m 755 "$here/init.sh" "$root/init"
  (cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$initrd.tmp"
  mv "$initrd.tmp" "$initrd"
  rm -rf "$root"; trap - EXIT
fi

# --- the run ---------------------------------------------------------------------------
[ -n "$out" ] || out=$labdir/runs/$name-$(date +%Y%m%d-%H%M%S)-$$
mkdir -p "$out"
out=$(cd "$out" && pwd)
rm -f "$out/job.rc" "$out/dmesg.txt"

ko=
if [ -n "$kmod_dir" ]; then
  ko=$(cd "$kmod_dir" 2>/dev/null && pwd)/$kver/mdevmig.ko
  [ -f "$ko" ] || fail "mdevmig.ko for $kver not built in $kmod_dir (cmake --build <dir> --target kmod)"
fi
{
  echo '#!/bin/bash'
  printf 'cd %q || exit 97\n' "$PWD"
  printf 'export MDEVMIG_LAB_OUT=/out MDEVMIG_KO=%q MDEVMIG_LAB_NAME=%q\n' "$ko" "$name"
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
if [ -n "$sysroot" ]; then
  projdev=(-fsdev "local,id=proj,path=$project,security_model=none,readonly=on,multidevs=remap"
           -device virtio-9p-pci,fsdev=proj,mount_tag=project)
fi

bad='(WARNING:|BUG:|kernel BUG|general protection|list_del corruption|list_add corruption|refcount_t|Oops|Kernel panic|UBSAN:|KASAN:|blocked for more than|stack-protector|Call Trace:)'
start=$EPOCHREALTIME
boot() {
  timeout -s KILL "$timeout" qemu-system-x86_64 -accel tcg -M pc -cpu max -smp 2 -m "$mem" \
    -nographic -no-reboot -nodefaults -serial "file:$out/console.log" -monitor none \
    -kernel "$sysroot/boot/vmlinuz-$kver" -initrd "$initrd" \
    -append "console=ttyS0 panic=-1 oops=panic quiet labtimeout=$job_limit${sysroot:+ labproj=$project}" \
    -fsdev "local,id=hr,path=${sysroot:-/},security_model=none,readonly=on,multidevs=remap" \
    -device virtio-9p-pci,fsdev=hr,mount_tag=hostroot \
    -fsdev "local,id=out,path=$out,security_model=none,multidevs=remap" \
    -device virtio-9p-pci,fsdev=out,mount_tag=out \
    "${projdev[@]}" "${devs[@]}" > "$out/qemu.log" 2>&1
}
set +e
boot
qrc=$?
# The kernel's early boot under multi-threaded TCG now and then dies in its own code
# patching (an int3 Oops in a patched function) before any of ours has run. Such a crash,
# before the job started, gets one more boot; its console stays as console-boot1.log.
if ! grep -q 'lab-init: job starting' "$out/console.log" 2>/dev/null &&
   line=$(grep -aE -m1 "$bad" "$out/console.log" 2>/dev/null); then
  echo "lab: $name: the kernel crashed while booting, before the job started ($(echo "$line" | tr -d '\r' | sed 's/^.*\] //')); booting again"
  mv "$out/console.log" "$out/console-boot1.log"
  boot
  qrc=$?
fi
set -e
secs=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')

# --- the verdict -------------------------------------------------------------------------
[ "$quiet" = 1 ] || { [ -s "$out/console.log" ] && sed -n '/lab-init: job starting/,/lab-init: job rc=/p' "$out/console.log" | sed '1d;$d'; }
for f in "$out/console.log" "$out/dmesg.txt"; do
  [ -f "$f" ] || continue
  line=$(grep -aE -m1 "$bad" "$f" || true)
  [ -z "$line" ] || fail "kernel: $(echo "$line" | tr -d '\r' | sed 's/^\[ *[0-9.]*\] //') (see $out/$(basename "$f"))"
done
if [ "$qrc" -eq 137 ] && [ ! -f "$out/job.rc" ]; then
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
echo "lab: PASS $name (${secs}s, $profile, kernel $kver)"
