#!/usr/bin/env bash
# Builds (or reuses) a Debian root for a modern lab profile with debootstrap:
#   tools/lab/mkroot.sh trixie|sid        -> prints the root's path
# The root holds that release's kernel, headers, toolchain, QEMU, the project's
# build dependencies, and mdevctl and libvirt for the lab groups that use them. It is
# cached under $MDEVMIG_LAB_DIR/roots/<profile> and rebuilt when the package list below
# changes (its hash is the root's stamp). The mirror is taken from this machine's apt
# sources at run time.
#
#   tools/lab/mkroot.sh --clean RELEASE KVER [PACKAGE...]   -> prints the root's path
# A root to install mdevmig's packages in (tests/lab/packages): RELEASE's minimal system
# with what installing them offline needs and nothing of mdevmig: DKMS, the headers and
# image of kernel KVER (the one the lab boots), mdevctl, man-db, and PACKAGEs (the
# runtime libraries the mdevmig package depends on). Cached as roots/clean-RELEASE-KVER;
# users must not write into it (the lab guest sees it through its overlay).
set -euo pipefail
labdir=${MDEVMIG_LAB_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mdevmig-lab}
extra=
if [ "${1:-}" = --clean ]; then
  release=${2:?usage: mkroot.sh --clean RELEASE KVER [PACKAGE...]}
  kver=${3:?usage: mkroot.sh --clean RELEASE KVER [PACKAGE...]}
  shift 3
  profile=$release
  root=$labdir/roots/clean-$release-$kver
  pkgs="dkms,linux-headers-$kver,linux-image-$kver,mdevctl,man-db,kmod"
  for p in "$@"; do pkgs+=",$p"; done
else
  profile=${1:?usage: mkroot.sh trixie|sid}
  case "$profile" in trixie|sid) ;; *) echo "mkroot: unknown profile $profile" >&2; exit 2 ;; esac
  root=$labdir/roots/$profile
  pkgs="linux-image-amd64,linux-headers-amd64,qemu-system-x86,g++,cmake,ninja-build,make,pkg-config,\
liburing-dev,libcapnp-dev,capnproto,libxxhash-dev,libgtest-dev,libgmock-dev,libbenchmark-dev,\
nlohmann-json3-dev,libgnutls28-dev,openssl,busybox-static,kmod,cpio,python3,perl,man-db,bsdextrautils"
  # Installed with apt once the root is bootstrapped: they pull in systemd, and
  # debootstrap's own installer unpacks systemd before the library it pre-depends on
  # (libsystemd-shared) is configured, and fails. build-essential, debhelper, dh-dkms and
  # dpkg-dev build the project's .debs for this release (the packages lab group).
  extra="mdevctl,libvirt-daemon-system,libvirt-clients,build-essential,debhelper,dh-dkms,dpkg-dev"
fi
stamp=$(echo "$profile $pkgs${extra:+ $extra}" | sha1sum | cut -c1-12)
# One builder per root: test runs from several checkouts share the cache, and a second
# builder would delete the first one's tree under it. The others wait, then reuse it.
mkdir -p "$(dirname "$root")"
exec 9>"$root.lock"
flock 9
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
# Installs the packages named (comma-separated) in $1 with apt inside the root being built.
# No service starts: the root is never booted with its own init.
apt_install() {
  mount -t proc proc "$root.tmp/proc"
  trap 'umount "$root.tmp/proc"; rm -f "$root.tmp/usr/sbin/policy-rc.d"' EXIT
  printf '#!/bin/sh\nexit 101\n' > "$root.tmp/usr/sbin/policy-rc.d"
  chmod 755 "$root.tmp/usr/sbin/policy-rc.d"
  # Valid-Until is not checked: the archive this machine sees may be a snapshot, whose sid
  # Release has expired (signatures are still checked; it is a test root).
  chroot "$root.tmp" apt-get -o Acquire::Check-Valid-Until=false update -qq >&2
  DEBIAN_FRONTEND=noninteractive INITRD=No chroot "$root.tmp" \
    apt-get install -y -qq --no-install-recommends ${1//,/ } >&2
  chroot "$root.tmp" apt-get clean
  umount "$root.tmp/proc"; rm -f "$root.tmp/usr/sbin/policy-rc.d"; trap - EXIT
}
# INITRD=No: the lab boots with its own initramfs, so the kernel's is never built.
if [ -z "${release:-}" ]; then
  INITRD=No debootstrap --variant=minbase --include="$pkgs" "$profile" "$root.tmp" "$mirror" >&2
  apt_install "$extra"
else
  # A clean root: the kernel KVER may come from the release's updates or security suites,
  # which debootstrap does not read. Bootstrap the base, give it this machine's apt
  # sources (this release's suites) and install the rest with apt inside it.
  INITRD=No debootstrap --variant=minbase "$release" "$root.tmp" "$mirror" >&2
  host_release=$(. /etc/os-release && echo "${VERSION_CODENAME:?}")
  rm -f "$root.tmp/etc/apt/sources.list"
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    mkdir -p "$root.tmp$(dirname "$f")"
    sed "s/\b$host_release\b/$release/g" "$f" > "$root.tmp$f"
  done
  apt_install "$pkgs"
fi
echo "$stamp" > "$root.tmp/.mdevmig-stamp"
rm -rf --one-file-system "$root"
mv "$root.tmp" "$root"
echo "$root"
