#!/usr/bin/env bash
# Builds mdevmig.ko out of tree: build.sh OUTDIR [KVER]
# or the guest driver mdevmig_guest.ko (kmod/guest/): build.sh --guest OUTDIR [KVER]
#
# Kbuild wants its sources in one directory (M=). We lay out OUTDIR/<kver>/ with
# symlinks to kmod/*.{c,h}, kmod/Kbuild, kmod/uapi/ and vendor/*.{c,h} (for the guest
# driver: kmod/guest/* and the uAPI header), so objects land in the build tree and
# several kernels can be built side by side. KVER defaults to the newest release under
# /lib/modules that has a build dir. Prints the .ko path last.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
guest=0
[ "${1:-}" != --guest ] || { guest=1; shift; }
out=${1:?usage: build.sh [--guest] OUTDIR [KVER]}
kver=${2:-}
if [ -z "$kver" ]; then
  kver=$(for d in /lib/modules/*/build; do [ -e "$d/Makefile" ] && basename "$(dirname "$d")"; done | sort -V | tail -n1)
fi
[ -n "$kver" ] || { echo "kmod: no kernel build dir under /lib/modules/*/build (run scripts/setup.sh)" >&2; exit 1; }
kdir=/lib/modules/$kver/build
[ -e "$kdir/Makefile" ] || { echo "kmod: $kdir has no Makefile: install linux-headers-$kver" >&2; exit 1; }

b=$out/$kver
mkdir -p "$b/vendor" "$b/uapi/linux"
# Refresh the symlinks (sources may have been added or removed).
find "$b" -maxdepth 2 -type l -delete
jobs=$(nproc 2>/dev/null || echo 2)

# Warnings are errors for the modules: the build log must be empty of them.
kbuild() {
  make -s -C "$kdir" M="$b" -j"$jobs" modules W=1 MDEVMIG_WERROR=1 2>&1 | tee "$b/build.log"
  local rc=${PIPESTATUS[0]}
  [ "$rc" -eq 0 ] || exit "$rc"
  if grep -E 'warning:' "$b/build.log" >/dev/null; then
    echo "kmod: build produced warnings (see $b/build.log)" >&2
    exit 1
  fi
  ln -sfn "$kver" "$out/current"
}

if [ "$guest" = 1 ]; then
  for f in "$here"/guest/Kbuild "$here"/guest/*.c; do [ -e "$f" ] && ln -sf "$f" "$b/"; done
  ln -sf "$here"/uapi/linux/mdevmig.h "$b/uapi/linux/mdevmig.h"
  kbuild
  echo "$b/mdevmig_guest.ko"
  exit 0
fi
for f in "$here"/Kbuild "$here"/*.c "$here"/*.h; do [ -e "$f" ] && ln -sf "$f" "$b/"; done
for f in "$top"/vendor/*.c "$top"/vendor/*.h; do [ -e "$f" ] && ln -sf "$f" "$b/vendor/"; done
ln -sf "$here"/uapi/linux/mdevmig.h "$b/uapi/linux/mdevmig.h"

# MODULE_VERSION: the project version, read from the top-level project() line (this
# script runs without CMake). Rewritten only when it changes, so Kbuild rebuilds nothing.
version=$("$here/version.sh")
sed "s/@MDEVMIG_VERSION@/$version/" "$here/mdevmig_version.h.in" > "$b/mdevmig_version.h.new"
if cmp -s "$b/mdevmig_version.h.new" "$b/mdevmig_version.h"; then
  rm "$b/mdevmig_version.h.new"
else
  mv "$b/mdevmig_version.h.new" "$b/mdevmig_version.h"
fi

kbuild
echo "$b/mdevmig.ko"
