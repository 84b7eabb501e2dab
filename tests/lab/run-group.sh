#!/usr/bin/env bash
# Runs one lab test group inside the lab guest: loads vfio, vfio_iommu_type1, mdev, the
# modules mdevmig.ko links against (modinfo's depends: vfio_virqfd on 6.1) and
# mdevmig.ko, runs the test executable, then unloads mdevmig (it must unload cleanly).
#   tests/lab/run-group.sh TEST_EXECUTABLE [gtest args...]
set -uo pipefail
[ "${MDEVMIG_LAB:-}" = 1 ] || { echo "run-group: must run inside the lab (tools/lab/lab.sh)" >&2; exit 2; }
[ -n "${MDEVMIG_KO:-}" ] && [ -f "$MDEVMIG_KO" ] || { echo "run-group: MDEVMIG_KO not set or missing" >&2; exit 2; }
modprobe -a vfio vfio_iommu_type1 mdev $(modinfo -F depends "$MDEVMIG_KO" | tr , " ") || exit 3
insmod "$MDEVMIG_KO" ${MDEVMIG_KO_PARAMS:-} || { echo "run-group: insmod $MDEVMIG_KO failed" >&2; exit 3; }
"$@"
rc=$?
# Instances left behind by a failed test would keep the module busy: remove them.
for d in /sys/bus/mdev/devices/*; do [ -e "$d/remove" ] && echo 1 > "$d/remove"; done
if ! rmmod mdevmig; then
  echo "run-group: rmmod mdevmig failed (module still in use?)" >&2
  [ $rc -ne 0 ] || rc=4
fi
exit $rc
