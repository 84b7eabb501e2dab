#!/usr/bin/env bash
# The main job: set up, build mdevmig.ko and the mdevmig tool, boot the lab VM with the
# Debian kernel, and inside it live-migrate a QEMU VM that has an mdevmig device from
# one instance to another while the device is busy, then verify the destination
# (tools/lab/demo-guest.sh).
#   scripts/demo.sh                   Debian 12: kernel 6.1, QEMU 7.2 (v1 migration region)
#   scripts/demo.sh --profile trixie  Debian 13: kernel 6.12, QEMU 10.0 (v2 with PRE_COPY);
#                                     sid: kernel 7.x, QEMU 11.x (builds the root once)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
profile=bookworm
case "${1:-}" in
  --profile) profile=${2:?--profile wants bookworm, trixie or sid} ;;
  "") ;;
  *) echo "usage: scripts/demo.sh [--profile bookworm|trixie|sid]" >&2; exit 2 ;;
esac
bash scripts/setup.sh --lab
if [ "$profile" = bookworm ]; then
  echo "== building mdevmig.ko and the mdevmig tool"
  cmake --preset dev >/dev/null
  cmake --build --preset dev --target kmod >/dev/null
  cmake --build --preset dev --target mdevmig -j"${MDEVMIG_JOBS:-$(nproc)}" >/dev/null
  build=build/dev
  kernel=$(ls /lib/modules | sort -V | tail -n1)
else
  . scripts/lib.sh
  echo "== the $profile root (tools/lab/mkroot.sh; built once, then reused)"
  root=$(profile_root "$profile")
  echo "== building mdevmig.ko and the mdevmig tool inside it"
  profile_build "$root" "$profile" >/dev/null
  build=build/$profile
  kernel=$(ls "$root/lib/modules" | sort -V | tail -n1)
fi
echo "== booting the lab (QEMU TCG guest, Debian kernel $kernel)"
tools/lab/lab.sh --name demo --profile "$profile" --timeout 600 --kmod-dir "$build/kmod" -- \
  tools/lab/demo-guest.sh "$build/tools/cli/mdevmig"
