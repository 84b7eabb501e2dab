#!/usr/bin/env bash
# Builds (or reuses) the lab's debug kernel:
#   tools/lab/mkdebugkernel.sh [--config-only]     -> prints the kernel's folder
#   tools/lab/mkdebugkernel.sh --kmod OUTDIR       builds mdevmig.ko for it: OUTDIR/KVER/
#   tools/lab/mkdebugkernel.sh --path              the folder, if built (else exit 1)
#
# The kernel is Debian's own 6.1 (the linux-source-6.1 package, fetched with apt-get
# download unless /usr/src/linux-source-6.1.tar.xz is installed) with Debian's
# configuration (this machine's /boot/config-6.1.*) trimmed the way localmodconfig
# does to the modules the lab loads, plus the kernel's own checkers: KASAN (generic,
# vmalloc too), lockdep (PROVE_LOCKING, with PROVE_RCU), DEBUG_ATOMIC_SLEEP,
# DEBUG_OBJECTS (free, timers, work, RCU heads, percpu counters) and KFENCE. Debug info
# and BTF are off and modules are not signed (they only cost build time here).
#
# The result is cached per machine under $MDEVMIG_LAB_DIR/debug-kernel/KVER-STAMP (like
# the profile roots of mkroot.sh) and rebuilt when the source package, the base config
# or this script changes. The folder holds boot/vmlinuz-KVER and boot/config-KVER,
# lib/modules/KVER (the modules), and build/ (the object tree: mdevmig.ko is built with
# make -C FOLDER/build M=...). tools/lab/lab.sh --profile debug boots it.
#
# --config-only stops after writing and checking the configuration (FOLDER/build/.config).
# The build runs at nice 19 on every core and takes long (see BENCHMARKS.md).
# --kmod runs kmod/build.sh in a private mount namespace whose /lib/modules holds only
# the debug kernel, so nothing on the machine changes.
set -euo pipefail
usage="usage: mkdebugkernel.sh [--config-only | --path | --kmod OUTDIR]"
config_only=0
here=$(cd "$(dirname "$0")" && pwd)
labdir=${MDEVMIG_LAB_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mdevmig-lab}
base=$labdir/debug-kernel
# The last kernel built: $base/current.
built() { [ -f "$base/current/.mdevmig-built" ] && (cd "$base/current" && pwd -P); }
case "${1:-}" in
  --config-only) config_only=1 ;;
  --path) built || exit 1; exit 0 ;;
  --kmod)
    outdir=${2:?$usage}
    mkdir -p "$outdir"
    outdir=$(cd "$outdir" && pwd)
    dest=$(built) || { echo "mkdebugkernel: no debug kernel built yet (run mkdebugkernel.sh)" >&2; exit 1; }
    kver=$(basename "$(ls -d "$dest"/lib/modules/*/)")
    exec unshare -m bash -c 'mount --make-rprivate / && mount --bind "$1/lib/modules" /lib/modules &&
      exec "$2/kmod/build.sh" "$3" "$4"' mkdebugkernel "$dest" "$(cd "$here/../.." && pwd)" "$outdir" "$kver" ;;
  "") ;;
  *) echo "mkdebugkernel: $usage" >&2; exit 2 ;;
esac
mkdir -p "$base"

# What building a kernel needs beyond the project's own build dependencies.
need=
for t in flex bison bc perl gcc make; do command -v "$t" >/dev/null || need+=" $t"; done
[ -r /usr/include/libelf.h ] || need+=" libelf-dev"
[ -r /usr/include/openssl/ssl.h ] || need+=" libssl-dev"
[ -z "$need" ] || { echo "mkdebugkernel: missing:$need (apt-get install flex bison bc libelf-dev libssl-dev)" >&2; exit 1; }

