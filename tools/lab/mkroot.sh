#!/usr/bin/env bash
# Builds (or reuses) a Debian root for a modern lab profile with debootstrap:
#   tools/lab/mkroot.sh trixie|sid        -> prints the root's path
# The root holds that release's kernel, headers, toolchain, QEMU and the project's
# build dependencies. It is cached under $MDEVMIG_LAB_DIR/roots/<profile> and rebuilt
# when the package list below changes. The mirror is taken from this machine's apt
# sources at run time.
set -euo pipefail
profile=${1:?usage: mkroot.sh trixie|sid}
case "$profile" in trixie|sid) ;; *) echo "mkroot: unknown profile $profile" >&2; exit 2 ;; esac
labdir=${MDEVMIG_LAB_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mdevmig-lab}
root=$labdir/roots/$profile

pkgs="linux-image-amd64,linux-headers-amd64,qemu-system-x86,g++,cmake,ninja-build,make,pkg-config,\
liburing-dev,libcapnp-dev,capnproto,libxxhash-dev,libgtest-dev,libgmock-dev,libbenchmark-dev,\
nlohmann-json3-dev,busybox-static,kmod,cpio,python3,perl,man-db,bsdextrautils"
stamp=$(echo "$profile $pkgs" | sha1sum | cut -c1-12)
if [ -f "$root/.mdevmig-stamp" ] && [ "$(cat "$root/.mdevmig-stamp")" = "$stamp" ]; then
  echo "$root"
  exit 0
fi

# The first Debian archive URI in the machine's apt sources (deb822 or one-line form).
mirror=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null |
         grep -v security | head -n1)
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $0 !~ /security/ { print $2; exit }' /etc/apt/sources.list 2>/dev/null)
[ -n "$mirror" ] || { echo "mkroot: no Debian mirror in the apt sources" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "mkroot: debootstrap missing (run scripts/setup.sh)" >&2; exit 1; }

# Never delete a tree something is mounted in (a bind-mounted project would be deleted
# through the mount): refuse instead.
for d in "$root" "$root.tmp"; do
  if [ -d "$d" ] && awk -v d="$(realpath "$d")" '$2 == d || index($2, d "/") == 1 { found = 1 } END { exit !found }' /proc/self/mounts; then
    echo "mkroot: $d has mounts inside (see /proc/self/mounts); unmount them first" >&2
    exit 1
  fi
done
echo "mkroot: building the $profile root from $mirror (a few minutes)" >&2
rm -rf --one-file-system "$root.tmp"
mkdir -p "$(dirname "$root")"
# INITRD=No: the lab boots with its own initramfs, so the kernel's is never built.
INITRD=No debootstrap --variant=minbase --include="$pkgs" "$profile" "$root.tmp" "$mirror" >&2
echo "$stamp" > "$root.tmp/.mdevmig-stamp"
rm -rf --one-file-system "$root"
mv "$root.tmp" "$root"
echo "$root"
