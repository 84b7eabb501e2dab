#!/usr/bin/env bash
# Lab test: a PCI parent removed while something still holds one of its mdev types.
#   typeref.sh WORKDIR PROFILE KMOD_DIR
# The mdev core's type release reads the type's parent pointer, which lies in the
# driver's parent memory, and the driver has no hook into it. A test module
# (kmods/lab_typeref.c) holds a type; the ivshmem function is unbound from mdevmig (its
# parent goes), then the module is unloaded and the type released. The driver must have
# kept that memory (and said so in the log): freed, the release reads poison and oopses.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../.." && pwd)
work=${1:?usage: typeref.sh WORKDIR PROFILE KMOD_DIR}
profile=${2:?usage: typeref.sh WORKDIR PROFILE KMOD_DIR}
kmod_dir=${3:?usage: typeref.sh WORKDIR PROFILE KMOD_DIR}

if [ "${MDEVMIG_LAB:-}" = 1 ]; then
  # In the lab guest.
  set -e
  fail() { echo "typeref: FAIL: $*"; exit 1; }
  modprobe -a vfio vfio_iommu_type1 mdev
  insmod "$MDEVMIG_KO"
  bdf=
  for d in /sys/bus/pci/devices/*; do
    [ "$(cat "$d/vendor")" = 0x1af4 ] && [ "$(cat "$d/device")" = 0x1110 ] && bdf=${d##*/}
  done
  [ -n "$bdf" ] || fail "no ivshmem function (lab started without --ivshmem?)"
  echo mdevmig > "/sys/bus/pci/devices/$bdf/driver_override"
  echo "$bdf" > /sys/bus/pci/drivers_probe
  type=$(ls "/sys/bus/pci/devices/$bdf/mdev_supported_types" | head -n1)
  [ -n "$type" ] || fail "$bdf did not become an mdevmig parent"
  insmod "$work/kmods/lab_typeref.ko" bdf="$bdf" type="$type"
  echo "$bdf" > /sys/bus/pci/drivers/mdevmig/unbind
  rmmod lab_typeref
  rmmod mdevmig
  dmesg | grep -q "type ${type#mdevmig-} still referenced at release" || fail "the driver did not say it kept the parent"
  echo "typeref: ok ($bdf, $type)"
  exit 0
fi

root= kroot=
case "$profile" in
  bookworm) ;;
  debug) kroot=$("$top/tools/lab/mkdebugkernel.sh" --path) || { echo "typeref: no debug kernel"; exit 1; } ;;
  *) root=$("$top/tools/lab/mkroot.sh" "$profile") || { echo "typeref: no $profile root"; exit 1; }
     kroot=$root
     . "$top/scripts/lib.sh" ;;
esac
kver=$(for k in "$kroot"/boot/vmlinuz-*; do k=${k##*/vmlinuz-}; [ -d "$kroot/lib/modules/$k/kernel" ] && echo "$k"; done | sort -V | tail -n1)
mkdir -p "$work/kmods"
work=$(cd "$work" && pwd)
cp "$here/kmods/Kbuild" "$here/kmods/"*.c "$work/kmods/"
if [ -z "$root" ]; then
  make -s -C "$kroot/lib/modules/$kver/build" M="$work/kmods" modules >/dev/null 2>&1
else
  case "$work" in "$top"/*) ;; *) echo "typeref: WORKDIR must be inside $top for $profile"; exit 1 ;; esac
  profile_run "$root" "make -s -C /lib/modules/$kver/build M=$work/kmods modules" >/dev/null 2>&1
fi || { echo "typeref: cannot build the test module for $kver"; exit 1; }
exec "$top/tools/lab/lab.sh" --name lab_typeref --timeout 600 --profile "$profile" --ivshmem 32M \
  --kmod-dir "$kmod_dir" -- "$0" "$work" "$profile" "$kmod_dir"
