# Shell helpers shared by scripts/test.sh, scripts/test-profile.sh and the lab test scripts (sourced).

# Adds the last CTest summary in LOG ("N% tests passed, F tests failed out of T") to
# the caller's $passed, $failed and $skipped. A log without one counts as one failure, unless
# CTest found no tests at all.
tally_ctest() {
  local line total fail skip
  line=$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$1" | tail -n1)
  if [ -n "$line" ]; then
    total=$(sed -E 's/.*out of ([0-9]+).*/\1/' <<<"$line")
    fail=$(sed -E 's/.*passed, ([0-9]+) tests? failed.*/\1/' <<<"$line")
    # ctest counts a skipped test (exit 77) as not failed: it is not passed either.
    skip=$(grep -cE '^[[:space:]]*[0-9]+ - .* \(Skipped\)$' "$1" || true)
    passed=$((passed + total - fail - skip))
    failed=$((failed + fail))
    skipped=$((${skipped:-0} + skip))
  elif ! grep -q 'No tests were found' "$1"; then
    failed=$((failed + 1))
  fi
}

# Sets the caller's array apto to apt-get options for a private apt state in DIR (its own
# package lists and cache, no lock), so that the system's apt state is not touched. With
# --src, apt reads its sources from DIR too: a deb-src entry for every deb entry of the
# machine's apt sources. Valid-Until is not checked, as in tools/lab/mkroot.sh: a
# snapshot's sid Release expires.
private_apt() {
  local dir=$1 src=${2:-} f n=0
  mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial"
  apto=(-o "Dir::State::Lists=$dir/lists" -o "Dir::Cache=$dir/cache" -o Debug::NoLocking=1
        -o APT::Sandbox::User=root -o Acquire::Check-Valid-Until=false -qq)
  [ "$src" = --src ] || return 0
  mkdir -p "$dir/sources.list.d"
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] && sed -nE 's/^deb([[:space:]])/deb-src\1/p' "$f"
  done > "$dir/sources.list"
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    { sed -E 's/^Types:.*/Types: deb-src/' "$f"; echo; } > "$dir/sources.list.d/src$((n++)).sources"
  done
  apto+=(-o "Dir::Etc::SourceList=$dir/sources.list" -o "Dir::Etc::SourceParts=$dir/sources.list.d")
}

# The lab root of PROFILE (tools/lab/mkroot.sh builds it once, then reuses it).
profile_root() {
  "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tools/lab/mkroot.sh" "$1"
}

# Runs the bash command line CMD inside ROOT, in the project directory, which is
# bind-mounted into the root at its own path, with /proc mounted. The mounts live in a
# mount namespace of their own: they go with the command (a signal cannot leave them
# behind, and mkroot.sh refuses a root with mounts inside), and runs from several
# checkouts at once do not see each other's. Returns CMD's status.
profile_run() {
  local root=$1 cmd=$2 top
  top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  mkdir -p "$root$top"
  unshare --mount --propagation private -- bash -c '
    mount --bind "$2" "$1$2" && mount -t proc proc "$1/proc" || exit 1
    exec chroot "$1" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
      bash -c "cd \"$2\" && $3"' profile-run "$root" "$top" "$cmd"
}

# Builds the tree and mdevmig.ko for the kernel of PROFILE inside its ROOT, into
# build/PROFILE.
profile_build() {
  local root=$1 profile=$2
  profile_run "$root" "cmake -S . -B build/$profile -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
-DMDEVMIG_LAB_PROFILE=$profile -DMDEVMIG_WERROR=ON >/dev/null && cmake --build build/$profile -j\$(nproc) && \
cmake --build build/$profile --target kmod"
}

# Builds the test-only kernel modules in SRCDIR (a Kbuild and its .c files) into
# WORKDIR/kmods for the kernel the lab boots in PROFILE (bookworm, debug, or a modern
# profile, whose kernel is built for inside its root: its build tools need its libc, and
# WORKDIR must then be inside the project, which the root sees at its host path).
build_test_kmods() {
  local src=$1 work=$2 profile=$3 top root= kroot= kver
  top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  case "$profile" in
    bookworm) ;;
    debug) kroot=$("$top/tools/lab/mkdebugkernel.sh" --path) || { echo "no debug kernel" >&2; return 1; } ;;
    *) root=$(profile_root "$profile") || { echo "no $profile root" >&2; return 1; }
       kroot=$root ;;
  esac
  kver=$(for k in "$kroot"/boot/vmlinuz-*; do k=${k##*/vmlinuz-}; [ -d "$kroot/lib/modules/$k/kernel" ] && echo "$k"; done | sort -V | tail -n1)
  mkdir -p "$work/kmods"
  cp "$src/Kbuild" "$src/"*.c "$work/kmods/"
  if [ -z "$root" ]; then
    make -s -C "$kroot/lib/modules/$kver/build" M="$work/kmods" modules >/dev/null 2>&1
  else
    case "$work" in "$top"/*) ;; *) echo "$work is not inside $top" >&2; return 1 ;; esac
    profile_run "$root" "make -s -C /lib/modules/$kver/build M=$work/kmods modules" >/dev/null 2>&1
  fi || { echo "cannot build the test modules in $src for $kver" >&2; return 1; }
}
