#!/usr/bin/env bash
# Runs uapi_fuzz_lab in one lab boot (tools/lab/lab.sh + tests/lab/run-group.sh):
# the regression cases of tests/lab/fuzz/regressions/ first, then random sequences for
# --seconds (or $MDEVMIG_FUZZ_SECONDS) of guest time, then the leak check; the lab adds
# its WARN/oops/hang verdict.
#
#   tests/lab/fuzz/run-fuzz.sh [--build DIR] [--profile P] [--seconds N] [-- FUZZER ARGS...]
#
#   --build DIR      the CMake build tree (default build/dev): the fuzzer and mdevmig.ko
#   --kmod-dir DIR   where mdevmig.ko was built (default DIR/kmod)
#   --fuzzer PATH    the fuzzer executable (default DIR/tests/lab/fuzz/uapi_fuzz_lab)
#   --profile P      lab profile: bookworm (6.1), trixie (6.12), sid
#   --seconds N      fuzzing time; $MDEVMIG_FUZZ_SECONDS wins over it (default 150)
# Everything after -- goes to the fuzzer, e.g. a replay:
#   tests/lab/fuzz/run-fuzz.sh -- --seed 0x1234 --replay
# When the run fails, the last sequence it started is printed from the run's results
# folder (the kernel may have died in the middle of it).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../.." && pwd)
build=$top/build/dev kmod_dir= fuzzer= profile=${MDEVMIG_LAB_PROFILE:-bookworm} seconds=150
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --kmod-dir) kmod_dir=$2; shift 2 ;;
    --fuzzer) fuzzer=$2; shift 2 ;;
    --profile) profile=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "run-fuzz: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
seconds=${MDEVMIG_FUZZ_SECONDS:-$seconds}
[ -n "$kmod_dir" ] || kmod_dir=$build/kmod
[ -n "$fuzzer" ] || fuzzer=$build/tests/lab/fuzz/uapi_fuzz_lab
[ -x "$fuzzer" ] || { echo "run-fuzz: no fuzzer at $fuzzer (cmake --build $build --target uapi_fuzz_lab)" >&2; exit 2; }

# The boot's limit: the fuzzing time, plus boots, regression cases and the leak check
# on a loaded machine (the lab's job limit is a quarter less, at most 120 s less).
timeout=$((seconds + seconds / 4 + 360))
labdir=${MDEVMIG_LAB_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mdevmig-lab}
out=$labdir/runs/uapi_fuzz_lab-$(date +%Y%m%d-%H%M%S)-$$
mkdir -p "$out"
set +e
"$top/tools/lab/lab.sh" --name uapi_fuzz_lab --timeout "$timeout" --profile "$profile" \
  --kmod-dir "$kmod_dir" --out "$out" -- \
  "$top/tests/lab/run-group.sh" "$fuzzer" --seconds "$seconds" --regressions "$here/regressions" "$@"
rc=$?
set -e
if [ "$rc" -ne 0 ] && [ -f "$out/fuzz-current.txt" ]; then
  echo "run-fuzz: the last sequence started (replay: tests/lab/fuzz/run-fuzz.sh -- --case FILE, or --seed S --replay):"
  head -n 1 "$out/fuzz-current.txt"
  echo "run-fuzz: its case file: $out/fuzz-current.txt"
fi
exit "$rc"
