#!/usr/bin/env bash
# `mdevmig migrate` total time and downtime for 64 MiB of device memory (two "full"
# instances on two 64 MiB sim parents) at 0%, 1%, 10% and 30% of device memory dirtied per
# second by the BAR2 workload, on one host (BENCHMARKS.md, "Userspace migration").
# Runs inside the lab:
#   tools/lab/lab.sh --name bench_migrate --kmod-dir build/dev/kmod -- \
#       tests/bench/migration/lab_migrate_bench.sh build/dev/tools/cli/mdevmig [RUNS] [RATES]
# RATES: a space-separated list of percentages (default "0 1 10 30").
set -euo pipefail
[ "${MDEVMIG_LAB:-}" = 1 ] || { echo "run me inside the lab (tools/lab/lab.sh)" >&2; exit 2; }
bin=$(realpath "$1")
runs=${2:-3}
rates=${3:-0 1 10 30}
modprobe -a vfio vfio_iommu_type1 mdev $(modinfo -F depends "$MDEVMIG_KO" | tr , " ")
insmod "$MDEVMIG_KO"
echo 64 > /sys/class/mdevmig/sim_add
parents=($(ls /sys/class/mdev_bus | grep mdevmig_sim | sort))
mk() {
  local u
  u=$(cat /proc/sys/kernel/random/uuid)
  echo "$u" > "/sys/class/mdev_bus/$1/mdev_supported_types/mdevmig-full/create"
  echo "$u"
}
a=$(mk "${parents[0]}")
b=$(mk "${parents[1]}")
# est_ms: the policy's estimate when it decided, fixed_ms its fixed part; to_stop/send/rest:
# where the downtime went (decision to device stopped, then to the last byte sent, then the
# destination's load, commit and start, and the reply). dfin_ms: the destination's own
# estimate of its commit and start (sync answers; "-" from a destination without them);
# sc_MiBs: the stop-copy rate the estimate used, the bytes the destination's device took
# per second as its answers reached the source (engine::delivery_rate); infl_MiB: what
# the estimate took to be still on its way to the destination's device (syncs not yet
# answered).
printf '%-6s %-4s %-11s %-6s %-8s %-8s %-8s %-8s %-8s %-7s %-8s %-7s %-7s %-8s %-7s %-7s %s\n' rate run channel iters total_s \
  down_ms est_ms fixed_ms dfin_ms to_stop send_ms rest_ms sc_MiBs infl_MiB pre_MiB stop_MiB reason
for rate in $rates; do
  for run in $(seq 1 "$runs"); do
    if [ "$rate" = 0 ]; then wl=(--workload none); else wl=(--workload bar2 --dirty-rate "$rate"); fi
    out=$("$bin" migrate --from "$a" --to "$b" "${wl[@]}" --json 2>/dev/null)
    python3 - "$rate" "$run" "$out" <<'PY'
import json, sys
r = json.loads(sys.argv[3])
b = r["bytes"]
est = r["estimated_downtime_s"]
ms = lambda s: f'{s*1000:.1f}'
rest = r["downtime_s"] - r["decision_to_stop_s"] - r["stopcopy_send_s"]
dfin = ms(r["destination_finish_s"]) if r.get("precopy_sync") else "-"
sc = r.get("stopcopy_rate_bps", 0)
print(f'{sys.argv[1]+"%":<6} {sys.argv[2]:<4} {r["channel"]:<11} {r["iterations"]:<6} {r["total_s"]:<8.3f} '
      f'{ms(r["downtime_s"]):<8} {ms(est) if est is not None else "-":<8} {ms(r["switchover_fixed_s"]):<8} '
      f'{dfin:<8} {ms(r["decision_to_stop_s"]):<7} '
      f'{ms(r["stopcopy_send_s"]):<8} {ms(rest):<7} {sc/2**20 if sc else 0:<7.1f} '
      f'{r.get("in_flight_bytes", 0)/2**20:<8.2f} '
      f'{b["precopy_device"]/2**20:<7.1f} {b["stopcopy_device"]/2**20:<7.2f} '
      f'{r["switchover_reason"]}')
PY
  done
done
echo 1 > "/sys/bus/mdev/devices/$a/remove"
echo 1 > "/sys/bus/mdev/devices/$b/remove"
rmmod mdevmig
