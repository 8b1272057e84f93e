#!/usr/bin/env bash
# A watch tail under load. Starts Debian's etcd (one member, free loopback ports, data in a temp
# dir) and the release console in tmux with --timings, opens `:watch 0` (every key the load writes),
# then writes RATE events per second (default 10 000) for DURATION seconds (default 20) with
# `etcdeck bench txn-put --txn-ops OPS --rate RATE/OPS` (OPS puts per txn, default 10: this machine's
# etcd does not take 10 000 single puts a second while serving the watch), while pressing a key
# every 100 ms (scrolling the tail up and down). Prints the load's achieved rate, what the tail
# received and dropped from its display, the console's CPU time, and its key-press-to-frame
# latencies and peak RSS from --timings.
#
#   bench/watch-tail.sh
#   RATE=20000 DURATION=10 OPS=1 bench/watch-tail.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
RATE=${RATE:-10000}
DURATION=${DURATION:-20}
OPS=${OPS:-10}
need_tools etcd etcdctl tmux python3
cargo build --release --quiet
bin=$PWD/target/release/etcdeck

work=$(mktemp -d)
sock="etcdeck-watch-$$"
pid=""
cleanup() {
  tmux -L "$sock" kill-server 2>/dev/null || true
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

start_member watch "$work/etcd" etcd

screen() { tmux_screen "$sock" w; }
wait_for() { tmux_wait "$sock" w "$1" "$2"; } # extended regex, seconds

tmux -L "$sock" -f /dev/null new-session -d -s w -x 120 -y 40 \
  "env TERM=xterm-256color $bin --endpoints $url --timings 2>$work/timings; echo done; sleep 60"
wait_for "members 1/1 up" 15
tmux -L "$sock" send-keys -t w : "watch 0" Enter
wait_for "watching since revision" 10

console=$(pgrep -f "^$bin --endpoints $url --timings")
txns=$(( RATE * DURATION / OPS ))
started=$(date +%s.%N)
# 16-byte keys from a space of 100 000, 64-byte values.
"$bin" bench txn-put --endpoints="$url" --conns=8 --clients=64 --total="$txns" --txn-ops="$OPS" \
  --rate=$(( RATE / OPS )) --key-size=16 --key-space-size=100000 --val-size=64 >"$work/load" 2>&1 &
load=$!
presses=0
while kill -0 "$load" 2>/dev/null; do
  if (( presses % 2 == 0 )); then key=k; else key=j; fi
  tmux -L "$sock" send-keys -t w "$key"
  presses=$((presses + 1))
  sleep 0.1
done
wait "$load" || { echo "bench: the load failed" >&2; cat "$work/load" >&2; exit 1; }
elapsed=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$started" "$(date +%s.%N)")
grep -E 'Requests/sec|Errors' "$work/load" | sed 's/^ */load: txn /'
rate=$(python3 -c "import sys; print(round(int(sys.argv[1]) / float(sys.argv[2])))" $(( txns * OPS )) "$elapsed")
echo "load: $(( txns * OPS )) events ($txns txns of $OPS puts) in $elapsed s: $rate events/s; $presses key presses sent during it"
read -r -a stat <"/proc/$console/stat"
echo "console CPU: $(python3 -c "import sys, os; print(f'{(int(sys.argv[1]) + int(sys.argv[2])) / os.sysconf(\"SC_CLK_TCK\"):.1f}')" "${stat[13]}" "${stat[14]}") s (user + system) over the run"
# Let the tail catch up, then quit.
sleep 1
screen | grep -E "events, " | sed 's/[│ ]*$//; s/^[│ ]*/screen: /'
tmux -L "$sock" send-keys -t w q
wait_for "done" 10
cat "$work/timings"
