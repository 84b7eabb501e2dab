#!/usr/bin/env bash
# Builds the kernel's mtty sample (samples/vfio-mdev/mtty.c: a virtual serial port
# mdev with v2 migration) out of tree for a kernel:  build-mtty.sh OUTDIR [KVER]
#
# The source comes from Debian's linux-source-<major.minor> package of the headers'
# version: fetched once with apt-get through OUTDIR/apt (its own lists and cache, so the
# system's apt state is not touched; removed afterwards), and only mtty.c is kept
# (OUTDIR/src/<version>/).
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

series=$(sed -E 's/^([0-9]+\.[0-9]+).*/\1/' <<<"$kver")
pkg=linux-source-$series
version=$(dpkg-query -W -f '${source:Version}' "linux-headers-$kver" 2>/dev/null || true)
[ -n "$version" ] || { echo "mtty: linux-headers-$kver is not a Debian package; cannot tell which source to use" >&2; exit 1; }
src=$out/src/$version/mtty.c

if [ ! -s "$src" ]; then
  echo "mtty: fetching $pkg $version for samples/vfio-mdev/mtty.c (once)" >&2
  apt_dir=$out/apt
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/deb"
  apto=(-o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" -o Debug::NoLocking=1
        -o APT::Sandbox::User=root -qq)
  apt-get "${apto[@]}" update >&2
  # The headers' exact version, else what the archive has now (a sample rarely changes
  # within a stable series).
  (cd "$apt_dir/deb" && rm -f ./*.deb &&
   { apt-get "${apto[@]}" download "$pkg=$version" >&2 2>/dev/null ||
     { echo "mtty: $pkg $version not in the archive; using its current $pkg" >&2
       apt-get "${apto[@]}" download "$pkg" >&2; }; })
  deb=$(ls "$apt_dir"/deb/"$pkg"_*.deb | head -n1)
  mkdir -p "$(dirname "$src")"
  # The package holds /usr/src/linux-source-X.Y.tar.xz; stream it and stop at mtty.c.
  dpkg-deb --fsys-tarfile "$deb" 2>/dev/null | python3 -c '
import sys, tarfile
outer = tarfile.open(fileobj=sys.stdin.buffer, mode="r|")
for m in outer:
    if m.name.endswith(".tar.xz") and "/usr/src/linux-source-" in "/" + m.name.lstrip("./"):
        inner = tarfile.open(fileobj=outer.extractfile(m), mode="r|xz")
        for f in inner:
            if f.name.endswith("/samples/vfio-mdev/mtty.c"):
                sys.stdout.buffer.write(inner.extractfile(f).read())
                sys.exit(0)
sys.exit("mtty: no samples/vfio-mdev/mtty.c in the package")
' > "$src.tmp" || true
  # (python3 stops reading early, so dpkg-deb's status is not checked: the file is)
  [ -s "$src.tmp" ] || { echo "mtty: could not extract mtty.c from $deb" >&2; exit 1; }
  mv "$src.tmp" "$src"
  rm -rf "$apt_dir"  # the package lists and the package: only mtty.c is kept
fi
grep -q VFIO_MIGRATION_PRE_COPY "$src" ||
  { echo "mtty: the mtty sample of $version has no v2 migration with PRE_COPY (Linux 6.7+)" >&2; exit 1; }

b=$out/$kver
mkdir -p "$b"
ln -sf "$src" "$b/mtty.c"
[ "$(cat "$b/Kbuild" 2>/dev/null)" = 'obj-m := mtty.o' ] || echo 'obj-m := mtty.o' > "$b/Kbuild"
make -s -C "$kdir" M="$b" -j"$(nproc 2>/dev/null || echo 2)" modules >&2
echo "$b/mtty.ko"
