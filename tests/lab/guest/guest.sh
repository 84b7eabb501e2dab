#!/usr/bin/env bash
# Lab group "guest": a real Linux guest drives an mdevmig device.
#   guest.sh WORKDIR PROFILE KMOD_DIR
#
# On the host: builds the guest driver (kmod/build.sh --guest), the dmaengine client
# kmods/lab_dmacopy.ko and bar2check (static) for the kernel the lab boots in PROFILE,
# and an initramfs for the guest with tools/lab/initramfs.sh (busybox, those three,
# guest-init.sh as /init). Then boots the lab. In the lab guest: loads the stack,
# creates an mdevmig instance and boots the same Debian kernel in a nested QEMU (TCG)
# with the instance assigned (-device vfio-pci,sysfsdev=..., with the migration
# property of the QEMU in use); the guest prints its verdict on its serial console
# (WORKDIR's lab run folder, guest-console.log), which decides this test.
#
# MDEVMIG_GUEST_KARGS: extra kernel arguments for the nested guest (e.g. initcall_debug,
# which makes the guest list its slowest initcalls).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../.." && pwd)
work=${1:?usage: guest.sh WORKDIR PROFILE KMOD_DIR}
profile=${2:?usage: guest.sh WORKDIR PROFILE KMOD_DIR}
kmod_dir=${3:?usage: guest.sh WORKDIR PROFILE KMOD_DIR}
initrd=$work/guest-initramfs.cpio.gz

if [ "${MDEVMIG_LAB:-}" = 1 ]; then
  # In the lab guest: the nested VM's host.
  fail() { echo "guest.sh: FAIL: $*"; exit 1; }
  modprobe -a vfio vfio_iommu_type1 mdev || fail "modprobe vfio vfio_iommu_type1 mdev"
  insmod "$MDEVMIG_KO" || fail "insmod $MDEVMIG_KO"
  parent=$(ls /sys/class/mdev_bus | head -n1)
  types=/sys/class/mdev_bus/$parent/mdev_supported_types
  uuid=$(cat /proc/sys/kernel/random/uuid)
  echo "$uuid" > "$types/mdevmig-quarter/create" || fail "cannot create an mdevmig-quarter instance on $parent"

  # QEMU up to 7.2 has the v1 migration region behind x-enable-migration, from 8.1 on
  # v2 behind enable-migration (as tools/qemu/process.cc picks it).
  qemu_version=$(qemu-system-x86_64 --version | head -n1)
  qmajor=$(sed -n 's/.*version \([0-9]*\)\..*/\1/p' <<<"$qemu_version")
  if [ "${qmajor:-0}" -lt 8 ]; then migprop=x-enable-migration=on; else migprop=enable-migration=on; fi
  # The guest kernel does as little as it can: one CPU, no crypto self-tests, no
  # speculation mitigations patched in, nothing printed but errors.
  kargs="console=ttyS0 quiet panic=-1 oops=panic cryptomgr.notests mitigations=off"
  kargs+=" ${MDEVMIG_GUEST_KARGS:-}"
  log=$MDEVMIG_LAB_OUT/guest-console.log
  limit=$(sed -n 's/.*labtimeout=\([0-9]*\).*/\1/p' /proc/cmdline)
  limit=$((limit > 120 ? limit - 60 : 60))
  echo "guest.sh: kernel $(uname -r), $qemu_version, instance $uuid ($migprop)"
  start=$(date +%s)
  timeout -s KILL "$limit" qemu-system-x86_64 -accel tcg -M pc -cpu max -smp 1 -m 256 \
    -nodefaults -no-user-config -display none -no-reboot -monitor none \
    -serial "file:$log" \
    -kernel "/boot/vmlinuz-$(uname -r)" -initrd "$initrd" -append "$kargs" \
    -device "vfio-pci,sysfsdev=/sys/bus/mdev/devices/$uuid,rombar=0,$migprop" \
    > "$MDEVMIG_LAB_OUT/guest-qemu.log" 2>&1
  qrc=$?
  secs=$(($(date +%s) - start))
  tr -d '\r' < "$log" | grep -aE '^guest' | sed 's/^/  /'
  echo "guest.sh: nested QEMU ran ${secs}s (exit $qrc)"
  [ "$qrc" != 137 ] || echo "guest.sh: nested QEMU killed at its limit (${limit}s)"
  [ ! -s "$MDEVMIG_LAB_OUT/guest-qemu.log" ] || sed 's/^/  qemu: /' "$MDEVMIG_LAB_OUT/guest-qemu.log"

  echo 1 > "/sys/bus/mdev/devices/$uuid/remove" || fail "cannot remove instance $uuid"
  rmmod mdevmig || fail "rmmod mdevmig"
  tr -d '\r' < "$log" | grep -aq '^guest: PASS' || fail "the guest did not pass (see $log)"
  echo "guest.sh: PASS"
  exit 0
fi

# --- on the host -----------------------------------------------------------------------
fail() { echo "guest.sh: FAIL: $*"; exit 1; }
mkdir -p "$work"
work=$(cd "$work" && pwd)
initrd=$work/guest-initramfs.cpio.gz
. "$top/scripts/lib.sh"
case "$profile" in
  bookworm) root= ;;
  trixie|sid) root=$(profile_root "$profile") || fail "no $profile root" ;;
  *) fail "profile $profile: the guest test runs on bookworm, trixie or sid" ;;
esac
# The kernel the lab boots (tools/lab/lab.sh picks the same one).
kver=$(for k in "$root"/boot/vmlinuz-*; do k=${k##*/vmlinuz-}; [ -d "$root/lib/modules/$k/kernel" ] && echo "$k"; done | sort -V | tail -n1)
[ -n "$kver" ] || fail "no kernel in $root/boot"

# The guest driver: its Kbuild wants the profile's toolchain, so a modern profile builds
# inside its root (which sees the project at its host path).
if [ -z "$root" ]; then
  "$top/kmod/build.sh" --guest "$work/kmod" "$kver" >/dev/null
else
  case "$work" in "$top"/*) ;; *) fail "$work is not inside $top" ;; esac
  profile_run "$root" "kmod/build.sh --guest $work/kmod $kver" >/dev/null
fi || fail "cannot build mdevmig_guest.ko for $kver"
build_test_kmods "$here/kmods" "$work" "$profile" || fail "cannot build lab_dmacopy.ko for $kver"
cc -static -O2 -Wall -Wextra -Werror -o "$work/bar2check" "$here/bar2check.c" || fail "cannot build bar2check"

"$top/tools/lab/initramfs.sh" "$initrd" "$root/bin/busybox" "$root" "$kver" "$here/guest-init.sh" "" \
  "$work/kmod/$kver/mdevmig_guest.ko=/mdevmig_guest.ko" \
  "$work/kmods/lab_dmacopy.ko=/lab_dmacopy.ko" \
  "$work/bar2check=/bar2check" \
  "$top/tools/lab/kernel-reports.ere=/kernel-reports.ere" || fail "cannot build the guest's initramfs"

exec "$top/tools/lab/lab.sh" --name lab_guest --timeout "${MDEVMIG_GUEST_TIMEOUT:-2400}" --profile "$profile" \
  --kmod-dir "$kmod_dir" ${MDEVMIG_GUEST_KARGS:+--env "MDEVMIG_GUEST_KARGS=$MDEVMIG_GUEST_KARGS"} \
  -- "$0" "$work" "$profile" "$kmod_dir"
