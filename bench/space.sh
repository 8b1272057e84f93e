#!/usr/bin/env bash
# :space over a million keys. Starts SERVER (etcd, Debian's etcd 3.4, the default; or etcdeck, an
# etcdeck node), one member on free loopback ports with its data in a temp dir, loads KEYS keys
# (default 1 000 000: 20-byte keys, VALUE-byte values, default 256) with `etcdeck bench put`, then
# runs the release console in tmux with --timings, opens `:space`, and presses j every 100 ms while
# the scan runs. Prints the scan's time as the console reports it, and what --timings reported:
# key press to frame during the scan and the console's peak RSS.
#
#   bench/space.sh
#   SERVER=etcdeck KEYS=200000 bench/space.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
KEYS=${KEYS:-1000000}
VALUE=${VALUE:-256}
SERVER=${SERVER:-etcd}
need_tools etcd etcdctl tmux python3
cargo build --release --quiet
bin=$PWD/target/release/etcdeck

bench_workdir "etcdeck-space-$$"
server_command
start_member space "$work/data" "${server[@]}"
load_keys "$KEYS" "$VALUE"

tmux -L "$sock" -f /dev/null new-session -d -s s -x 120 -y 40 \
  "env TERM=xterm-256color $bin --endpoints $url --timings 2>$work/timings; echo done; sleep 60"
tmux_wait "$sock" s "members 1/1 up" 15
tmux -L "$sock" send-keys -t s :
tmux_wait "$sock" s "^:" 5
tmux -L "$sock" send-keys -t s -l "space"
tmux -L "$sock" send-keys -t s Enter
tmux_wait "$sock" s "Esc cancels|read in" 30
# Keys while it runs: each is timed from press to the frame that shows it.
for _ in $(seq 3000); do
  tmux_screen "$sock" s | grep -q "read in" && break
  tmux -L "$sock" send-keys -t s j
  sleep 0.1
done
tmux_wait "$sock" s "read in" 120
tmux_screen "$sock" s | grep -oE "[0-9]+ keys, [0-9.]+ [kMG]?B live, read in [0-9.]+ s" | sed "s/^/$SERVER: /"
tmux -L "$sock" send-keys -t s q
tmux_wait "$sock" s "done" 10
sed "s/^/$SERVER: /" "$work/timings"
