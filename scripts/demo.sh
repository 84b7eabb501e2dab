#!/usr/bin/env bash
# The main job: set up, build mdevmig.ko, boot the lab VM with the Debian kernel, and
# inside it live-migrate a QEMU VM that has an mdevmig device from one instance to
# another while the device is busy, then verify the destination.
#
# By default the VM runs Linux (the lab's own Debian kernel) with the guest driver
# kmod/guest: Linux's dmatest copies memory through the device and a guest program
# writes BAR2 from the CPU while QEMU's `migrate` moves the VM; the guest then reports
# its own verdict (dmatest's summaries, the BAR2 check, the longest pause it saw) next
# to QEMU's migration figures (tests/lab/guest: guest.sh, guest_qemu.py).
#
#   scripts/demo.sh                   Debian 12: kernel 6.1, QEMU 7.2 (v1 migration region)
#   scripts/demo.sh --profile trixie  Debian 13: kernel 6.12, QEMU 10.0 (v2 with PRE_COPY);
#                                     sid: kernel 7.x, QEMU 11.x (builds the root once)
#   scripts/demo.sh --qtest [--profile P]
#                                     the fast path: a qtest-driven guest (BAR2 writes, DMA
#                                     into guest RAM, interrupts) and mdevmig's own report
#                                     with its table of pre-copy passes
#                                     (tools/lab/demo-guest.sh)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
profile=bookworm guest=linux
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile=${2:?--profile wants bookworm, trixie or sid}; shift 2 ;;
    --qtest) guest=qtest; shift ;;
    *) echo "usage: scripts/demo.sh [--qtest] [--profile bookworm|trixie|sid]" >&2; exit 2 ;;
  esac
done
bash scripts/setup.sh --lab
if [ "$profile" = bookworm ]; then
  echo "== building mdevmig.ko and the mdevmig tool"
  cmake --preset dev >/dev/null
  cmake --build --preset dev --target kmod >/dev/null
  [ "$guest" = linux ] || cmake --build --preset dev --target mdevmig -j"${MDEVMIG_JOBS:-$(nproc)}" >/dev/null
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
if [ "$guest" = qtest ]; then
  echo "== booting the lab (QEMU TCG guest, Debian kernel $kernel)"
  exec tools/lab/lab.sh --name demo --profile "$profile" --timeout 600 --kmod-dir "$build/kmod" -- \
    tools/lab/demo-guest.sh "$build/tools/cli/mdevmig"
fi
echo "== building the Linux guest: its driver, Linux's dmatest, a BAR2 writer, an initramfs"
echo "   (then booting the lab: QEMU TCG, Debian kernel $kernel; inside it the Linux VM runs"
echo "   under KVM with an mdevmig instance, boots, checks the device, and is saved once;"
echo "   the demo restores it, starts dmatest and the BAR2 writer, and migrates it live)"
MDEVMIG_GUEST_SCENARIOS=live MDEVMIG_GUEST_TIMEOUT=1200 \
  exec tests/lab/guest/guest.sh "$build/demo-guest" "$profile" "$build/kmod"
