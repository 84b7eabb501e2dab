#!/usr/bin/env bash
# Lab group "packages": mdevmig installed as an administrator installs it.
#   tests/lab/packages/packages.sh OUTDIR [--profile P]
# On the host: builds the .debs with dpkg-buildpackage from a copy of the tree into
# OUTDIR (or takes them from $MDEVMIG_DEBS, a directory), for the profile's Debian release
# (bookworm: on this host; trixie or sid: inside that release's lab root), builds or
# reuses a clean root of that release with the kernel the lab boots (tools/lab/mkroot.sh
# --clean: DKMS, that kernel's headers and image, mdevctl, man-db and the libraries the
# mdevmig package depends on, nothing of mdevmig), then boots the lab, where in-guest.sh
# installs the packages into that root with apt and drives them. The guest writes into
# an overlay of the root only: the cached root stays clean. A bookworm guest reaches the
# clean root through the host root it boots; a trixie or sid guest sees its own root, so
# the clean root is shared in at /share and in-guest.sh lays its overlay over that.
set -euo pipefail
out=${1:?usage: packages.sh OUTDIR [--profile P]}
shift
profile=${MDEVMIG_LAB_PROFILE:-bookworm}
[ "${1:-}" != --profile ] || { profile=$2; shift 2; }
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../.." && pwd)
. "$top/scripts/lib.sh"
fail() { echo "lab: FAIL packages_lab: $*"; exit 1; }
case "$profile" in
  bookworm) devroot= ;;
  trixie|sid) devroot=$(profile_root "$profile") || fail "no $profile root (tools/lab/mkroot.sh $profile)" ;;
  *) fail "profile $profile: the packages group runs on bookworm, trixie or sid" ;;
esac

# --- the packages --------------------------------------------------------------------------
mkdir -p "$out"
out=$(cd "$out" && pwd)
# A profile root sees the project at its host path and nothing else of the host.
[ -z "$devroot" ] || case "$out" in "$top"/*) ;; *) fail "OUTDIR $out is not inside $top" ;; esac
if [ -n "${MDEVMIG_DEBS:-}" ]; then
  debs=$(cd "$MDEVMIG_DEBS" && pwd)
else
  debs=$out/debs
  rm -rf "$debs"; mkdir -p "$debs/src"
  (cd "$top" && git ls-files -co --exclude-standard -z | tar --null -T - -cf -) | tar -C "$debs/src" -xf -
  echo "packages: dpkg-buildpackage -b (log: $debs/build.log)"
  if [ -z "$devroot" ]; then
    (cd "$debs/src" && dpkg-buildpackage -b -us -uc) > "$debs/build.log" 2>&1
  else
    profile_run "$devroot" "cd '$debs/src' && dpkg-buildpackage -b -us -uc" > "$debs/build.log" 2>&1
  fi || fail "dpkg-buildpackage failed (see $debs/build.log)"
  rm -rf "$debs/src"
fi
cli=$(ls "$debs"/mdevmig_*.deb 2>/dev/null | head -n1)
dkms=$(ls "$debs"/mdevmig-dkms_*.deb 2>/dev/null | head -n1)
[ -n "$cli" ] && [ -n "$dkms" ] || fail "no mdevmig_*.deb and mdevmig-dkms_*.deb in $debs"

# --- the clean root --------------------------------------------------------------------------
# The kernel the lab boots (tools/lab/lab.sh picks the same one: the host's newest, or
# the profile root's).
kver=$(for k in "$devroot"/boot/vmlinuz-*; do k=${k##*/vmlinuz-}; [ -d "$devroot/lib/modules/$k/kernel" ] && echo "$k"; done | sort -V | tail -n1)
[ -n "$kver" ] || fail "no kernel with modules in $devroot/boot"
# What the mdevmig package depends on (first alternatives, without versions): the root
# has them, so apt installs the .debs without a network.
deps=$(dpkg-deb -f "$cli" Depends | tr ',' '\n' | sed 's/|.*//; s/(.*)//; s/:any//; s/[[:space:]]//g' | grep . | LC_ALL=C sort -u)
release=$profile
[ -n "$devroot" ] || release=$(. /etc/os-release && echo "$VERSION_CODENAME")
root=$("$top/tools/lab/mkroot.sh" --clean "$release" "$kver" $deps) || fail "cannot build the clean $release root"
share=() guestroot=$root
[ -z "$devroot" ] || { share=(--share "$root"); guestroot=overlay:/share; }

# --- the run -----------------------------------------------------------------------------
exec "$top/tools/lab/lab.sh" --name packages_lab --timeout "${MDEVMIG_PACKAGES_TIMEOUT:-3000}" --profile "$profile" \
  --kver "$kver" "${share[@]}" -- "$here/in-guest.sh" "$guestroot" "$cli" "$dkms"
