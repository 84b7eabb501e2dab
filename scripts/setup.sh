#!/usr/bin/env bash
# Prepares a Debian 12 machine for developing and testing mdevmig, idempotently:
#   scripts/setup.sh          build and test dependencies (compilers, libraries,
#                             GoogleTest, Google Benchmark, clang for the fuzzers)
#   scripts/setup.sh --lab    also what the lab boots and runs: Debian's kernel image and
#                             headers (installed without an initramfs: the lab brings its
#                             own, see tools/lab/lab.sh), QEMU, busybox, debootstrap
# It is for the development and CI machine: --lab installs a kernel package, which on a
# machine that boots from disk changes what it boots. A real host needs only the
# packages of README.md's "Using it on a real host".
# Packages already present are skipped; apt is only touched when something is missing.
set -euo pipefail

lab=0
case "${1:-}" in
  --lab) lab=1 ;;
  "") ;;
  *) echo "usage: setup.sh [--lab]" >&2; exit 2 ;;
esac

PKGS=(
  # build
  build-essential cmake ninja-build pkg-config git
  # userspace libraries
  liburing-dev libcapnp-dev capnproto libxxhash-dev nlohmann-json3-dev
  # migrate --tls: the handshake (GnuTLS); the tests make certificates with openssl
  libgnutls28-dev openssl
  # tests, fuzzing, benchmarks
  googletest libgtest-dev libgmock-dev libbenchmark-dev clang libclang-rt-dev
  # the manual pages' checks (groff, lexgrog, col)
  man-db groff-base bsdextrautils
  # the --report pages' rendering test: headless Chromium takes screenshots, python3
  # decodes them (tests/unit/report/render_check.sh)
  chromium python3
  # the Debian packages (debian/, dpkg-buildpackage, lintian; the lab group packages)
  dpkg-dev debhelper dh-dkms devscripts lintian
)
[ "$lab" = 0 ] || PKGS+=(
  # the lab: kernel to boot, headers to build against, a VMM, initramfs pieces
  qemu-system-x86 linux-image-amd64 linux-headers-amd64 busybox-static cpio kmod xz-utils zstd
  # modern lab profiles
  debootstrap
  # the lab group mdevctl (and udev, which it needs)
  mdevctl
  # the lab group libvirt_qemu (libvirtd and its QEMU driver, virsh)
  libvirt-daemon-system libvirt-clients
  # the lab's own QEMU build for guests that run KVM (tools/lab/qemu.sh)
  meson libglib2.0-dev libpixman-1-dev libfdt-dev libcap-ng-dev libattr1-dev
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
[ "$lab" = 0 ] || export INITRD=No
apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "setup: done"
