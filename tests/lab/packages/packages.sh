#!/usr/bin/env bash
# Lab group "packages": mdevmig installed as an administrator installs it.
#   tests/lab/packages/packages.sh OUTDIR [--profile P]
# On the host: builds the .debs with dpkg-buildpackage from a copy of the tree into
# OUTDIR (or takes them from $MDEVMIG_DEBS, a directory), builds or reuses a clean root of
# the profile's Debian release with the kernel the lab boots (tools/lab/mkroot.sh
# --clean: DKMS, that kernel's headers and image, mdevctl, man-db and the libraries the
# mdevmig package depends on, nothing of mdevmig), then boots the lab, where in-guest.sh
# installs the packages into that root with apt and drives them. The guest writes into
# its overlay of the root only: the cached root stays clean.
set -euo pipefail
out=${1:?usage: packages.sh OUTDIR [--profile P]}
shift
profile=${MDEVMIG_LAB_PROFILE:-bookworm}
[ "${1:-}" != --profile ] || { profile=$2; shift 2; }
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../.." && pwd)
fail() { echo "lab: FAIL lab_packages: $*"; exit 1; }
# Only bookworm for now: the guest sees the cached root through the host root it boots
# (a trixie or sid guest sees its own root and the project only).
[ "$profile" = bookworm ] || fail "profile $profile: the packages group runs on bookworm only"

# --- the packages --------------------------------------------------------------------------
mkdir -p "$out"
out=$(cd "$out" && pwd)
if [ -n "${MDEVMIG_DEBS:-}" ]; then
  debs=$(cd "$MDEVMIG_DEBS" && pwd)
else
  debs=$out/debs
  rm -rf "$debs"; mkdir -p "$debs/src"
  (cd "$top" && git ls-files -co --exclude-standard -z | tar --null -T - -cf -) | tar -C "$debs/src" -xf -
  echo "packages: dpkg-buildpackage -b (log: $debs/build.log)"
  (cd "$debs/src" && dpkg-buildpackage -b -us -uc) > "$debs/build.log" 2>&1 ||
    fail "dpkg-buildpackage failed (see $debs/build.log)"
  rm -rf "$debs/src"
fi
cli=$(ls "$debs"/mdevmig_*.deb 2>/dev/null | head -n1)
dkms=$(ls "$debs"/mdevmig-dkms_*.deb 2>/dev/null | head -n1)
[ -n "$cli" ] && [ -n "$dkms" ] || fail "no mdevmig_*.deb and mdevmig-dkms_*.deb in $debs"

# --- the clean root --------------------------------------------------------------------------
# The kernel the lab boots (tools/lab/lab.sh picks the same one).
kver=$(for k in /boot/vmlinuz-*; do k=${k##*/vmlinuz-}; [ -d "/lib/modules/$k/kernel" ] && echo "$k"; done | sort -V | tail -n1)
[ -n "$kver" ] || fail "no kernel with modules in /boot"
# What the mdevmig package depends on (first alternatives, without versions): the root
# has them, so apt installs the .debs without a network.
deps=$(dpkg-deb -f "$cli" Depends | tr ',' '\n' | sed 's/|.*//; s/(.*)//; s/:any//; s/[[:space:]]//g' | grep . | LC_ALL=C sort -u)
release=$(. /etc/os-release && echo "$VERSION_CODENAME")
root=$("$top/tools/lab/mkroot.sh" --clean "$release" "$kver" $deps) || fail "cannot build the clean $release root"

# --- the run -----------------------------------------------------------------------------
exec "$top/tools/lab/lab.sh" --name lab_packages --timeout "${MDEVMIG_PACKAGES_TIMEOUT:-3000}" --profile "$profile" \
  --kver "$kver" -- "$here/in-guest.sh" "$root" "$cli" "$dkms"
