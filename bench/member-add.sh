#!/usr/bin/env bash
# Growing a loaded 3-member cluster by a learner, the runbook way: etcdeck nodes, or with SERVER=etcd
# Debian's etcd for comparison, etcd's default timers. Starts three members on loopback (127.0.0.1,
# .2, .3; data in a temp dir), writes KEYS keys (default 100000) with 256-byte values through
# `etcdeck bench put`, then `etcdctl member add n4 --learner`, starts n4 on 127.0.0.4 with
# --initial-cluster-state existing, and retries `etcdctl member promote` every 100 ms until the
# leader finds the learner caught up. Prints the database size and the times from the start of n4 to
# its first Status answer and to its promotion, and, for etcdeck, how n4 caught up (snapshot or log).
# Every member's RSS is sampled every 20 ms from n4's start to its promotion: printed as the RSS
# before, the peak and the RSS at the promotion, for the leader and for n4. The raft term before the
# add and after the promotion tells whether any election happened meanwhile.
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

members_workdir
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
status_json() { ETCDCTL_API=3 etcdctl --endpoints="$1" endpoint status -w json; }

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
db=$(status_json "$(client 1)" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Status"]["dbSize"])')
read -r leader term_before < <(status_json "$(client 1)" |
  python3 -c 'import json,sys; h=json.load(sys.stdin)[0]["Status"]; print(h["leader"], h["header"]["raft_term"])')
leader_n=""
for i in 1 2 3; do
  id_i=$(status_json "$(client "$i")" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Status"]["header"]["member_id"])')
  [ "$id_i" = "$leader" ] && leader_n=$i
done

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
leader_pid=${pids[$((leader_n - 1))]}
learner_pid=${pids[3]}
( # RSS samples (kB) of the leader and n4 until the stop file appears
  while [ ! -e "$work/stop-sampling" ]; do
    echo "$(rss_kb "$leader_pid") $(rss_kb "$learner_pid")"
    sleep 0.02
  done >"$work/rss"
) &
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
touch "$work/stop-sampling"
sleep 0.1
rss=$(awk 'NR == 1 { lb = $1 } { if ($1 > lp) lp = $1; if ($2 > np) np = $2; la = $1; na = $2 }
  END { printf "leader RSS %d MB, peak +%d MB, at promotion %d MB; n4 RSS peak %d MB, at promotion %d MB",
    lb / 1024, (lp - lb) / 1024, la / 1024, np / 1024, na / 1024 }' "$work/rss")
term_after=$(status_json "$(client "$leader_n")" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Status"]["header"]["raft_term"])')
# What n4 holds for good: its RSS 2 s after the promotion, and 2 s after a restart on its data.
sleep 2
settled=$(rss_kb "$learner_pid")
kill "$learner_pid"
wait "$learner_pid" 2>/dev/null || true
start 4 "$initial" existing
learner_pid=${pids[4]}
until ETCDCTL_API=3 etcdctl --endpoints="$(client 4)" --command-timeout=500ms endpoint status >/dev/null 2>&1; do sleep 0.05; done
sleep 2
restarted=$(rss_kb "$learner_pid")
rss="$rss; n4 RSS 2 s later $((settled / 1024)) MB, 2 s after a restart on its data $((restarted / 1024)) MB"
how=$(grep -oE "(received and staged|applied the leader's snapshot).*" "$work/n4.log" | paste -sd ';' || echo "from the log")
made=$(cat "$work"/n[123].log | grep -oE "(offered a snapshot|sent the raft snapshot).*" | paste -sd ';' || true)
[ -z "$made" ] || how="$how; the leader $made"
printf '%s: %d keys, db %s bytes; learner n4 answered Status %d ms after its start, promoted after %d ms (%s)\n' \
  "$SERVER" "$KEYS" "$db" "$t_status" "$t_promote" "$how"
echo "  $rss; raft term $term_before before the add, $term_after after the promotion"
