#!/usr/bin/env bash
# The main job's guest side (run by scripts/demo.sh inside the lab): load the stack,
# show the mdevmig parent and its types, create an instance, show it, remove it.
set -euo pipefail
say() { printf '\n== %s\n' "$*"; }
say "kernel $(uname -r): loading vfio, vfio_iommu_type1, mdev, mdevmig"
modprobe -a vfio vfio_iommu_type1 mdev
insmod "$MDEVMIG_KO"
for p in /sys/class/mdev_bus/*; do
  say "parent $(basename "$p")"
  for t in "$p"/mdev_supported_types/*; do
    printf '  %-18s name=%-14s available=%s  %s\n' "$(basename "$t")" "$(cat "$t/name")" \
      "$(cat "$t/available_instances")" "$(cat "$t/description")"
  done
done
parent=$(basename "$(ls -d /sys/class/mdev_bus/* | head -n1)")
uuid=$(cat /proc/sys/kernel/random/uuid)
say "creating instance $uuid (type mdevmig-quarter on $parent)"
echo "$uuid" > "/sys/class/mdev_bus/$parent/mdev_supported_types/mdevmig-quarter/create"
dev=/sys/bus/mdev/devices/$uuid
group=$(basename "$(readlink "$dev/iommu_group")")
echo "  $dev -> type $(basename "$(readlink "$dev/mdev_type")"), IOMMU group $group, /dev/vfio/$group $( [ -e /dev/vfio/$group ] && echo present)"
echo "  mdevmig-quarter available now: $(cat /sys/class/mdev_bus/$parent/mdev_supported_types/mdevmig-quarter/available_instances)"
say "removing instance $uuid"
echo 1 > "$dev/remove"
[ ! -e "$dev" ] && echo "  removed; mdevmig-quarter available: $(cat /sys/class/mdev_bus/$parent/mdev_supported_types/mdevmig-quarter/available_instances)"
rmmod mdevmig
say "module unloaded; kernel log of this run:"
dmesg | grep -E 'mdevmig|vfio|mdev' | sed 's/^/  /'
