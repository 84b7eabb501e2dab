#!/usr/bin/env bash
# Inside the lab guest (packages.sh boots it): in-guest.sh ROOT CLI_DEB DKMS_DEB
# In a chroot of the clean ROOT (the guest's overlay: writes stay in the guest; ROOT
# overlay:DIR lays an overlay in guest memory over DIR, a read-write host share): apt
# installs both packages, DKMS must have built mdevmig.ko for the running kernel, the
# module loads, mdevctl creates an instance, mdevmig saves and restores it, the manual
# pages and the completion are there; then apt purges both and nothing of them is left.
set -uo pipefail
[ "${MDEVMIG_LAB:-}" = 1 ] || { echo "packages: must run inside the lab (tools/lab/lab.sh)" >&2; exit 2; }
root=${1:?usage: in-guest.sh ROOT CLI_DEB DKMS_DEB}
cli=${2:?}; dkms=${3:?}
kver=$(uname -r)
step() { echo "packages: $*"; }
fail() { echo "packages: FAIL: $*" >&2; exit 1; }
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 TERM=dumb "$@"; }

if [[ $root == overlay:* ]]; then
  lower=${root#overlay:}
  # Its upper layer on a tmpfs of its own: the guest's /tmp is an overlay already.
  mkdir -p /tmp/clean && mount -t tmpfs tmpfs /tmp/clean && mkdir /tmp/clean/upper /tmp/clean/work /tmp/clean/root &&
  mount -t overlay overlay -o "lowerdir=$lower,upperdir=/tmp/clean/upper,workdir=/tmp/clean/work" /tmp/clean/root ||
    fail "cannot lay an overlay over $lower"
  root=/tmp/clean/root
fi
for m in proc sys dev dev/pts run; do mkdir -p "$root/$m"; done
mount -t proc proc "$root/proc" && mount --rbind /sys "$root/sys" && mount --rbind /dev "$root/dev" &&
  mount -t tmpfs tmpfs "$root/run" || fail "cannot mount /proc, /sys, /dev, /run in $root"
# The guest's devtmpfs has no /dev/fd (udev makes it on a real host): DKMS (and this
# script) use <(...), which needs it.
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd
for i in 0:stdin 1:stdout 2:stderr; do [ -e "/dev/${i#*:}" ] || ln -s "/proc/self/fd/${i%%:*}" "/dev/${i#*:}"; done
cleanup() {
  for d in /sys/bus/mdev/devices/*; do [ -e "$d/remove" ] && echo 1 > "$d/remove"; done
  grep -qw '^mdevmig' /proc/modules && rmmod mdevmig
  umount "$root/run"; umount -R "$root/dev"; umount -R "$root/sys"; umount "$root/proc"
  [ "$root" != /tmp/clean/root ] || umount /tmp/clean/root
}
trap cleanup EXIT
mkdir -p "$root/tmp/debs" && cp "$cli" "$dkms" "$root/tmp/debs/" || fail "cannot copy the packages into $root"
version=$(dpkg-deb -f "$cli" Version)

[ -e "$root/lib/modules/$kver/build/Makefile" ] || fail "the root has no headers for the running kernel $kver"
! in_root dpkg-query -W mdevmig mdevmig-dkms >/dev/null 2>&1 || fail "the root is not clean: mdevmig is installed"

# Before: what the root has where the packages put files.
# (Files only: DKMS may leave the empty updates/ directories it made.)
snapshot() {
  (cd "$root" && find usr/src var/lib/dkms lib/modules/*/updates usr/share/doc usr/share/man/man1 \
     usr/share/bash-completion usr/bin etc/modprobe.d etc/modules-load.d \( -type f -o -type l \) 2>/dev/null |
   grep -vxE 'var/lib/dkms/mok\.(key|pub)' | sort)
}
# DKMS's signing key (var/lib/dkms/mok.*) is made on its first build and kept on
# purpose: it is the key an administrator enrolled for Secure Boot.
before=$(snapshot)

step "apt install ./mdevmig_$version.deb ./mdevmig-dkms_$version.deb (DKMS builds mdevmig.ko for $kver)"
in_root sh -c 'cd /tmp/debs && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    -o Acquire::Retries=0 ./mdevmig_*.deb ./mdevmig-dkms_*.deb' || fail "apt install failed"

