#!/usr/bin/env bash
# The lab's initramfs builder (used by tools/lab/lab.sh and tests/lab/guest/guest.sh):
#
#   tools/lab/initramfs.sh OUT BUSYBOX KROOT KVER INIT "MODULES" [FILE=DEST ...]
#
# Writes OUT, a gzipped newc cpio holding: BUSYBOX (a static busybox) as /bin/busybox;
# the kernel modules MODULES (names, with their dependencies) of kernel KVER from
# KROOT/lib/modules/KVER (KROOT "" is /), uncompressed (Debian 6.12+ ships .ko.xz;
# busybox loads .ko), with modules.order, modules.builtin and a depmod index; INIT as
# /init; and each FILE at DEST. OUT is written under a temporary name and renamed over,
# so builders racing for the same OUT (two lab guests starting at once) each write
# their own file and the last rename wins with the same content.
set -euo pipefail
[ $# -ge 6 ] || { echo "usage: initramfs.sh OUT BUSYBOX KROOT KVER INIT MODULES [FILE=DEST ...]" >&2; exit 2; }
out=$1 busybox=$2 kroot=$3 kver=$4 init=$5 mods=$6
shift 6
root=$(mktemp -d "$(dirname "$out")/initramfs.XXXXXX")
trap 'rm -rf "$root" "$out.$$.tmp"' EXIT
mkdir -p "$root"/{bin,proc,sys,dev,lib/modules}
cp "$busybox" "$root/bin/busybox"
for m in $mods; do
  modprobe ${kroot:+-d "$kroot"} -S "$kver" --show-depends "$m" | awk '$1 == "insmod" { print $2 }' |
  while read -r ko; do
    rel=${ko#"$kroot"}
    mkdir -p "$root$(dirname "$rel")"
    case "$ko" in
      *.xz) xz -dc "$ko" > "$root${rel%.xz}" ;;
      *.zst) zstd -qdc "$ko" > "$root${rel%.zst}" ;;
      *) cp "$ko" "$root$rel" ;;
    esac
  done
done
mkdir -p "$root/lib/modules/$kver"
cp "$kroot/lib/modules/$kver/modules.order" "$kroot/lib/modules/$kver/modules.builtin"* "$root/lib/modules/$kver/" 2>/dev/null || true
depmod -b "$root" "$kver"
install -m 755 "$init" "$root/init"
for f in "$@"; do
  mkdir -p "$root$(dirname "${f#*=}")"
  cp "${f%%=*}" "$root${f#*=}"
done
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$out.$$.tmp"
mv -f "$out.$$.tmp" "$out"
