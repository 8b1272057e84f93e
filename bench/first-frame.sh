#!/usr/bin/env bash
# Time from start to the first complete dashboard frame, against a local 3-member etcd cluster.
#
# Starts Debian's etcd (3 members, free loopback ports, data in a temp dir), then runs the release
# etcdeck console RUNS times inside tmux, each with --timings, quits it once the dashboard shows the
# healthy cluster, and prints min / median / p90 / max of what --timings reported.
#
#   bench/first-frame.sh            # 20 runs
#   RUNS=50 bench/first-frame.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
RUNS=${RUNS:-20}
need_tools etcd etcdctl tmux python3
cargo build --release --quiet
bin=$PWD/target/release/etcdeck

work=$(mktemp -d)
sock="etcdeck-bench-$$"
pids=()
cleanup() {
  tmux -L "$sock" kill-server 2>/dev/null || true
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

read -r -a ports <<<"$(free_ports 6)"
cluster=""
for i in 1 2 3; do cluster+="${cluster:+,}m$i=http://127.0.0.1:${ports[$((i + 2))]}"; done
for i in 1 2 3; do
  client="http://127.0.0.1:${ports[$((i - 1))]}"
  peer="http://127.0.0.1:${ports[$((i + 2))]}"
  etcd --name "m$i" --data-dir "$work/m$i" --listen-client-urls "$client" --advertise-client-urls "$client" \
    --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" --initial-cluster "$cluster" \
    --initial-cluster-token "bench-$$" --initial-cluster-state new >"$work/m$i.log" 2>&1 &
  pids+=($!)
done
endpoints="http://127.0.0.1:${ports[0]},http://127.0.0.1:${ports[1]},http://127.0.0.1:${ports[2]}"
wait_healthy "$endpoints"

times=()
for run in $(seq "$RUNS"); do
  out="$work/timing-$run"
  tmux -L "$sock" -f /dev/null new-session -d -s b -x 120 -y 30 \
    "TERM=xterm-256color $bin --endpoints ${endpoints%%,*} --timings 2>$out; touch $out.done; sleep 30"
  for _ in $(seq 200); do
    tmux -L "$sock" capture-pane -p -t b | grep -q "cluster healthy" && break
    sleep 0.05
  done
  tmux -L "$sock" send-keys -t b q
  for _ in $(seq 100); do [ -e "$out.done" ] && break; sleep 0.05; done
  tmux -L "$sock" kill-server 2>/dev/null || true
  ms=$(sed -n 's/^first complete dashboard frame: \([0-9.]*\) ms after start$/\1/p' "$out")
  [ -n "$ms" ] || { echo "run $run: no timing ($(cat "$out"))" >&2; exit 1; }
  times+=("$ms")
done

printf '%s\n' "${times[@]}" | sort -n | awk -v runs="$RUNS" -v cpu="$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')" '
  { v[NR] = $1 }
  END {
    p50 = v[int((NR + 1) / 2)]; p90 = v[int(NR * 0.9 + 0.999)]
    printf "first complete dashboard frame, etcd 3.4 x3 on loopback, %d runs (%s)\n", runs, cpu
    printf "  min %.1f ms   median %.1f ms   p90 %.1f ms   max %.1f ms\n", v[1], p50, p90, v[NR]
  }'
