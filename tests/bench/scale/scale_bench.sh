#!/usr/bin/env bash
# Scale of one migration (issue 16, item 4): `mdevmig migrate` of one instance with 16,
# 64, 256 and 1024 MiB of device memory, and of 64 MiB beside 4 and 16 idle instances,
# each with the same BAR2 workload: 0.64 MiB (164 pages) dirtied per second, 1% of 64 MiB
# (the 1 GiB row runs last: it takes longest). One table: total
# time, downtime, bytes per phase, the kernel memory the migration holds (peak Slab and
# VmallocUsed of /proc/meminfo during the run, less their values before it; and what is
# left after it), and the dirty bitmaps the module keeps (BENCHMARKS.md, "Scale").
#
# One command, on the host:
#   tests/bench/scale/scale_bench.sh [--sizes "MIB ..."] build/dev [PROFILE]
# PROFILE: bookworm (default, 6.1, v1 region) or trixie (6.12, v2 data_fd; needs
# build/trixie from scripts/test-profile.sh or a build inside the root).
# --sizes: only one-instance rows of these sizes in MiB, in this order (powers of two up
# to 4096, the module's largest sim parent), e.g. --sizes 4096 for the 4 GiB row.
# Each row holds a source and a destination parent of its size at once, so the lab gets
# twice the largest size plus 2 GiB of RAM, at least 4 GiB (the default rows: 4 GiB; the
# 4 GiB row: 10 GiB, which the host must have free).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../.." && pwd)

