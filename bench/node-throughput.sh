#!/usr/bin/env bash
# Write throughput of a single-member etcdeck node against a single-member Debian etcd on the same
# machine, as the number of concurrent clients grows (concurrent writes share fsyncs: group commit).
# Then `etcdctl check perf` at loads m and l against both.
#
#   bench/node-throughput.sh                 # clients 1 16 256
#   CLIENTS="1 64" CHECK_PERF=0 bench/node-throughput.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
CLIENTS=${CLIENTS:-"1 16 256"}
CHECK_PERF=${CHECK_PERF:-1}
for tool in etcd etcdctl python3; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is needed (Debian: apt-get install etcd-server etcd-client)" >&2; exit 1; }
done
cargo build --release --quiet
bin=$PWD/target/release/etcdeck

work=$(mktemp -d)
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

read -r -a ports <<<"$(free_ports 3)"

run() { # name url
  local name=$1 url=$2
  for c in $CLIENTS; do
    local conns=$(( c < 16 ? c : 16 ))
    local total=$(( c * 200 > 2000 ? c * 200 : 2000 ))
    out=$("$bin" bench put --endpoints="$url" --conns="$conns" --clients="$c" --total="$total" \
      --key-size=8 --val-size=256 --key-space-size=100000)
    rps=$(awk -F'\t' '/Requests\/sec/ {print $2}' <<<"$out")
    p99=$(awk '/ 99% in/ {print $3}' <<<"$out")
    printf '%-8s clients=%-4s conns=%-3s puts=%-6s %10.0f puts/s   p99 %s s\n' "$name" "$c" "$conns" "$total" "$rps" "$p99"
  done
  if [ "$CHECK_PERF" = 1 ]; then
    for load in m l; do
      verdict=$(ETCDCTL_API=3 etcdctl --endpoints="$url" check perf --load="$load" 2>&1 | tr '\r' '\n' | grep -E '^(PASS|FAIL)' | tr '\n' ' ' || true)
      printf '%-8s check perf --load=%s: %s\n' "$name" "$load" "$verdict"
    done
  fi
}

url="http://127.0.0.1:${ports[0]}"
"$bin" node --name bench --data-dir "$work/etcdeck" --listen-client-urls "$url" --advertise-client-urls "$url" \
  --listen-peer-urls http://127.0.0.1:0 2>"$work/etcdeck.log" & pid=$!
wait_healthy "$url"
run etcdeck "$url"
kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""

url="http://127.0.0.1:${ports[1]}"
peer="http://127.0.0.1:${ports[2]}"
etcd --name bench --data-dir "$work/etcd" --listen-client-urls "$url" --advertise-client-urls "$url" \
  --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" --initial-cluster "bench=$peer" \
  >"$work/etcd.log" 2>&1 & pid=$!
wait_healthy "$url"
run etcd "$url"
