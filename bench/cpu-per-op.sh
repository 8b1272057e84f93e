#!/usr/bin/env bash
# Server CPU per operation, etcdeck node and Debian's etcd side by side in one run: one member each
# on a fresh data dir, the same `etcdeck bench` load against each in turn (ROUNDS times,
# alternating), and the server's user+system CPU over the load read from /proc. CPU per operation
# does not depend on the load generator sharing the cores, which raw throughput does.
#
# OPS, any of:
#   put      TOTAL puts of 256-byte values on 100 000 keys
#   range-l  TOTAL linearizable gets of one 256-byte key
#   range-s  TOTAL serializable gets of the same
#   watch    WATCHERS watchers of one key (10 streams), PUTS puts to it: CPU per event delivered
#            (the puts' own CPU, under 1% of it, included)
#
#   bench/cpu-per-op.sh                                  # every op, 3 rounds
#   OPS=put TOTAL=3000 CLIENTS=1 CONNS=1 bench/cpu-per-op.sh   # one put at a time: the fsync path
#   ETCDECK_BIN=/path/to/older/etcdeck bench/cpu-per-op.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
need_tools etcd etcdctl
SERVER=etcdeck pick_server
# ETCDECK_BIN: another build to measure (an older commit's, say) in place of this tree's.
bin=${ETCDECK_BIN:-$bin}
server=("$bin" node)
OPS=${OPS:-put range-l range-s watch}
TOTAL=${TOTAL:-100000}
CLIENTS=${CLIENTS:-1000}
CONNS=${CONNS:-100}
ROUNDS=${ROUNDS:-3}
WATCHERS=${WATCHERS:-1000}
PUTS=${PUTS:-1000}
members_workdir

# The load of OP against URL; prints the bench's JSON report.
load() { # op, url
  case $1 in
    put) "$bin" --endpoints "$2" bench put --clients "$CLIENTS" --conns "$CONNS" --total "$TOTAL" \
      --key-size 8 --val-size 256 --key-space-size 100000 -w json ;;
    range-l | range-s) "$bin" --endpoints "$2" bench range --clients "$CLIENTS" --conns "$CONNS" \
      --total "$TOTAL" --consistency "${1#range-}" one -w json ;;
    watch) "$bin" --endpoints "$2" bench watch --streams 10 --watch-per-stream $((WATCHERS / 10)) \
      --watched-key-total 1 --put-total "$PUTS" -w json ;;
  esac
}

# One round of OP against the member at URL (PID): prints "µs of server CPU per op, ops/s".
round() { # op, url, pid
  local before after out count
  case $1 in
    watch) count=$((WATCHERS / 10 * 10 * PUTS)) ;;
    *) count=$TOTAL ;;
  esac
  before=$(cpu_ticks "$3")
  out=$(load "$1" "$2")
  after=$(cpu_ticks "$3")
  python3 -c '
import json, sys
r = json.loads(sys.argv[1])
r = r[-1] if isinstance(r, list) else r
n, cpu = int(sys.argv[2]), float(sys.argv[3])
e = len(r["errors"]) if isinstance(r["errors"], (list, dict)) else r["errors"]
rate = round(r["requestsPerSec"])
print(f"{cpu / n * 1e6:.2f} µs/op, {rate} ops/s" + (f" ({e} errors)" if e else ""))
' "$out" "$count" "$(python3 -c "print(($after - $before) / $ticks)")"
}

start_member etcdeck "$work/etcdeck" "${server[@]}"
ours_url=$url ours_pid=$pid
start_member etcd "$work/etcd" etcd
etcd_url=$url etcd_pid=$pid
value=$(head -c 256 /dev/zero | tr '\0' v)
for u in "$ours_url" "$etcd_url"; do ETCDCTL_API=3 etcdctl --endpoints "$u" put one "$value" >/dev/null; done
echo "commit $(git rev-parse --short HEAD), $(nproc) cores; put/range: $TOTAL per round, $CLIENTS clients on $CONNS connections; watch: $WATCHERS watchers, $PUTS puts"
for op in $OPS; do
  for r in $(seq "$ROUNDS"); do
    echo "$op round $r: etcdeck $(round "$op" "$ours_url" "$ours_pid") · etcd $(round "$op" "$etcd_url" "$etcd_pid")"
  done
done
