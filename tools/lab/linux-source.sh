#!/usr/bin/env bash
# Files from the Debian source of a kernel, for test modules built out of tree from it
# (the kernel's mtty sample, dmatest):
#
#   tools/lab/linux-source.sh OUTDIR KVER PATH...      -> prints OUTDIR/<version>
#
# Extracts each PATH (relative to the kernel tree, e.g. drivers/dma/dmatest.c) from
# Debian's linux-source-<major.minor> package of linux-headers-KVER's version into
# OUTDIR/<version>/<basename of PATH>. The package is fetched once with apt-get through
# OUTDIR/apt (its own lists and cache, so the system's apt state is not touched; removed
# afterwards); files already extracted are not fetched again. Run it where the kernel's
# headers and apt sources are, i.e. inside the profile's root for a modern profile.
set -euo pipefail
out=${1:?usage: linux-source.sh OUTDIR KVER PATH...}
kver=${2:?usage: linux-source.sh OUTDIR KVER PATH...}
shift 2
[ $# -gt 0 ] || { echo "usage: linux-source.sh OUTDIR KVER PATH..." >&2; exit 2; }

series=$(sed -E 's/^([0-9]+\.[0-9]+).*/\1/' <<<"$kver")
pkg=linux-source-$series
version=$(dpkg-query -W -f '${source:Version}' "linux-headers-$kver" 2>/dev/null || true)
[ -n "$version" ] || { echo "linux-source: linux-headers-$kver is not a Debian package; cannot tell which source to use" >&2; exit 1; }
dir=$out/$version
missing=()
for p in "$@"; do [ -s "$dir/$(basename "$p")" ] || missing+=("$p"); done
if [ ${#missing[@]} -eq 0 ]; then
  echo "$dir"
  exit 0
fi

echo "linux-source: fetching $pkg $version for ${missing[*]} (once)" >&2
apt_dir=$out/apt
trap 'rm -rf "$apt_dir"' EXIT  # the package lists and the package: only the files are kept
mkdir -p "$apt_dir/deb" "$dir"
. "$(dirname "$0")/../../scripts/lib.sh"
private_apt "$apt_dir"
apt-get "${apto[@]}" update >&2
# The headers' exact version, else what the archive has now (the files rarely change
# within a stable series).
(cd "$apt_dir/deb" &&
 { apt-get "${apto[@]}" download "$pkg=$version" >&2 2>/dev/null ||
   { echo "linux-source: $pkg $version not in the archive; using its current $pkg" >&2
     apt-get "${apto[@]}" download "$pkg" >&2; }; })
deb=$(ls "$apt_dir"/deb/"$pkg"_*.deb | head -n1)
# The package holds /usr/src/linux-source-X.Y.tar.xz; stream it and stop once every
# file is out. (python3 stops reading early, so dpkg-deb's status is not checked: the
# files are.)
dpkg-deb --fsys-tarfile "$deb" 2>/dev/null | python3 -c '
import os, sys, tarfile
dest, wanted = sys.argv[1], set(sys.argv[2:])
outer = tarfile.open(fileobj=sys.stdin.buffer, mode="r|")
for m in outer:
    if m.name.endswith(".tar.xz") and "/usr/src/linux-source-" in "/" + m.name.lstrip("./"):
        inner = tarfile.open(fileobj=outer.extractfile(m), mode="r|xz")
        for f in inner:
            rel = f.name.split("/", 1)[-1]
            if rel in wanted:
                path = os.path.join(dest, os.path.basename(rel))
                with open(path + ".tmp", "wb") as w:
                    w.write(inner.extractfile(f).read())
                os.replace(path + ".tmp", path)
                wanted.discard(rel)
                if not wanted:
                    sys.exit(0)
        break
sys.exit("linux-source: not in the package: " + " ".join(sorted(wanted)))
' "$dir" "${missing[@]}" || true
for p in "${missing[@]}"; do
  [ -s "$dir/$(basename "$p")" ] || { echo "linux-source: could not extract $p from $deb" >&2; exit 1; }
done
echo "$dir"
