#!/usr/bin/env bash
# Installs everything mdevmig needs on a Debian 12 host, idempotently.
# Packages already present are skipped; apt is only touched when something is missing.
set -euo pipefail

PKGS=(
  # build
  build-essential cmake ninja-build pkg-config git
  # userspace libraries
  liburing-dev libcapnp-dev capnproto libxxhash-dev nlohmann-json3-dev
  # tests, fuzzing, benchmarks
  googletest libgtest-dev libgmock-dev libbenchmark-dev clang libclang-rt-dev
  # the lab: kernel to boot, headers to build against, a VMM, initramfs pieces
  qemu-system-x86 linux-image-amd64 linux-headers-amd64 busybox-static cpio kmod xz-utils zstd
  # nested qtest accelerator build (see tools/lab/qtest-accel.sh)
  meson libglib2.0-dev libpixman-1-dev libfdt-dev dpkg-dev
  # modern lab profiles
  debootstrap
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PKGS[@]} packages present"
  exit 0
fi

echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# The lab boots the kernel with its own initramfs; the distro initramfs is never used.
# INITRD=No makes the kernel's postinst hook skip building one (half a minute saved).
export INITRD=No
apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "setup: done"
