#!/usr/bin/env bash
# The cost of TLS for `mdevmig migrate` between two processes (BENCHMARKS.md, "migrate
# over TLS"): 64 MiB of device memory (two "full" instances on two 64 MiB sim parents),
# destination `--listen 127.0.0.1:0`, source `--to 127.0.0.1:PORT`, plain TCP against
# `--tls` (kernel TLS), with no workload and with 10% of device memory dirtied per second.
# Runs inside the lab:
#   tools/lab/lab.sh --name bench_migrate_tls --kmod-dir build/dev/kmod -- \
#       tests/bench/migration/lab_migrate_tls_bench.sh build/dev/tools/cli/mdevmig [RUNS]
set -euo pipefail
[ "${MDEVMIG_LAB:-}" = 1 ] || { echo "run me inside the lab (tools/lab/lab.sh)" >&2; exit 2; }
bin=$(realpath "$1")
runs=${2:-3}
here=$(cd "$(dirname "$0")" && pwd)
# The lab's module loader cannot load crypto modules on demand: load kernel TLS's own.
modprobe -a vfio vfio_iommu_type1 mdev $(modinfo -F depends "$MDEVMIG_KO" | tr , " ") tls gcm ghash_generic ctr
insmod "$MDEVMIG_KO"
ip link set lo up
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
work=$(mktemp -d)
"$here/../../unit/migration/make_tls_certs.sh" "$work/certs" >/dev/null

# One migration; prints the source's JSON report.
one() {  # MODE(plain|tls) WORKLOAD...
  local mode=$1 tls=() port=""
  shift
  [ "$mode" = tls ] && tls=(--tls "$work/certs/good")
  "$bin" migrate --listen 127.0.0.1:0 --to "$b" "${tls[@]}" --json > "$work/dst.json" 2> "$work/dst.err" &
  local dst=$!
  for _ in $(seq 600); do
    port=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$work/dst.err")
    [ -n "$port" ] && break
    sleep 0.1
  done
  "$bin" migrate --from "$a" --to "127.0.0.1:$port" "${tls[@]}" "$@" --json 2> "$work/src.err" ||
    { cat "$work/src.err" >&2; }
  wait "$dst" || cat "$work/dst.err" >&2
}

printf '%-6s %-6s %-4s %-10s %-6s %-8s %-8s %-9s %-9s %-8s %s\n' mode rate run channel iters total_s down_ms \
  pre_MiB/s stop_MiB/s tls_ms cipher
for rate in 0 10; do
  for run in $(seq 1 "$runs"); do
    for mode in plain tls; do
      if [ "$rate" = 0 ]; then wl=(--workload none); else wl=(--workload bar2 --dirty-rate "$rate"); fi
      out=$(one "$mode" "${wl[@]}")
      [ -n "$out" ] || { echo "$mode $rate% $run: failed"; continue; }
      python3 - "$mode" "$rate" "$run" "$out" <<'PY'
import json, sys
r = json.loads(sys.argv[4])
if "error" in r:
    print(f'{sys.argv[1]:<6} {sys.argv[2]+"%":<6} {sys.argv[3]:<4} failed: {r["error"]["message"]}')
    sys.exit(0)
b = r["bytes"]
mib = 2**20
pre = (b["precopy_device"] + b["precopy_guest"]) / mib / r["precopy_s"] if r["precopy_s"] > 0 else 0
stop = (b["stopcopy_device"] + b["stopcopy_guest"]) / mib / r["stopcopy_send_s"] if r["stopcopy_send_s"] > 0 else 0
t = r.get("tls") or {}
print(f'{sys.argv[1]:<6} {sys.argv[2]+"%":<6} {sys.argv[3]:<4} {r["channel"]:<10} {r["iterations"]:<6} '
      f'{r["total_s"]:<8.3f} {r["downtime_s"]*1000:<8.1f} {pre:<9.1f} {stop:<9.1f} '
      f'{t.get("setup_s", 0)*1000:<8.1f} {t.get("cipher", "-")}')
PY
    done
  done
done
echo 1 > "/sys/bus/mdev/devices/$a/remove"
echo 1 > "/sys/bus/mdev/devices/$b/remove"
rm -rf "$work"
rmmod mdevmig
