#!/usr/bin/env bash
# Lab test: a PCI parent removed while something still holds one of its mdev types.
#   typeref.sh WORKDIR PROFILE KMOD_DIR
# The mdev core's type release reads the type's parent pointer, which lies in the
# driver's parent memory, and the driver has no hook into it. A test module
# (kmods/typeref_hold.c) holds a type; the ivshmem function is unbound from mdevmig (its
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
  modprobe -a vfio vfio_iommu_type1 mdev $(modinfo -F depends "$MDEVMIG_KO" | tr , " ")
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
  insmod "$work/kmods/typeref_hold.ko" bdf="$bdf" type="$type"
  echo "$bdf" > /sys/bus/pci/drivers/mdevmig/unbind
  rmmod typeref_hold
  rmmod mdevmig
  dmesg | grep -q "type ${type#mdevmig-} still referenced at release" || fail "the driver did not say it kept the parent"
  echo "typeref: ok ($bdf, $type)"
  exit 0
fi

mkdir -p "$work"
work=$(cd "$work" && pwd)
. "$top/scripts/lib.sh"
build_test_kmods "$here/kmods" "$work" "$profile" || { echo "typeref: no test module"; exit 1; }
exec "$top/tools/lab/lab.sh" --name typeref_lab --timeout 600 --profile "$profile" --ivshmem 32M \
  --kmod-dir "$kmod_dir" -- "$0" "$work" "$profile" "$kmod_dir"
