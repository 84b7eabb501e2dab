#!/usr/bin/env bash
# The QEMU that runs a lab whose guest runs KVM (the real guest, tests/lab/guest): the
# installed qemu-system-x86's Debian source, with two fixes to its emulation of AMD's SVM,
# built once (about 3 minutes on 2 cores) into the lab folder:
#
#   tools/lab/qemu.sh        builds it if missing; prints the path of its qemu-system-x86_64
#
# The first fix. When VMRUN injects an interrupt (EVENTINJ, type INTR), QEMU's TCG delivers it
# at once but leaves its vector as the vCPU's pending exception number. The next time the
# vCPU leaves its execution loop on a plain exit request (a TLB flush another thread
# queued for it, a round-robin switch) before anything else replaced that number, QEMU
# delivers the vector again, as an exception, wherever the nested guest then is: a
# spurious interrupt that ignores the guest's IF. Mostly that is one timer interrupt too
# many; but an interrupt injected while the guest ran in user mode starts on its entry
# code, and a second delivery there (before SWAPGS) runs the kernel on the user's GS:
# Linux dies of recursive page faults (BUG: ENTRY_TRAMPOLINE stack guard page) and
# reboots, or triple-faults. That was one cause of the nested guest's "resets" (README.md
# of tests/lab/guest, "Status"). QEMU 7.2 and 10.0 both have it; under single-threaded TCG
# (which exits its loop at every switch) a quarter of the guest's scenarios died of it,
# none with the fix. The fix forgets the vector once it is delivered, as every other
# delivery path does.
#
# The second fix (revision 2). Once an event is delivered in the guest, QEMU clears only
# the valid bit of the VMCB's EVENTINJ and copies the field into EXITINTINFO at the next
# #VMEXIT: a vector and type with the valid bit clear, where hardware reports 0 (no event
# in flight). KVM in 6.1 and 6.12 looks at the valid bit; 7.2's looks at the type
# (svm_check_emulate_instruction) and takes any nested page fault that needs emulation
# for a fault during event delivery, which it refuses to emulate: the nested QEMU stops
# with "KVM internal error. Suberror: 3". The sid profile's guest (kernel 7.2) stopped
# so on a store to BAR2 while its mappings were being switched. The fix clears the whole
# field.
#
# Built for the lab only: x86_64 system emulation, TCG, 9p (the lab's root), no tools or
# documentation; firmware from the installed packages, where Debian's own build finds it
# (a firmware path outside the build's prefix stays absolute wherever the binary is).
# Needs the build dependencies scripts/setup.sh --lab installs, and deb-src access to
# the archive the machine's apt sources name (derived from them, in a private apt state).
set -euo pipefail
labdir=${MDEVMIG_LAB_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mdevmig-lab}
# Bumped whenever what this script changes in the source changes.
revision=2
version=$(dpkg-query -W -f '${source:Version}' qemu-system-x86 2>/dev/null || true)
[ -n "$version" ] || { echo "qemu.sh: qemu-system-x86 is not installed (scripts/setup.sh --lab)" >&2; exit 1; }
out=$labdir/qemu/${version//:/_}-mdevmig$revision
bin=$out/qemu-system-x86_64
mkdir -p "$labdir/qemu"
# One build at a time: the test command's two lab stages may ask at once.
exec 9>"$labdir/qemu/lock"
flock 9
if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi

work=$labdir/qemu/build
rm -rf "$work"
mkdir -p "$work/src"
trap 'rm -rf "$work"' EXIT
echo "qemu.sh: building the lab's QEMU from Debian's qemu $version (once, into $out)" >&2
. "$(dirname "$0")/../../scripts/lib.sh"
private_apt "$work/apt" --src
apt-get "${apto[@]}" update >&2
# Downloads and unpacks with Debian's patches applied (dpkg-source).
(cd "$work/src" && apt-get "${apto[@]}" source "qemu=$version" >/dev/null)
src=$(ls -d "$work"/src/qemu-*/ | head -n1)
[ -d "$src" ] || { echo "qemu.sh: apt-get source qemu=$version gave no source tree" >&2; exit 1; }

# edit FILE ANCHOR NEW: the one line that is exactly ANCHOR (leading blanks aside) gets
# NEW after it; any other count of such lines stops the build (the source moved on).
edit() {
  python3 - "$@" <<'EOF'
import sys
path, anchor, new = sys.argv[1:]
lines = open(path).read().split("\n")
hits = [i for i, l in enumerate(lines) if l.strip() == anchor]
if len(hits) != 1:
    sys.exit(f"qemu.sh: {path}: {len(hits)} lines are '{anchor}', want 1")
indent = lines[hits[0]][: len(lines[hits[0]]) - len(lines[hits[0]].lstrip())]
lines.insert(hits[0] + 1, indent + new)
open(path, "w").write("\n".join(lines))
EOF
}
# The first fix (see the top): after the injected interrupt's delivery in helper_vmrun.
edit "$src/target/i386/tcg/sysemu/svm_helper.c" 'do_interrupt_x86_hardirq(env, vector, 1);' \
  'cs->exception_index = -1;  /* mdevmig lab: delivered; do not deliver it again */'
# The second fix: after do_interrupt_all clears the delivered event's valid bit.
edit "$src/target/i386/tcg/seg_helper.c" 'event_inj & ~SVM_EVTINJ_VALID);' \
  'x86_stl_phys(cs, env->vm_vmcb + offsetof(struct vmcb, control.event_inj), 0);  /* mdevmig lab: nothing in flight */'
# Debian's source has no firmware images: nothing to unpack.
edit "$src/meson.build" 'unpack_edk2_blobs = bzip2.found()' 'unpack_edk2_blobs = false'

mkdir -p "$src/build"
(cd "$src/build" &&
 ../configure --prefix="$out" --firmwarepath=/usr/share/qemu:/usr/share/seabios:/usr/lib/ipxe/qemu \
   --target-list=x86_64-softmmu --without-default-features --enable-tcg --enable-virtfs \
   --enable-attr --enable-cap-ng --enable-fdt=system --disable-docs --disable-install-blobs \
   > "$work/configure.log" 2>&1 || { tail -n 20 "$work/configure.log" >&2; exit 1; }
 make -j"$(nproc)" qemu-system-x86_64 > "$work/build.log" 2>&1 || { tail -n 20 "$work/build.log" >&2; exit 1; })
mkdir -p "$out"
cp "$src/build/qemu-system-x86_64" "$bin.tmp"
mv "$bin.tmp" "$bin"
echo "$bin"
