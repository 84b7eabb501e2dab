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
# `qemu-migrate --no-device` (the harness's VM without the device), then `qemu-migrate`
# with a 64 MiB "full" instance as vfio-pci and no workload, nothing else different; the
# VM's RAM is filled with MDEVMIG_BENCH_FILL MiB (default 96) of non-zero pages. Raw
# reports (MDEVMIG_BENCH_RAW_DIR) are device-cost-<none|64MiB>-<run>.json.
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
  fill=${MDEVMIG_BENCH_FILL:-96}
  # One migration setting for both forms: switch over at once (no dirty pass waited
  # for), the VM's RAM filled; the device run has no workload (writes, DMA, warm-up
  # and after all 0), so nothing but the device's state differs.
  common=(--guest-fill "$fill" --bandwidth 1G --downtime 300 --passes 0 --json "${extra[@]}")
  printf '%-8s %-3s %-6s %-9s %-8s %-8s %-7s %-9s %-9s %-9s %-9s\n' \
    device run proto total_ms down_ms setup_ms syncs ram_MiB wire_MiB dev_MiB dev_ctr_MiB
  for run in $(seq 1 "$runs"); do
    for dev in none 64MiB; do
      if [ "$dev" = none ]; then
        args=(--no-device)
      else
        args=(--src "$a" --dst "$b" --writes 0 --dma 0 --warmup 0 --after 0)
      fi
      out=$("$bin" qemu-migrate "${args[@]}" "${common[@]}" 2>"$tmp.err") || {
        echo "run failed: $dev, run $run" >&2
        printf '%s\n' "$out" >&2
        tail -n 20 "$tmp.err" >&2
        exit 1
      }
      [ -z "${MDEVMIG_BENCH_RAW_DIR:-}" ] ||
        printf '%s\n' "$out" > "$MDEVMIG_BENCH_RAW_DIR/device-cost-$dev-$run.json"
      printf '%s' "$out" > "$tmp"
      row=$(python3 - "$dev" "$run" "$tmp" <<'PY'
import json, sys
dev, run = sys.argv[1], int(sys.argv[2])
with open(sys.argv[3]) as f:
    r = json.load(f)
m = r["migration"]
print(json.dumps({"device": dev != "none", "run": run, "protocol": r["qemu"]["protocol"] or "-",
    "status": m["status"], "error": m["error"], "total_ms": m["total_ms"],
    "downtime_ms": m["downtime_ms"], "setup_ms": m["setup_ms"],
    "ram_bytes": m["ram"]["transferred"], "ram_dirty_syncs": m["ram"]["dirty_syncs"],
    "wire_bytes": m["wire"]["bytes"], "device_bytes": m["device"]["bytes"],
    "verified": r["ok"]}))
PY
)
      rows+=("$row")
      python3 - "$row" "$dev" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
MiB = 2**20
print(f'{sys.argv[2]:<8} {r["run"]:<3} {r["protocol"]:<6} {r["total_ms"]:<9.0f} {r["downtime_ms"]:<8.0f} '
      f'{r["setup_ms"]:<8.0f} {r["ram_dirty_syncs"]:<7} {r["ram_bytes"] / MiB:<9.1f} '
      f'{r["wire_bytes"] / MiB:<9.1f} {max(r["wire_bytes"] - r["ram_bytes"], 0) / MiB:<9.1f} '
      f'{r["device_bytes"] / MiB:<9.1f}{"" if r["verified"] else "  NOT VERIFIED"}')
PY
    done
  done
  rm -f "$tmp.err"
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
