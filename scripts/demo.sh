#!/usr/bin/env bash
# The main job: set up, build mdevmig.ko and the mdevmig tool, boot the lab VM with the
# Debian kernel, and inside it live-migrate a QEMU VM that has an mdevmig device from
# one instance to another while the device is busy, then verify the destination
# (tools/lab/demo-guest.sh).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bash scripts/setup.sh
echo "== building mdevmig.ko and the mdevmig tool"
cmake --preset dev >/dev/null
cmake --build --preset dev --target kmod >/dev/null
cmake --build --preset dev --target mdevmig -j"${MDEVMIG_JOBS:-$(nproc)}" >/dev/null
echo "== booting the lab (QEMU TCG guest, Debian kernel $(ls /lib/modules | sort -V | tail -n1))"
exec tools/lab/lab.sh --name demo --timeout 600 --kmod-dir build/dev/kmod -- \
  tools/lab/demo-guest.sh build/dev/tools/cli/mdevmig
