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

# The lab root of PROFILE (tools/lab/mkroot.sh builds it once, then reuses it).
profile_root() {
  "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tools/lab/mkroot.sh" "$1"
}

# Unmounts what profile_run mounts in ROOT. Callers also run it from an EXIT trap, so a
# signal cannot leave the project mounted inside the root (mkroot.sh refuses to touch a
# root with mounts inside).
profile_unmount() {
  local root=$1 top
  top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  # (|| true: callers may run under set -e, which applies inside their EXIT trap too)
  umount "$root/proc" 2>/dev/null || true
  umount "$root$top" 2>/dev/null || true
}

# Runs the bash command line CMD inside ROOT, in the project directory, which is
# bind-mounted into the root at its own path for the duration, with /proc mounted.
# Returns CMD's status.
profile_run() {
  local root=$1 cmd=$2 top rc
  top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  mkdir -p "$root$top"
  mount --bind "$top" "$root$top" || return 1
  mount -t proc proc "$root/proc" || { profile_unmount "$root"; return 1; }
  chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
    bash -c "cd '$top' && $cmd"
  rc=$?
  profile_unmount "$root"
  return $rc
}

# Builds the tree and mdevmig.ko for the kernel of PROFILE inside its ROOT, into
# build/PROFILE.
profile_build() {
  local root=$1 profile=$2
  profile_run "$root" "cmake -S . -B build/$profile -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
-DMDEVMIG_LAB_PROFILE=$profile >/dev/null && cmake --build build/$profile -j\$(nproc) && \
cmake --build build/$profile --target kmod"
}
