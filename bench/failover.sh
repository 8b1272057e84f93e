#!/usr/bin/env bash
# Leader failover on a 3-member cluster with etcd's default timers (heartbeat 100 ms, election
# 1000 ms): etcdeck nodes, or with SERVER=etcd Debian's etcd for comparison. Starts three members on
# loopback (127.0.0.1, .2 and .3, data in a temp
# dir), then RUNS times (default 10): finds the leader, kills it with SIGKILL, polls the other two
# every 20 ms until both name the same new leader, writes a key through them, and restarts the killed
# member. Prints each run's time from the kill to the agreed new leader, and min / median / max.
#
#   bench/failover.sh
#   RUNS=20 SERVER=etcd bench/failover.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
RUNS=${RUNS:-10}
need_tools etcdctl python3
pick_server

work=$(mktemp -d)
declare -A pid
cleanup() {
  for p in "${pid[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

read -r -a ports <<<"$(free_ports 6)"
cluster=""
for i in 1 2 3; do cluster+="${cluster:+,}n$i=http://127.0.0.$i:${ports[$((i + 2))]}"; done
client() { echo "http://127.0.0.$1:${ports[$(($1 - 1))]}"; }
start() {
  local i=$1 peer="http://127.0.0.$1:${ports[$(($1 + 2))]}"
  "${server[@]}" --name "n$i" --data-dir "$work/n$i" --listen-client-urls "$(client "$i")" \
    --advertise-client-urls "$(client "$i")" --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
    --initial-cluster "$cluster" --initial-cluster-token "failover-$$" >>"$work/n$i.log" 2>&1 &
  pid[$i]=$!
}
for i in 1 2 3; do start "$i"; done
wait_healthy "$(client 1),$(client 2),$(client 3)"

# "<member ID in hex> <leader ID in hex>" of one member, or nothing.
ids() {
  ETCDCTL_API=3 etcdctl --endpoints="$1" --command-timeout=500ms endpoint status -w json 2>/dev/null |
    python3 -c 'import json,sys
s = json.load(sys.stdin)[0]["Status"]
print("%x %x" % (s["header"]["member_id"], s["leader"]))' 2>/dev/null || true
}

times=()
for run in $(seq "$RUNS"); do
  leader=""
  for i in 1 2 3; do
    read -r me lead <<<"$(ids "$(client "$i")")"
    [ -n "${me:-}" ] && [ "$me" = "$lead" ] && leader=$i
  done
  [ -n "$leader" ] || { echo "run $run: no leader" >&2; exit 1; }
  rest=()
  for i in 1 2 3; do [ "$i" = "$leader" ] || rest+=("$i"); done
  old=$(ids "$(client "$leader")" | cut -d' ' -f2)
  kill -9 "${pid[$leader]}"; wait "${pid[$leader]}" 2>/dev/null || true
  t0=$(date +%s%N)
  while :; do
    a=$(ids "$(client "${rest[0]}")" | cut -d' ' -f2); b=$(ids "$(client "${rest[1]}")" | cut -d' ' -f2)
    if [ -n "$a" ] && [ "$a" = "$b" ] && [ "$a" != 0 ] && [ "$a" != "$old" ]; then break; fi
    (( ($(date +%s%N) - t0) / 1000000 < 20000 )) || { echo "run $run: no new leader in 20 s" >&2; exit 1; }
    sleep 0.02
  done
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  ETCDCTL_API=3 etcdctl --endpoints="$(client "${rest[0]}"),$(client "${rest[1]}")" put "failover/$run" x >/dev/null
  times+=("$ms")
  echo "run $run: new leader $a ${ms} ms after leader n$leader was killed"
  start "$leader"
  wait_healthy "$(client 1),$(client 2),$(client 3)"
done
printf '%s\n' "${times[@]}" | sort -n | awk -v server="$SERVER" '{ v[NR] = $1 } END { printf "%s failover, %d runs: min %d ms, median %d ms, max %d ms\n", server, NR, v[1], v[int((NR + 1) / 2)], v[NR] }'
