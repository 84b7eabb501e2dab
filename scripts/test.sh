#!/usr/bin/env bash
# Runs every mdevmig test on a fresh or prepared Debian 12 machine:
#   1. installs what is missing (scripts/setup.sh --lab)
#   2. builds the tree (preset dev) and mdevmig.ko for the installed kernel
#   3. host unit tests, benchmarks as smoke tests, then the lab and QEMU groups (one VM
#      boot each)
#   4. unit tests again under ASan+UBSan (preset asan; builds only the unit tests)
#   5. libFuzzer targets for a bounded time (preset fuzz; builds only the fuzz targets)
#   6. the modern lab profiles in $MDEVMIG_PROFILES (default: trixie, i.e. Linux 6.12
#      and QEMU 10.0): build inside that release's root, unit tests there, lab and QEMU
#      groups booting its kernel with its QEMU (scripts/test-profile.sh)
# Stage 6 starts in the background once the dev tree and its module are built (its
# upgrade tests use them) and runs beside stages 3 to 5: a lab guest is one TCG thread,
# so a lab stage alone leaves the second core idle. Its output is kept in
# build/profiles-<profile>.log and printed when it is waited for, at the end.
# Prints per-stage timings and a closing "tests: N passed, N failed[, N skipped]" line.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
. scripts/lib.sh
jobs=${MDEVMIG_JOBS:-$(nproc)}

stage_names=() stage_secs=()
passed=0 failed=0 skipped=0 rc=0
stage() {  # stage NAME COMMAND...
  local name=$1; shift
  local t0=$EPOCHREALTIME
  echo "=== $name"
  "$@"; local r=$?
  stage_names+=("$name"); stage_secs+=("$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')")
  [ $r -eq 0 ] || { echo "=== $name: FAILED (exit $r)"; rc=1; }
  return $r
}
# ctest wrapper that adds its counts to the totals.
run_ctest() {  # run_ctest BUILD_DIR ARGS...
  local dir=$1; shift
  local log; log=$(mktemp)
  ctest --test-dir "$dir" --output-on-failure "$@" 2>&1 | tee "$log"
  local r=${PIPESTATUS[0]}
  tally_ctest "$log"
  rm -f "$log"
  return $r
}
# The profile runs, one after the other, in the background: each one's output in
# build/profiles-<profile>.log, its exit status and seconds in .rc and .secs beside it.
profiles=(${MDEVMIG_PROFILES-trixie})
start_profiles() {
  local p
  mkdir -p build
  for p in "${profiles[@]}"; do rm -f "build/profiles-$p".{log,rc,secs}; done
  (
    for p in "${profiles[@]}"; do
      t0=$EPOCHREALTIME
      bash scripts/test-profile.sh "$p" > "build/profiles-$p.log" 2>&1
      echo $? > "build/profiles-$p.rc"
      awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }' > "build/profiles-$p.secs"
    done
  ) &
  profiles_pid=$!
}
# A profile run's result, whose last line is "tests: N passed, N failed".
run_profile() {
  local log=build/profiles-$1.log
  wait "$profiles_pid" 2>/dev/null
  cat "$log"
  echo "=== profile $1 ran $(cat "build/profiles-$1.secs" 2>/dev/null || echo ?) s in the background"
  local r; r=$(cat "build/profiles-$1.rc" 2>/dev/null || echo 1)
  local line; line=$(grep -E '^tests: [0-9]+ passed, [0-9]+ failed' "$log" | tail -n1)
  if [ -n "$line" ]; then
    passed=$((passed + $(sed -E 's/tests: ([0-9]+) passed.*/\1/' <<<"$line")))
    failed=$((failed + $(sed -E 's/.*passed, ([0-9]+) failed.*/\1/' <<<"$line")))
    if [[ $line =~ ,\ ([0-9]+)\ skipped ]]; then skipped=$((skipped + BASH_REMATCH[1])); fi
  else
    failed=$((failed + 1))
  fi
  return "$r"
}
summary() {
  echo
  echo "=== stage timings"
  for i in "${!stage_names[@]}"; do printf '  %-28s %8ss\n' "${stage_names[$i]}" "${stage_secs[$i]}"; done
  echo "tests: $passed passed, $failed failed$([ "$skipped" -eq 0 ] || echo ", $skipped skipped")"
}
trap summary EXIT

stage setup bash scripts/setup.sh --lab || exit 1
stage "build (dev)" bash -c "cmake --preset dev >/dev/null && cmake --build --preset dev -j$jobs" || exit 1
stage "build mdevmig.ko" cmake --build --preset dev --target kmod || exit 1
start_profiles
stage "unit tests" run_ctest build/dev -L unit -j"$jobs"
stage "benchmarks (smoke)" run_ctest build/dev -L bench
stage "lab tests" run_ctest build/dev -L '^(lab|qemu)$'
stage "build (asan)" bash -c "cmake --preset asan >/dev/null && cmake --build --preset asan -j$jobs --target tests_unit" &&
  stage "unit tests (asan)" run_ctest build/asan -L unit -j"$jobs"
stage "build (fuzz)" bash -c "cmake --preset fuzz >/dev/null && cmake --build --preset fuzz -j$jobs --target tests_fuzz" &&
  stage "fuzz (bounded)" run_ctest build/fuzz -L fuzz
for p in "${profiles[@]}"; do
  stage "profile $p (wait)" run_profile "$p"
done
[ $failed -eq 0 ] || rc=1
exit $rc