step "DKMS built and installed the module"
status=$(in_root dkms status mdevmig)
echo "$status"
grep -q "^mdevmig/$version, $kver, [^:]*: installed" <<< "$status" || fail "dkms status: mdevmig/$version not installed for $kver"
ko=$(in_root modinfo -k "$kver" -n mdevmig) || fail "modinfo finds no mdevmig for $kver"
[[ $ko == /lib/modules/$kver/updates/* ]] || fail "mdevmig.ko is $ko, not DKMS's (updates/)"
[ "$(in_root modinfo -k "$kver" -F version mdevmig)" = "$version" ] || fail "MODULE_VERSION is not $version"

step "modprobe mdevmig (with its soft dependencies vfio, vfio_iommu_type1, mdev)"
in_root modprobe mdevmig || fail "modprobe mdevmig failed"
grep -q '^mdevmig ' /proc/modules || fail "mdevmig not loaded"
for m in vfio vfio_iommu_type1 mdev; do
  grep -q "^$m " /proc/modules || [ -d "/sys/module/$m" ] || fail "modprobe did not load $m"
done

step "mdevmig --version, man -w mdevmig-save, the completion"
[ "$(in_root mdevmig --version)" = "mdevmig $version" ] || fail "mdevmig --version: $(in_root mdevmig --version)"
page=$(in_root man -w mdevmig-save) || fail "man -w mdevmig-save found no page"
echo "$page"
in_root man -w mdevmig >/dev/null || fail "man -w mdevmig found no page"
got=$(in_root bash -c 'source /usr/share/bash-completion/completions/mdevmig; COMP_WORDS=(mdevmig sa); COMP_CWORD=1; _mdevmig; echo "${COMPREPLY[*]}"')
[ "$got" = save ] || fail "completion of 'mdevmig sa': '$got'"

step "mdevctl start an instance, mdevmig save and restore it"
uuid=$(cat /proc/sys/kernel/random/uuid)
in_root mdevctl start -u "$uuid" -p mdevmig_sim0 -t mdevmig-quarter || fail "mdevctl start failed"
in_root mdevctl list | grep -q "$uuid" || fail "mdevctl list does not show $uuid"
got=$(in_root bash -c "source /usr/share/bash-completion/completions/mdevmig; COMP_WORDS=(mdevmig save ${uuid:0:8}); COMP_CWORD=2; _mdevmig; echo \"\${COMPREPLY[*]}\"")
[ "$got" = "$uuid" ] || fail "completion of the instance's UUID: '$got'"
in_root mdevmig save "$uuid" /tmp/dev.sav || fail "mdevmig save $uuid failed"
in_root mdevmig inspect /tmp/dev.sav || fail "mdevmig inspect failed"
in_root mdevmig restore "$uuid" /tmp/dev.sav || fail "mdevmig restore $uuid failed"
in_root mdevctl stop -u "$uuid" || fail "mdevctl stop failed"
in_root modprobe -r mdevmig || fail "modprobe -r mdevmig failed"
rm -f "$root/tmp/dev.sav"

step "apt purge: nothing of the packages is left"
files=$(in_root dpkg -L mdevmig mdevmig-dkms | sort -u)
in_root env DEBIAN_FRONTEND=noninteractive apt-get purge -y mdevmig mdevmig-dkms || fail "apt purge failed"
! in_root dpkg-query -W -f '${Status}\n' mdevmig mdevmig-dkms 2>/dev/null | grep -qv '^unknown\|not-installed' ||
  fail "dpkg still knows the packages: $(in_root dpkg-query -W -f '${Package} ${Status}\n' mdevmig mdevmig-dkms 2>&1)"
left=
while read -r f; do
  [ -n "$f" ] && [ "$f" != /. ] || continue
  # A directory stays when something else owns or uses it (/usr/bin, /usr/src).
  if [ -d "$root$f" ] && [ ! -L "$root$f" ]; then
    in_root dpkg -S "$f" >/dev/null 2>&1 || [ -n "$(ls -A "$root$f")" ] || left+=" $f"
  elif [ -e "$root$f" ] || [ -L "$root$f" ]; then
    left+=" $f"
  fi
done <<< "$files"
for d in /usr/src/mdevmig-$version /var/lib/dkms/mdevmig /usr/share/doc/mdevmig /usr/share/doc/mdevmig-dkms; do
  [ ! -e "$root$d" ] || left+=" $d"
done
for k in "$root"/lib/modules/*/updates; do
  [ -d "$k" ] || continue
  found=$(find "$k" -name 'mdevmig.ko*' | sed "s|^$root||")
  [ -z "$found" ] || left+=" $found"
done
[ -z "$left" ] || fail "left after apt purge:$left"
after=$(snapshot)
diff <(echo "$before") <(echo "$after") || fail "the root's files differ from before the install (above)"
step "PASS: installed, built by DKMS, loaded, used and purged without a trace"
