#!/usr/bin/env bash
# Server CPU per acknowledged put, etcdeck node and Debian's etcd side by side in one run: one
# member each on a fresh data dir, the same `etcdeck bench put` load against each in turn (ROUNDS
# times, alternating), and the server's user+system CPU over the load read from /proc. Per-put CPU
# does not depend on the load generator sharing the cores, which raw throughput does.
#
#   bench/cpu-per-put.sh                      # 3 rounds of 100 000 puts, 1000 clients on 100 conns
#   TOTAL=3000 CLIENTS=1 CONNS=1 bench/cpu-per-put.sh   # one put at a time: the fsync path
#   ETCDECK_BIN=/path/to/older/etcdeck bench/cpu-per-put.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
need_tools etcd etcdctl
SERVER=etcdeck pick_server
# ETCDECK_BIN: another build to measure (an older commit's, say) in place of this tree's.
bin=${ETCDECK_BIN:-$bin}
server=("$bin" node)
TOTAL=${TOTAL:-100000}
CLIENTS=${CLIENTS:-1000}
CONNS=${CONNS:-100}
ROUNDS=${ROUNDS:-3}
members_workdir

# One round against the member at URL (PID): prints "µs of server CPU per put, puts/s".
round() { # url, pid
  local before after out rps
  before=$(cpu_ticks "$2")
  out=$("$bin" --endpoints "$1" bench put --clients "$CLIENTS" --conns "$CONNS" --total "$TOTAL" \
    --key-size 8 --val-size 256 --key-space-size 100000 -w json)
  after=$(cpu_ticks "$2")
  rps=$(python3 -c 'import json,sys; r = json.load(sys.stdin); e = len(r["errors"]); print(round(r["requestsPerSec"]), f"({e} errors)" if e else "")' <<<"$out")
  python3 -c "print(f'{($after - $before) / $ticks / $TOTAL * 1e6:.1f} µs/put, $rps puts/s')"
}

start_member etcdeck "$work/etcdeck" "${server[@]}"
ours_url=$url ours_pid=$pid
pids+=("$pid")
start_member etcd "$work/etcd" etcd
etcd_url=$url etcd_pid=$pid
pids+=("$pid")
echo "commit $(git rev-parse --short HEAD), $(nproc) cores, $TOTAL puts per round, $CLIENTS clients on $CONNS connections"
for r in $(seq "$ROUNDS"); do
  echo "round $r: etcdeck $(round "$ours_url" "$ours_pid") · etcd $(round "$etcd_url" "$etcd_pid")"
done
