#!/usr/bin/env bash
# Runs the tests on a modern lab profile:  scripts/test-profile.sh trixie|sid
#   1. builds (or reuses) the profile's root (tools/lab/mkroot.sh)
#   2. builds the tree and mdevmig.ko inside that root, into build/<profile>
#   3. runs the unit tests inside the root, then the lab and QEMU end-to-end groups
#      booting its kernel (the root's QEMU, >= 10, migrates through v2)
# Prints a closing "tests: N passed, N failed[, N skipped]" line. MDEVMIG_PROFILE_TESTS=REGEX limits the
# lab stage to the tests whose names match (ctest -R), e.g. while working on one group;
# MDEVMIG_PROFILE_LABELS=REGEX picks the labels (ctest -L).
set -uo pipefail
profile=${1:?usage: test-profile.sh trixie|sid}
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/lib.sh"
root=$(profile_root "$profile") || exit 1
trap 'exit 130' INT TERM

passed=0 failed=0 skipped=0
echo "=== $profile: build"
profile_build "$root" "$profile" ||
  { echo "=== $profile: build FAILED"; echo "tests: 0 passed, 1 failed"; exit 1; }
log=$(mktemp)
echo "=== $profile: unit tests (in the root)"
profile_run "$root" "ctest --test-dir build/$profile -L unit --output-on-failure" 2>&1 | tee "$log"
tally_ctest "$log"
echo "=== $profile: lab and QEMU tests (its kernel, its QEMU)"
ctest --test-dir "$top/build/$profile" -L "${MDEVMIG_PROFILE_LABELS:-^(lab|qemu)\$}" \
  ${MDEVMIG_PROFILE_TESTS:+-R "$MDEVMIG_PROFILE_TESTS"} --output-on-failure 2>&1 | tee "$log"
tally_ctest "$log"
rm -f "$log"
echo "tests: $passed passed, $failed failed$([ "$skipped" -eq 0 ] || echo ", $skipped skipped")"
[ "$failed" -eq 0 ]
