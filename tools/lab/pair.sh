#!/usr/bin/env bash
# The two-host lab: two lab guests (tools/lab/lab.sh), each with its own kernel, module
# and instances, joined by a network that exists only between their two QEMU processes
# (UDP socket netdevs over the host's 127.0.0.1; nothing is bridged or routed to a host
# interface), and a shared folder to rendezvous in. Host a is 192.0.2.1, host b is
# 192.0.2.2 (TEST-NET-1, reserved for documentation).
#
#   tools/lab/pair.sh [options] -- COMMAND [ARGS...] [--- COMMAND_B [ARGS...]]
#
# Both hosts run COMMAND (host b runs COMMAND_B when given: a host of another profile
# runs that profile's build), with MDEVMIG_LAB_ROLE (a or b), MDEVMIG_LAB_ADDR (its
# address), MDEVMIG_LAB_PEER (the other's) and MDEVMIG_LAB_SHARE (the shared folder) in
# the environment besides what lab.sh gives every job. The jobs run at the same time;
# the pair passes when both lab verdicts pass. When one host fails, pair.sh writes
# ROLE.failed (a.failed, b.failed) in the shared folder so the other's job can stop
# waiting for it; a job writes the same file when it fails. A job kills the other host
# the way a power cut would by writing ROLE.kill there (b.kill): pair.sh's side kills
# that guest's QEMU (lab.sh --kill-on), and that host's run passes if its kernel
# reported nothing until then.
#
# Options:
#   --name NAME                  label (default: pair); the hosts are NAME-a and NAME-b
#   --timeout SECONDS            each host's limit (default 900)
#   --mem SIZE                   each host's RAM (default 2G)
#   --profile-a P, --profile-b P each host's profile (default: $MDEVMIG_LAB_PROFILE or
#                                bookworm), e.g. bookworm on a and trixie on b
#   --kmod-dir-a D, --kmod-dir-b D
#                                where each host's mdevmig.ko was built
#   --out DIR                    results (DIR/a, DIR/b, DIR/share; default under
#                                $MDEVMIG_LAB_DIR/runs)
set -euo pipefail

name=pair timeout=900 mem=2G out=
profile_a=${MDEVMIG_LAB_PROFILE:-bookworm} profile_b=${MDEVMIG_LAB_PROFILE:-bookworm}
kmod_a= kmod_b=
while [ $# -gt 0 ]; do
  case "$1" in
    --name) name=$2; shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    --mem) mem=$2; shift 2 ;;
    --profile-a) profile_a=$2; shift 2 ;;
    --profile-b) profile_b=$2; shift 2 ;;
    --kmod-dir-a) kmod_a=$2; shift 2 ;;
    --kmod-dir-b) kmod_b=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "pair: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
cmd_a=() cmd_b=()
while [ $# -gt 0 ] && [ "$1" != --- ]; do cmd_a+=("$1"); shift; done
[ $# -eq 0 ] || { shift; cmd_b=("$@"); }
[ ${#cmd_a[@]} -gt 0 ] || { echo "pair: no command given (see --help)" >&2; exit 2; }
[ ${#cmd_b[@]} -gt 0 ] || cmd_b=("${cmd_a[@]}")

here=$(cd "$(dirname "$0")" && pwd)
labdir=${MDEVMIG_LAB_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mdevmig-lab}
[ -n "$out" ] || out=$labdir/runs/$name-$(date +%Y%m%d-%H%M%S)-$$
mkdir -p "$out/a" "$out/b" "$out/share"
out=$(cd "$out" && pwd)
rm -f "$out/share/"*

# Two free UDP ports on 127.0.0.1, one per host's end of the network.
bound() { ss -Hlun "sport = :$1" | grep -q .; }
ports=()
for _ in $(seq 100); do
  p=$((20000 + RANDOM % 40000))
  bound "$p" || [[ " ${ports[*]} " == *" $p "* ]] || ports+=("$p")
  [ ${#ports[@]} -lt 2 ] || break
done
[ ${#ports[@]} -eq 2 ] || { echo "pair: FAIL $name: no free UDP ports on 127.0.0.1"; exit 1; }

host() {  # ROLE PROFILE KMOD_DIR NET ADDR PEER COMMAND...
  local role=$1 profile=$2 kmod=$3 net=$4 addr=$5 peer=$6
  shift 6
  "$here/lab.sh" --name "$name-$role" --profile "$profile" --timeout "$timeout" --mem "$mem" \
    ${kmod:+--kmod-dir "$kmod"} --out "$out/$role" --net "$net" --addr "$addr/24" \
    --share "$out/share" --kill-on "$out/share/$role.kill" --env "MDEVMIG_LAB_ROLE=$role" \
    --env "MDEVMIG_LAB_ADDR=$addr" --env "MDEVMIG_LAB_PEER=$peer" -- "$@" > "$out/$role.log" 2>&1 && return 0
  local rc=$?
  # However this host failed (its job, its boot, its setup), the peer's job stops
  # waiting for it: the jobs' own protocol watches for ROLE.failed.
  : > "$out/share/$role.failed"
  return $rc
}

host a "$profile_a" "$kmod_a" "${ports[0]}:${ports[1]}" 192.0.2.1 192.0.2.2 "${cmd_a[@]}" &
pid_a=$!
host b "$profile_b" "$kmod_b" "${ports[1]}:${ports[0]}" 192.0.2.2 192.0.2.1 "${cmd_b[@]}" &
pid_b=$!
rc_a=0 rc_b=0
wait "$pid_a" || rc_a=$?
wait "$pid_b" || rc_b=$?
for r in a b; do
  echo "--- host $r ---"
  cat "$out/$r.log"
done
if [ "$rc_a" = 0 ] && [ "$rc_b" = 0 ]; then
  echo "pair: PASS $name ($profile_a -> $profile_b)"
  exit 0
fi
echo "pair: FAIL $name: host a rc=$rc_a, host b rc=$rc_b (see $out)"
exit 1
