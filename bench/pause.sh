#!/usr/bin/env bash
# A slow member is not deposed: a 3-member cluster with etcd's default timers (heartbeat 100 ms,
# election 1000 ms) — etcdeck nodes, or with SERVER=etcd Debian's etcd — takes a put every 100 ms
# while, every 1–3 s for SECS seconds (default 600), one member picked at random (the leader as
# often as the others) is stopped with SIGSTOP for 500 ms and continued. Prints the pauses made, each
# member's raft term and etcd_server_leader_changes_seen_total before and after, and the puts that
# failed.
#
#   bench/pause.sh
#   SECS=60 SERVER=etcd bench/pause.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
SECS=${SECS:-600}
need_tools etcdctl python3 curl
pick_server
members_workdir

read -r -a ports <<<"$(free_ports 6)"
cluster=""
for i in 1 2 3; do cluster+="${cluster:+,}n$i=http://127.0.0.$i:${ports[$((i + 2))]}"; done
client() { echo "http://127.0.0.$1:${ports[$(($1 - 1))]}"; }
for i in 1 2 3; do
  peer="http://127.0.0.$i:${ports[$((i + 2))]}"
  "${server[@]}" --name "n$i" --data-dir "$work/n$i" --listen-client-urls "$(client "$i")" \
    --advertise-client-urls "$(client "$i")" --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
    --initial-cluster "$cluster" --initial-cluster-token "pause-$$" >>"$work/n$i.log" 2>&1 &
  pids+=($!)
done
all="$(client 1),$(client 2),$(client 3)"
wait_healthy "$all"
sleep 2

# "term leader-changes" of member I.
vitals() {
  local term changes
  term=$(ETCDCTL_API=3 etcdctl --endpoints="$(client "$1")" endpoint status -w json |
    python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Status"]["header"]["raft_term"])')
  changes=$(curl -s "$(client "$1")/metrics" | awk '/^etcd_server_leader_changes_seen_total/ { print $2 }')
  echo "$term ${changes:-?}"
}
declare -a before
for i in 1 2 3; do before[i]=$(vitals "$i"); done

( # a put every 100 ms; the failures counted
  n=0; failed=0
  while [ ! -e "$work/stop" ]; do
    n=$((n + 1))
    ETCDCTL_API=3 etcdctl --endpoints="$all" --command-timeout=2s put "pause/$((n % 100))" "$n" >/dev/null 2>&1 ||
      failed=$((failed + 1))
    sleep 0.1
  done
  echo "$n $failed" >"$work/puts"
) &
load=$!

pauses=0
t0=$(date +%s)
while (( $(date +%s) - t0 < SECS )); do
  sleep "$(python3 -c 'import random; print(round(random.uniform(1, 3), 2))')"
  i=$(( RANDOM % 3 + 1 ))
  kill -STOP "${pids[$((i - 1))]}"
  sleep 0.5
  kill -CONT "${pids[$((i - 1))]}"
  pauses=$((pauses + 1))
done
touch "$work/stop"
wait "$load"
read -r puts failed <"$work/puts"
echo "$SERVER: $pauses pauses of 500 ms in $SECS s; $puts puts, $failed failed"
for i in 1 2 3; do
  read -r t0_ c0 <<<"${before[i]}"
  read -r t1 c1 <<<"$(vitals "$i")"
  echo "  n$i: raft term $t0_ -> $t1, leader changes seen $c0 -> $c1"
done
