#!/usr/bin/env bash
# Builds the kernel's mtty sample (samples/vfio-mdev/mtty.c: a virtual serial port
# mdev with v2 migration) out of tree for a kernel:  build-mtty.sh OUTDIR [KVER]
#
# The source comes from Debian's linux-source-<major.minor> package of the headers'
# version, through tools/lab/linux-source.sh (fetched once; only mtty.c is kept, in
# OUTDIR/src/<version>/).
# Run it where the kernel's headers and apt sources are, i.e. inside the profile's root
# (scripts/test-profile.sh builds there). KVER defaults to the newest release under
# /lib/modules with a build dir, as for mdevmig.ko. Prints the .ko path last.
set -euo pipefail
out=${1:?usage: build-mtty.sh OUTDIR [KVER]}
kver=${2:-}
if [ -z "$kver" ]; then
  kver=$(for d in /lib/modules/*/build; do [ -e "$d/Makefile" ] && basename "$(dirname "$d")"; done | sort -V | tail -n1)
fi
[ -n "$kver" ] || { echo "mtty: no kernel build dir under /lib/modules/*/build" >&2; exit 1; }
kdir=/lib/modules/$kver/build
[ -e "$kdir/Makefile" ] || { echo "mtty: $kdir has no Makefile: install linux-headers-$kver" >&2; exit 1; }

# The sample's source, from Debian's linux-source package of the headers' version.
src=$("$(dirname "$0")/../../../tools/lab/linux-source.sh" "$out/src" "$kver" samples/vfio-mdev/mtty.c)/mtty.c
version=$(basename "$(dirname "$src")")
grep -q VFIO_MIGRATION_PRE_COPY "$src" ||
  { echo "mtty: the mtty sample of $version has no v2 migration with PRE_COPY (Linux 6.7+)" >&2; exit 1; }

b=$out/$kver
mkdir -p "$b"
ln -sf "$src" "$b/mtty.c"
[ "$(cat "$b/Kbuild" 2>/dev/null)" = 'obj-m := mtty.o' ] || echo 'obj-m := mtty.o' > "$b/Kbuild"
make -s -C "$kdir" M="$b" -j"$(nproc 2>/dev/null || echo 2)" modules >&2
echo "$b/mtty.ko"
