#!/usr/bin/env bash
# The main job's guest side (run by scripts/demo.sh inside the lab):
#   tools/lab/demo-guest.sh PATH/TO/mdevmig
# loads the stack, creates two mdevmig instances, starts a QEMU VM on the first
# with the device busy (a qtest-driven guest: BAR2 writes, DMA into guest RAM,
# interrupts), live-migrates it with QEMU to the second, verifies the destination and
# prints the report with its pre-copy passes. Exit status: mdevmig qemu-migrate's.
set -euo pipefail
mdevmig=${1:?usage: demo-guest.sh PATH/TO/mdevmig}
say() { printf '\n== %s\n' "$*"; }

say "kernel $(uname -r), $(qemu-system-x86_64 --version | head -n1)"
modprobe -a vfio vfio_iommu_type1 mdev $(modinfo -F depends "$MDEVMIG_KO" | tr , " ")
insmod "$MDEVMIG_KO"
parent=$(basename "$(ls -d /sys/class/mdev_bus/mdevmig_* | head -n1)")
types=/sys/class/mdev_bus/$parent/mdev_supported_types
echo "  mdevmig.ko loaded: parent $parent, types $(cd "$types" && echo *)"

say "two instances of type mdevmig-quarter ($(cat "$types/mdevmig-quarter/description"))"
src=$(cat /proc/sys/kernel/random/uuid)
dst=$(cat /proc/sys/kernel/random/uuid)
echo "$src" > "$types/mdevmig-quarter/create"
echo "$dst" > "$types/mdevmig-quarter/create"
echo "  source      /sys/bus/mdev/devices/$src"
echo "  destination /sys/bus/mdev/devices/$dst"

# QEMU up to 7.2 speaks the v1 migration region, from 8.1 on the v2 data_fd (qemu-migrate
# picks the same by the version).
qver=$(qemu-system-x86_64 --version | sed -n 's/.*version \([0-9]*\)\.\([0-9]*\).*/\1 \2/p' | head -n1)
read -r qmajor qminor <<<"$qver"
if [ "$qmajor" -lt 8 ]; then
  enable=x-enable-migration=on proto="v1 migration region"
else
  enable=enable-migration=on proto="v2 data_fd, PRE_COPY"
fi
say "live migration: QEMU $qmajor.$qminor with -device vfio-pci,sysfsdev=...,$enable on the source,"
echo "   a second QEMU with -incoming on the destination; a qtest-driven guest keeps the device busy;"
echo "   QEMU's migrate moves RAM and the device state ($proto) with pre-copy"
echo
rc=0
"$mdevmig" qemu-migrate --src "$src" --dst "$dst" --writes 150 --dma 30 --passes 3 --bandwidth 24M --downtime 100 || rc=$?

say "cleaning up"
echo 1 > "/sys/bus/mdev/devices/$src/remove"
echo 1 > "/sys/bus/mdev/devices/$dst/remove"
rmmod mdevmig
echo "  instances removed, module unloaded; mdevmig kernel log:"
dmesg | grep -E 'mdevmig' | grep -vE 'iommu group|taints kernel|signature' | sed 's/^/  /' | tail -n 8
exit $rc
