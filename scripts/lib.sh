# Shell helpers shared by scripts/test.sh and scripts/test-profile.sh (sourced).

# Adds the last CTest summary in LOG ("N% tests passed, F tests failed out of T") to
# the caller's $passed and $failed. A log without one counts as one failure, unless
# CTest found no tests at all.
tally_ctest() {
  local line total fail
  line=$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$1" | tail -n1)
  if [ -n "$line" ]; then
    total=$(sed -E 's/.*out of ([0-9]+).*/\1/' <<<"$line")
    fail=$(sed -E 's/.*passed, ([0-9]+) tests? failed.*/\1/' <<<"$line")
    passed=$((passed + total - fail))
    failed=$((failed + fail))
  elif ! grep -q 'No tests were found' "$1"; then
    failed=$((failed + 1))
  fi
}
