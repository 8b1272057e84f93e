#!/usr/bin/env bash
# The key browser on a million keys. Starts SERVER (etcd, Debian's etcd 3.4, the default; or etcdeck,
# an etcdeck node), one member on free loopback ports with its data in a temp dir, loads KEYS keys
# (default 1 000 000) with `etcdeck bench put`, then runs the release console in tmux with --timings
# twice: once browsing a prefix of 10 000 keys, once browsing all keys.
# Each time it opens the browser (Tab or :keys) and walks down PAGES pages (G = end of what is
# known, which asks for the next page), then quits and prints what --timings reported: the first
# page and the following ones from request to drawn frame, and the peak RSS.
#
#   bench/keys-1m.sh
#   SERVER=etcdeck KEYS=200000 PAGES=10 bench/keys-1m.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
KEYS=${KEYS:-1000000}
PAGES=${PAGES:-20}
SERVER=${SERVER:-etcd}
[ "$KEYS" -ge 10000 ] || { echo "bench: KEYS must be at least 10000 (the first run browses a 10 000-key prefix)" >&2; exit 1; }
need_tools etcd etcdctl tmux python3
cargo build --release --quiet
bin=$PWD/target/release/etcdeck

bench_workdir "etcdeck-keys-$$-0"
run=0
server_command
start_member keys "$work/data" "${server[@]}"
# 20-byte keys 00000000000000000000 .. (zero-padded numbers), 32-byte values.
load_keys "$KEYS" 32

screen() { tmux_screen "$sock" b; }
wait_for() { tmux_wait "$sock" b "$1" "$2"; } # extended regex, seconds

browse() { # label, how many keys it lists, then the keys to type to open the browser
  local label=$1 total=$2
  shift 2
  tmux -L "$sock" kill-server 2>/dev/null || true
  run=$((run + 1))
  sock="etcdeck-keys-$$-$run"
  tmux -L "$sock" -f /dev/null new-session -d -s b -x 120 -y 40 \
    "env TERM=xterm-256color $bin --endpoints $url --timings 2>$work/timings; echo done; sleep 60"
  wait_for "members 1/1 up" 15
  tmux -L "$sock" send-keys -t b "$@"
  wait_for "of $total keys at revision" 10
  for p in $(seq "$PAGES"); do
    # G selects the last key known and asks for the next page; wait until that page is in.
    tmux -L "$sock" send-keys -t b G
    wait_for "row $(( p * 500 )) of $total keys at revision [0-9]+, [0-9]+ loaded(, more below)?\s*│" 10
  done
  tmux -L "$sock" send-keys -t b q
  wait_for "done" 10
  sed "s/^/$SERVER, $label: /" "$work/timings"
}

browse "10k prefix" 10000 : "keys 0000000000000000" Enter
browse "all keys" "$KEYS" Tab