# The modules the lab loads: the initramfs's (virtio, 9p, overlay; see lab.sh), the
# VFIO stack run-group.sh loads, and what they depend on.
lab_modules="virtio virtio_ring virtio_pci virtio_pci_modern_dev virtio_pci_legacy_dev
9pnet 9pnet_virtio 9p netfs fscache overlay vfio vfio_iommu_type1 mdev"
# ... and their options, checked after the trimming.
lab_configs="VIRTIO_PCI NET_9P NET_9P_VIRTIO 9P_FS OVERLAY_FS VFIO VFIO_IOMMU_TYPE1 VFIO_MDEV"

# The checkers: each must be =y in the final configuration.
checkers="KASAN KASAN_GENERIC KASAN_VMALLOC PROVE_LOCKING PROVE_RCU DEBUG_ATOMIC_SLEEP
DEBUG_OBJECTS DEBUG_OBJECTS_FREE DEBUG_OBJECTS_TIMERS DEBUG_OBJECTS_WORK
DEBUG_OBJECTS_RCU_HEAD DEBUG_OBJECTS_PERCPU_COUNTER KFENCE DEBUG_LIST SLUB_DEBUG"

# --- the source ------------------------------------------------------------------------
tarball=/usr/src/linux-source-6.1.tar.xz
if [ ! -r "$tarball" ]; then
  deb=$(ls "$base"/linux-source-6.1_*.deb 2>/dev/null | sort -V | tail -n1 || true)
  if [ -z "$deb" ]; then
    echo "mkdebugkernel: fetching linux-source-6.1 (about 140 MB)" >&2
    (cd "$base" && apt-get download linux-source-6.1 >&2) ||
      { echo "mkdebugkernel: cannot download linux-source-6.1 (apt-get update?)" >&2; exit 1; }
    deb=$(ls "$base"/linux-source-6.1_*.deb | sort -V | tail -n1)
  fi
  if [ ! -r "$base/pkg/usr/src/linux-source-6.1.tar.xz" ] || [ "$deb" -nt "$base/pkg" ]; then
    rm -rf "$base/pkg"
    dpkg-deb -x "$deb" "$base/pkg"
  fi
  tarball=$base/pkg/usr/src/linux-source-6.1.tar.xz
fi

# Debian's configuration for 6.1: the newest installed 6.1 kernel's.
dconfig=$(ls /boot/config-6.1.* 2>/dev/null | sort -V | tail -n1 || true)
[ -n "$dconfig" ] || { echo "mkdebugkernel: no /boot/config-6.1.* (install linux-image-amd64)" >&2; exit 1; }

stamp=$( (sha1sum "$tarball" | cut -d' ' -f1; cat "$dconfig" "$0") | sha1sum | cut -c1-12)
src=$base/src-$(sha1sum "$tarball" | cut -c1-12)
if [ ! -f "$src/.mdevmig-extracted" ]; then
  echo "mkdebugkernel: unpacking $tarball" >&2
  rm -rf "$src" "$src.tmp"
  mkdir -p "$src.tmp"
  nice -n 19 tar -xJf "$tarball" -C "$src.tmp" --strip-components=1
  touch "$src.tmp/.mdevmig-extracted"
  mv "$src.tmp" "$src"
fi
kversion=$(make -s -C "$src" kernelversion)
kver=$kversion-mdevmig-debug
dest=$base/$kver-$stamp
obj=$dest/build

if [ -f "$dest/.mdevmig-built" ]; then
  ln -sfn "$(basename "$dest")" "$base/current"
  echo "$dest"
  exit 0
fi

