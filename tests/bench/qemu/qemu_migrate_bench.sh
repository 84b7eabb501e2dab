#!/usr/bin/env bash
# QEMU live migration of a VM with an mdevmig device, figures from query-migrate: total
# time, downtime, RAM and device bytes per phase, for 64 MiB and 256 MiB of device memory
# at several BAR2 dirty rates (BENCHMARKS.md, "QEMU end to end"). Runs inside the lab,
# with whatever QEMU the lab root has (7.2 on bookworm: v1; 10.0 on trixie: v2):
#   tools/lab/lab.sh --name bench_qemu --mem 3G --timeout 1800 --kmod-dir build/dev/kmod -- \
#       tests/bench/qemu/qemu_migrate_bench.sh build/dev/tools/cli/mdevmig [RUNS] [EXTRA qemu-migrate ARGS...]
# Prints one row per run and the rows as JSON lines at the end.
# Optional: MDEVMIG_BENCH_SIZES="64" and MDEVMIG_BENCH_WRITES="200" narrow the sweep
# (defaults "64 256" and "0 200 1000"); MDEVMIG_BENCH_RAW_DIR=DIR keeps each run's
# qemu-migrate --json report there as <MiB>-<writes>-<run>.json.
# MDEVMIG_BENCH_MODE=device-cost: instead of the sweep, what a 64 MiB instance adds to
# the migration of the same VM (BENCHMARKS.md, "What a 64 MiB device adds"): RUNS pairs of
# QEMU `migrate` of the harness's VM without the device, then with a 64 MiB "full"
# instance as vfio-pci, nothing else different (tests/bench/qemu/device_cost.py); its RAM
# is filled with MDEVMIG_BENCH_FILL MiB (default 96) of non-zero pages.
set -euo pipefail
[ "${MDEVMIG_LAB:-}" = 1 ] || { echo "run me inside the lab (tools/lab/lab.sh)" >&2; exit 2; }
bin=$(realpath "$1")
runs=${2:-2}
shift $(($# >= 2 ? 2 : $#))
extra=("$@")
modprobe -a vfio vfio_iommu_type1 mdev $(modinfo -F depends "$MDEVMIG_KO" | tr , " ")
insmod "$MDEVMIG_KO"
for mb in 64 256 256; do echo "$mb" > /sys/class/mdevmig/sim_add; done
# The default parent is 64 MiB: with the one added above, two 64 MiB "full" instances;
# the two 256 MiB parents give two 256 MiB ones.
parents_of() {
  for p in /sys/class/mdev_bus/mdevmig_sim*; do
    [ "$(cat "$p/mdev_supported_types/mdevmig-full/available_instances")" = 1 ] || continue
    size=$(sed -n 's/.* \([0-9]*\) MiB.*/\1/p' "$p/mdev_supported_types/mdevmig-full/description" | head -n1)
    if [ "$size" = "$1" ]; then basename "$p"; fi
  done
}
mk() {
  local u
  u=$(cat /proc/sys/kernel/random/uuid)
  echo "$u" > "/sys/class/mdev_bus/$1/mdev_supported_types/mdevmig-full/create"
  echo "$u"
}
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
qemu=$(qemu-system-x86_64 --version | head -n1)
echo "kernel $(uname -r); $qemu; extra args: ${extra[*]:-none}"
if [ "${MDEVMIG_BENCH_MODE:-}" = device-cost ]; then
  rows=()
  ps=($(parents_of 64))
  [ "${#ps[@]}" -ge 2 ] || { echo "no two free 64 MiB parents" >&2; exit 1; }
  a=$(mk "${ps[0]}")
  b=$(mk "${ps[1]}")
  dir=$(mktemp -d)
  trap 'rm -rf "$tmp" "$dir"' EXIT
  python3 -c 'import sys; open(sys.argv[1], "wb").write(b"\xf4" * 65536)' "$dir/bios.bin"
  # QEMU <= 7.2 speaks VFIO migration v1, >= 8.1 v2 (tools/qemu/process.h).
  ver=$(qemu-system-x86_64 --version | sed -n 's/.*version \([0-9]*\)\.\([0-9]*\).*/\1 \2/p' | head -n1)
  read -r major minor <<< "$ver"
  proto=v2
  [ $((major * 100 + minor)) -le 702 ] && proto=v1
  printf '%-8s %-3s %-6s %-9s %-8s %-8s %-7s %-9s %-9s %-9s\n' \
    device run proto total_ms down_ms setup_ms syncs ram_MiB wire_MiB dev_MiB
  for run in $(seq 1 "$runs"); do
    for dev in none 64MiB; do
      args=()
      [ "$dev" = none ] || args=(--src "$a" --dst "$b")
      rm -f "$dir"/*.qmp "$dir"/*.qtest "$dir"/*.mig
      row=$(python3 "$(dirname "$0")/device_cost.py" --dir "$dir" --bios "$dir/bios.bin" \
        --protocol "$proto" --fill-mb "${MDEVMIG_BENCH_FILL:-96}" "${args[@]}") || {
        echo "run failed: $dev, run $run: $row" >&2
        tail -n 20 "$dir"/src.log "$dir"/dst.log >&2
        exit 1
      }
      rows+=("$(python3 -c 'import json, sys; r = json.loads(sys.argv[1]); r["run"] = int(sys.argv[2]); r["protocol"] = sys.argv[3]; print(json.dumps(r))' "$row" "$run" "$proto")")
      python3 - "$row" "$dev" "$run" "$proto" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
MiB = 2**20
print(f'{sys.argv[2]:<8} {sys.argv[3]:<3} {sys.argv[4]:<6} {r["total_ms"]:<9} {r["downtime_ms"]:<8} '
      f'{r["setup_ms"]:<8} {r["ram_dirty_syncs"]:<7} {r["ram_bytes"] / MiB:<9.1f} '
      f'{r["wire_bytes"] / MiB:<9.1f} {max(r["wire_bytes"] - r["ram_bytes"], 0) / MiB:<9.1f}'
      f'{"" if r["verified"] else "  NOT VERIFIED"}')
PY
    done
  done
  echo 1 > "/sys/bus/mdev/devices/$a/remove"
  echo 1 > "/sys/bus/mdev/devices/$b/remove"
  printf '%s\n' "${rows[@]}"
  rmmod mdevmig
  exit 0
fi
rows=()
printf '%-8s %-6s %-3s %-6s %-6s %-6s %-9s %-8s %-7s %-9s %-9s %-9s %-9s %-9s %-8s %-8s\n' \
  device writes run proto iters syncs total_ms down_ms dirty/s ram_pre ram_down dev_pre dev_down dev_total ram_MB/s dev_MB/s
for mb in ${MDEVMIG_BENCH_SIZES:-64 256}; do
  ps=($(parents_of "$mb"))
  [ "${#ps[@]}" -ge 2 ] || { echo "no two free $mb MiB parents" >&2; exit 1; }
  a=$(mk "${ps[0]}")
  b=$(mk "${ps[1]}")
  for writes in ${MDEVMIG_BENCH_WRITES:-0 200 1000}; do
    for run in $(seq 1 "$runs"); do
      out=$("$bin" qemu-migrate --src "$a" --dst "$b" --writes "$writes" --dma 10 --passes 1 \
        --bandwidth 1G --downtime 300 --warmup 300 --after 200 --json "${extra[@]}" 2>/dev/null) || {
        echo "run failed: $mb MiB, $writes writes/s, run $run" >&2
        exit 1
      }
      [ -z "${MDEVMIG_BENCH_RAW_DIR:-}" ] || printf '%s\n' "$out" > "$MDEVMIG_BENCH_RAW_DIR/$mb-$writes-$run.json"
      # The report goes through a file: with many passes it outgrows one argument.
      printf '%s' "$out" > "$tmp"
      row=$(python3 - "$mb" "$writes" "$run" "$tmp" <<'PY'
import json, sys
mb, writes, run = sys.argv[1], sys.argv[2], sys.argv[3]
with open(sys.argv[4]) as f:
    r = json.load(f)
m = r["migration"]
ram, wire = m["ram"], m["wire"]
total_s = m["total_ms"] / 1000 or 1e-9
ram_pre, ram_down = ram["precopy_bytes"], ram["downtime_bytes"]
dev_pre = max(wire["precopy_bytes"] - ram_pre, 0)
dev_down = max(wire["downtime_bytes"] - ram_down, 0)
w = r["workload"]
dirty = w["bar2_writes"] / w["seconds"] if w["seconds"] else 0
MiB = 2**20
print(json.dumps({"device_mib": int(mb), "writes": int(writes), "run": int(run), "protocol": r["qemu"]["protocol"],
    "ram_dirty_syncs": ram["dirty_syncs"], "device_iterations": m["device"]["precopy_iterations"],
    "device_total_mib": m["device"]["bytes"] / MiB, "total_ms": m["total_ms"],
    "downtime_ms": m["downtime_ms"], "dirty_pages_per_s": round(dirty, 1), "ram_precopy_mib": ram_pre / MiB,
    "ram_downtime_mib": ram_down / MiB, "device_precopy_mib": dev_pre / MiB, "device_downtime_mib": dev_down / MiB,
    "ram_mb_s": (ram_pre + ram_down) / 1e6 / total_s, "device_mb_s": (dev_pre + dev_down) / 1e6 / total_s,
    "verified": r["ok"]}))
PY
)
      rows+=("$row")
      python3 - "$row" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
print(f'{str(r["device_mib"])+"MiB":<8} {r["writes"]:<6} {r["run"]:<3} {r["protocol"]:<6} {r["device_iterations"]:<6} '
      f'{r["ram_dirty_syncs"]:<6} '
      f'{r["total_ms"]:<9.0f} {r["downtime_ms"]:<8.0f} {r["dirty_pages_per_s"]:<7.0f} {r["ram_precopy_mib"]:<9.1f} '
      f'{r["ram_downtime_mib"]:<9.2f} {r["device_precopy_mib"]:<9.1f} {r["device_downtime_mib"]:<9.2f} '
      f'{r["device_total_mib"]:<9.1f} '
      f'{r["ram_mb_s"]:<8.1f} {r["device_mb_s"]:<8.1f}{"" if r["verified"] else "  NOT VERIFIED"}')
PY
    done
  done
  echo 1 > "/sys/bus/mdev/devices/$a/remove"
  echo 1 > "/sys/bus/mdev/devices/$b/remove"
done
printf '%s\n' "${rows[@]}"
rmmod mdevmig
