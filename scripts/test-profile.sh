#!/usr/bin/env bash
# Runs the tests on a modern lab profile:  scripts/test-profile.sh trixie|sid
#   1. builds (or reuses) the profile's root (tools/lab/mkroot.sh)
#   2. builds the tree and mdevmig.ko inside that root, into build/<profile>
#   3. runs the unit tests inside the root, then the lab groups (not yet the QEMU
#      end-to-end ones) booting its kernel
# Prints a closing "tests: N passed, N failed" line.
set -uo pipefail
profile=${1:?usage: test-profile.sh trixie|sid}
top=$(cd "$(dirname "$0")/.." && pwd)
root=$("$top/tools/lab/mkroot.sh" "$profile") || exit 1
build=build/$profile
. "$top/scripts/lib.sh"

# The project is bind-mounted into the root at its own path for the build. The trap
# unmounts it whatever happens; mkroot.sh refuses to touch a root with mounts inside.
cleanup() {
  umount "$root/proc" 2>/dev/null
  umount "$root$top" 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$root$top"
mount --bind "$top" "$root$top" || exit 1
mount -t proc proc "$root/proc" || exit 1
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 bash -c "cd '$top' && $1"; }

passed=0 failed=0
echo "=== $profile: build"
in_root "cmake -S . -B $build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMDEVMIG_LAB_PROFILE=$profile >/dev/null && cmake --build $build -j\$(nproc) && cmake --build $build --target kmod" ||
  { echo "=== $profile: build FAILED"; echo "tests: 0 passed, 1 failed"; exit 1; }
log=$(mktemp)
echo "=== $profile: unit tests (in the root)"
in_root "ctest --test-dir $build -L unit --output-on-failure" 2>&1 | tee "$log"
tally_ctest "$log"
cleanup
echo "=== $profile: lab tests (its kernel)"
# Only the lab groups: the QEMU end-to-end tests drive QEMU 7.2's v1 protocol so far,
# and these profiles ship QEMU >= 10 (v2, enable-migration=on).
ctest --test-dir "$top/$build" -L '^lab$' --output-on-failure 2>&1 | tee "$log"
tally_ctest "$log"
rm -f "$log"
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
