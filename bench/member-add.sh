#!/usr/bin/env bash
# Growing a loaded 3-member cluster by a learner, the runbook way: etcdeck nodes, or with SERVER=etcd
# Debian's etcd for comparison, etcd's default timers. Starts three members on loopback (127.0.0.1,
# .2, .3; data in a temp dir), writes KEYS keys (default 100000) with 256-byte values through
# `etcdeck bench put`, then `etcdctl member add n4 --learner`, starts n4 on 127.0.0.4 with
# --initial-cluster-state existing, and retries `etcdctl member promote` every 100 ms until the
# leader finds the learner caught up. Prints the database size and the times from the start of n4 to
# its first Status answer and to its promotion, and, for etcdeck, how n4 caught up (snapshot or log).
#
#   bench/member-add.sh
#   KEYS=300000 SERVER=etcd bench/member-add.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
KEYS=${KEYS:-100000}
need_tools etcdctl python3
pick_server

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

read -r -a ports <<<"$(free_ports 8)"
client() { echo "http://127.0.0.$1:${ports[$(($1 - 1))]}"; }
peer() { echo "http://127.0.0.$1:${ports[$(($1 + 3))]}"; }
cluster=""
for i in 1 2 3; do cluster+="${cluster:+,}n$i=$(peer "$i")"; done
start() { # member number, initial cluster, state
  "${server[@]}" --name "n$1" --data-dir "$work/n$1" --listen-client-urls "$(client "$1")" \
    --advertise-client-urls "$(client "$1")" --listen-peer-urls "$(peer "$1")" \
    --initial-advertise-peer-urls "$(peer "$1")" --initial-cluster "$2" --initial-cluster-state "$3" \
    --initial-cluster-token "member-add-$$" --quota-backend-bytes=8589934592 >>"$work/n$1.log" 2>&1 &
  pids+=($!)
}
for i in 1 2 3; do start "$i" "$cluster" new; done
three="$(client 1),$(client 2),$(client 3)"
wait_healthy "$three"
"$bin" bench put --endpoints "$three" --clients 64 --conns 8 --total "$KEYS" --key-size 16 \
  --key-space-size "$KEYS" --val-size 256 >/dev/null
db=$(ETCDCTL_API=3 etcdctl --endpoints="$(client 1)" endpoint status -w json |
  python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Status"]["dbSize"])')

# etcd refuses a member add until it has been connected to every voter for 5 s ("unhealthy cluster").
for _ in $(seq 150); do
  add=$(ETCDCTL_API=3 etcdctl --endpoints="$three" member add n4 --learner --peer-urls="$(peer 4)" 2>/dev/null) && break
  sleep 0.2
done
[ -n "${add:-}" ] || { echo "bench: member add kept failing" >&2; exit 1; }
id=$(echo "$add" | awk '/^Member/ { print $2 }')
initial=$(echo "$add" | sed -n 's/^ETCD_INITIAL_CLUSTER="\(.*\)"$/\1/p')
t0=$(date +%s%N)
start 4 "$initial" existing
until ETCDCTL_API=3 etcdctl --endpoints="$(client 4)" --command-timeout=500ms endpoint status >/dev/null 2>&1; do
  (( ($(date +%s%N) - t0) / 1000000 < 120000 )) || { echo "bench: n4 never answered" >&2; exit 1; }
  sleep 0.05
done
t_status=$(( ($(date +%s%N) - t0) / 1000000 ))
until ETCDCTL_API=3 etcdctl --endpoints="$three" member promote "$id" >/dev/null 2>&1; do
  (( ($(date +%s%N) - t0) / 1000000 < 120000 )) || { echo "bench: n4 never promotable" >&2; exit 1; }
  sleep 0.1
done
t_promote=$(( ($(date +%s%N) - t0) / 1000000 ))
how=$(grep -o "applied the leader's snapshot[^)]*)" "$work/n4.log" || echo "from the log")
made=$(cat "$work"/n[123].log | grep -o "made a snapshot[^)]*)" | head -1 || true)
[ -z "$made" ] || how="$how; the leader $made"
printf '%s: %d keys, db %s bytes; learner n4 answered Status %d ms after its start, promoted after %d ms (%s)\n' \
  "$SERVER" "$KEYS" "$db" "$t_status" "$t_promote" "$how"