# --- the configuration -----------------------------------------------------------------
# Folders of earlier configurations (another stamp) go, except the last kernel built.
for d in "$base"/*-mdevmig-debug-*; do
  if [ -d "$d" ] && [ "$d" != "$dest" ] && ! [ "$d" -ef "$base/current" ]; then rm -rf "$d"; fi
done
mkdir -p "$obj"
cp "$dconfig" "$obj/.config"
# localmodconfig reads lsmod's output: give it the lab's modules in that form.
{ echo "Module Size Used by"; for m in $lab_modules; do echo "$m 16384 0"; done; } > "$obj/lab.lsmod"
{ yes '' || true; } | make -s -C "$src" O="$obj" LSMOD="$obj/lab.lsmod" localmodconfig >"$obj/config.log" 2>&1 ||
  { echo "mkdebugkernel: localmodconfig failed (see $obj/config.log)" >&2; exit 1; }
cfg() { "$src/scripts/config" --file "$obj/.config" "$@"; }
cfg --set-str LOCALVERSION "-mdevmig-debug" --disable LOCALVERSION_AUTO \
    --disable DEBUG_INFO --disable DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT --disable DEBUG_INFO_BTF \
    --disable DEBUG_INFO_BTF_MODULES --enable DEBUG_INFO_NONE \
    --disable MODULE_SIG_ALL --set-str SYSTEM_TRUSTED_KEYS "" \
    --set-str SYSTEM_REVOCATION_KEYS "" \
    --enable KASAN --enable KASAN_GENERIC --enable KASAN_INLINE --enable KASAN_VMALLOC \
    --enable PROVE_LOCKING --enable PROVE_RCU --enable DEBUG_ATOMIC_SLEEP \
    --enable DEBUG_OBJECTS --enable DEBUG_OBJECTS_FREE --enable DEBUG_OBJECTS_TIMERS \
    --enable DEBUG_OBJECTS_WORK --enable DEBUG_OBJECTS_RCU_HEAD \
    --enable DEBUG_OBJECTS_PERCPU_COUNTER --set-val DEBUG_OBJECTS_ENABLE_DEFAULT 1 \
    --enable KFENCE --set-val KFENCE_SAMPLE_INTERVAL 10 --enable DEBUG_LIST
make -s -C "$src" O="$obj" olddefconfig >>"$obj/config.log" 2>&1 ||
  { echo "mkdebugkernel: olddefconfig failed (see $obj/config.log)" >&2; exit 1; }
missing=
for c in $checkers; do grep -q "^CONFIG_$c=y" "$obj/.config" || missing+=" $c"; done
[ -z "$missing" ] || { echo "mkdebugkernel: not in the configuration:$missing (see $obj/.config)" >&2; exit 1; }
for c in $lab_configs; do grep -qE "^CONFIG_$c=[ym]" "$obj/.config" || missing+=" $c"; done
[ -z "$missing" ] || { echo "mkdebugkernel: the lab's modules lost:$missing (see $obj/.config)" >&2; exit 1; }
modules=$(grep -c '=m$' "$obj/.config" || true)
echo "mkdebugkernel: $obj/.config: $modules modules, checkers on:$(echo $checkers | sed 's/^/ /')" >&2
if [ "$config_only" = 1 ]; then
  echo "$obj/.config"
  exit 0
fi

# --- the build -------------------------------------------------------------------------
jobs=$(nproc 2>/dev/null || echo 2)
echo "mkdebugkernel: building $kver with $jobs jobs at nice 19 (long: see BENCHMARKS.md)" >&2
start=$(date +%s)
nice -n 19 make -s -C "$src" O="$obj" -j"$jobs" bzImage modules >"$obj/build.log" 2>&1 ||
  { echo "mkdebugkernel: build failed (see $obj/build.log)" >&2; exit 1; }
rm -rf "$dest/lib" "$dest/boot"
nice -n 19 make -s -C "$src" O="$obj" INSTALL_MOD_PATH="$dest" INSTALL_MOD_STRIP=1 \
  DEPMOD=/sbin/depmod modules_install >>"$obj/build.log" 2>&1
mkdir -p "$dest/boot"
cp "$obj/arch/x86/boot/bzImage" "$dest/boot/vmlinuz-$kver"
cp "$obj/.config" "$dest/boot/config-$kver"
cp "$obj/System.map" "$dest/boot/System.map-$kver"
ln -sfn "$obj" "$dest/lib/modules/$kver/build"
echo "mkdebugkernel: built in $(( $(date +%s) - start )) s" >&2
touch "$dest/.mdevmig-built"
ln -sfn "$(basename "$dest")" "$base/current"
echo "$dest"