if [ "${MDEVMIG_LAB:-}" != 1 ]; then
  usage="usage: scale_bench.sh [--sizes \"MIB ...\"] BUILD_DIR [PROFILE]"
  rows=(16:0 64:0 256:0 64:4 64:16 1024:0) sizes=()
  if [ "${1:-}" = --sizes ]; then
    [ $# -ge 2 ] || { echo "$usage" >&2; exit 2; }
    read -ra sizes <<< "$2"
    shift 2
    [ ${#sizes[@]} -gt 0 ] || { echo "scale_bench.sh: --sizes: no size given" >&2; exit 2; }
    rows=()
    for mib in "${sizes[@]}"; do
      if ! [[ $mib =~ ^[0-9]+$ ]] || ((mib < 1 || mib > 4096 || (mib & (mib - 1)))); then
        echo "scale_bench.sh: --sizes: '$mib' is not a power of two from 1 to 4096 (MiB)" >&2
        exit 2
      fi
      rows+=("$mib:0")
    done
  fi
  build=$(realpath "${1:?$usage}")
  profile=${2:-bookworm}
  # RAM: both parents of the largest row, 2 GiB for the rest; time: 1 s per MiB moved
  # beyond 20 minutes for the boot and setup, at least the 3000 s the default rows had.
  max=0 sum=0
  for r in "${rows[@]}"; do
    mib=${r%%:*}
    ((mib > max)) && max=$mib
    sum=$((sum + mib))
  done
  mem=$((2 * max + 2048)) timeout=$((1200 + sum))
  ((mem < 4096)) && mem=4096
  ((timeout < 3000)) && timeout=3000
  # The sim parents are zeroed when made, so the lab's RAM is all in use on the host:
  # a host short of it kills the lab (its OOM killer) mid-row. Checked for --sizes only,
  # so the default command runs as before.
  avail=$(awk '$1 == "MemAvailable:" { print int($2 / 1024) }' /proc/meminfo)
  if [ ${#sizes[@]} -gt 0 ] && ((avail < mem)); then
    echo "scale_bench.sh: the lab needs ${mem} MiB of RAM; the host has ${avail} MiB available" >&2
    exit 2
  fi
  echo "host load average before: $(cat /proc/loadavg)"
  echo "rows (MiB:idle): ${rows[*]}; lab RAM ${mem} MiB, timeout ${timeout} s"
  rc=0
  "$top/tools/lab/lab.sh" --name bench_scale --profile "$profile" --mem "${mem}M" \
    --timeout "$timeout" --kmod-dir "$build/kmod" -- \
    "$here/scale_bench.sh" "$build/tools/cli/mdevmig" "${rows[@]}" || rc=$?
  echo "host load average after: $(cat /proc/loadavg)"
  exit "$rc"
fi

# ---- inside the lab ----
bin=$(realpath "$1")
shift  # the rest: rows, MIB:IDLE
modprobe -a vfio vfio_iommu_type1 mdev $(modinfo -F depends "$MDEVMIG_KO" | tr , " ")
insmod "$MDEVMIG_KO"
sim=/sys/class/mdevmig
# The parent the module makes at load stays unused.

new_parent() {  # MIB -> the name of the new sim parent
  ls /sys/class/mdev_bus > /tmp/parents.before
  echo "$1" > "$sim/sim_add"
  ls /sys/class/mdev_bus | grep -vxF -f /tmp/parents.before | head -n1
}
mk() {  # PARENT TYPE -> uuid
  local u
  u=$(cat /proc/sys/kernel/random/uuid)
  echo "$u" > "/sys/class/mdev_bus/$1/mdev_supported_types/mdevmig-$2/create"
  echo "$u"
}
rm_inst() { echo 1 > "/sys/bus/mdev/devices/$1/remove"; }
rm_parent() { echo "$1" > "$sim/sim_remove"; }
meminfo() { awk '$1 == "Slab:" { s = $2 } $1 == "VmallocUsed:" { v = $2 } END { print s, v }' /proc/meminfo; }

printf '%-10s %-5s %-6s %-8s %-8s %-9s %-9s %-9s %-9s %-9s %-9s %-9s\n' \
  device idle iters total_s down_ms pre_MiB stop_MiB slab_KiB vmall_KiB slab_left vmall_left bitmap_KiB
run() {  # MIB IDLE
  local mib=$1 idle=$2 pa pb a b extra=() idle_parents=() ip i base peak left out
  pa=$(new_parent "$mib")
  pb=$(new_parent "$mib")
  a=$(mk "$pa" full)
  b=$(mk "$pb" full)
  # Idle instances: eighths of 64 MiB parents, created and never opened.
  for ((i = 0; i < idle; i += 8)); do idle_parents+=("$(new_parent 64)"); done
  for ((i = 0; i < idle; i++)); do extra+=("$(mk "${idle_parents[$((i / 8))]}" eighth)"); done
  sync
  echo 3 > /proc/sys/vm/drop_caches
  sleep 1
  base=$(meminfo)
  # The peak while the migration runs, sampled every 20 ms.
  rm -f /tmp/sampler.ready
  python3 - > /tmp/peak <<'PY' &
import sys, time, signal
peak = [0, 0]
stop = False
def end(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, end)
open("/tmp/sampler.ready", "w").close()
while not stop:
    with open("/proc/meminfo") as f:
        m = dict(l.split()[:2] for l in f)
    peak[0] = max(peak[0], int(m["Slab:"]))
    peak[1] = max(peak[1], int(m["VmallocUsed:"]))
    time.sleep(0.02)
print(peak[0], peak[1])
PY
  sampler=$!
  # Python starts slowly under TCG: a TERM before its handler is in would lose the peak.
  while [ ! -e /tmp/sampler.ready ]; do sleep 0.1; done
  rm -f /tmp/sampler.ready
  # --dirty-rate is a share of device memory: 64 / MIB percent is 0.64 MiB/s.
  out=$("$bin" migrate --from "$a" --to "$b" --workload bar2 \
    --dirty-rate "$(awk -v m="$mib" 'BEGIN { print 64 / m }')" --json 2>/dev/null)
  kill -TERM "$sampler"
  wait "$sampler" || true
  peak=$(cat /tmp/peak)
  # What the migration still holds once it has ended (instances and parents still there).
  sync
  echo 3 > /proc/sys/vm/drop_caches
  sleep 1
  left=$(meminfo)
  rm_inst "$a"
  rm_inst "$b"
  for i in "${extra[@]}"; do rm_inst "$i"; done
  rm_parent "$pa"
  rm_parent "$pb"
  for ip in "${idle_parents[@]}"; do rm_parent "$ip"; done
  python3 - "$mib" "$idle" "$base" "$peak" "$left" "$out" <<'PY'
import json, sys
mib, idle = int(sys.argv[1]), int(sys.argv[2])
base, peak, left = ([int(x) for x in a.split()] for a in sys.argv[3:6])
r = json.loads(sys.argv[6])
b = r["bytes"]
pages = mib << 8
# The module's dirty bitmaps, one bit per 4 KiB page: per instance `dirty` and
# `pte_dirty` (kmod/mem.c), per save session `to_send` (kmod/mig.c).
bitmap_kib = pages / 8 / 1024
print(f'{str(mib) + " MiB":<10} {idle:<5} {r["iterations"]:<6} {r["total_s"]:<8.2f} '
      f'{r["downtime_s"] * 1000:<8.1f} {b["precopy_device"] / 2**20:<9.1f} '
      f'{b["stopcopy_device"] / 2**20:<9.2f} {peak[0] - base[0]:<9} {peak[1] - base[1]:<9} '
      f'{left[0] - base[0]:<9} {left[1] - base[1]:<10} 3 x {bitmap_kib:g}')
PY
}
for r in "$@"; do run "${r%%:*}" "${r#*:}"; done
rmmod mdevmig
