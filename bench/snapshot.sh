#!/usr/bin/env bash
# Snapshots of a million keys, etcd and etcdeck side by side in one run. For each server (Debian's
# etcd 3.4 and an etcdeck node, the release build), one member on free loopback ports with its data
# in a temp dir, loaded with KEYS keys (default 1 000 000) of 256-byte values by `etcdeck bench put`;
# then, RUNS times (default 3), `etcdctl snapshot save` from it, timed, with the server's RSS sampled
# every 10 ms from /proc during the save (growth = the highest sample minus the RSS just before),
# and once more after the server is restarted on its data;
# then the last file restored by `etcdctl snapshot restore` and by `etcdeck snapshot restore`, timed.
# Prints one line per server with every run's figures.
#
#   bench/snapshot.sh
#   KEYS=200000 RUNS=2 bench/snapshot.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
KEYS=${KEYS:-1000000}
RUNS=${RUNS:-3}
need_tools etcd etcdctl python3
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

ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }

for SERVER in etcd etcdeck; do
  case $SERVER in
    etcd) server=(etcd) ;;
    etcdeck) server=("$bin" node) ;;
  esac
  rm -rf "$work/data" "$work/data.log"
  start_member snap "$work/data" "${server[@]}"
  "$bin" bench put --endpoints="$url" --conns=8 --clients=64 --total="$KEYS" --sequential-keys \
    --key-space-size="$KEYS" --key-size=16 --val-size=256 >/dev/null
  saves=()
  for run in $(seq "$RUNS") restarted; do
    if [ "$run" = restarted ]; then
      # Once more after a restart on the same data: the server's caches hold what its start read.
      kill "$pid"
      wait "$pid" 2>/dev/null || true
      "${server[@]}" --name snap --data-dir "$work/data" --listen-client-urls "$url" \
        --advertise-client-urls "$url" --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
        --initial-cluster "snap=$peer" --quota-backend-bytes=8589934592 >>"$work/data.log" 2>&1 &
      pid=$!
      wait_healthy "$url"
    fi
    file="$work/$SERVER.snapshot"
    rm -f "$file"
    before=$(rss_kb "$pid")
    peak=$before
    t0=$(date +%s%N)
    ETCDCTL_API=3 etcdctl --endpoints="$url" --command-timeout=600s snapshot save "$file" >/dev/null 2>&1 &
    save=$!
    while kill -0 "$save" 2>/dev/null; do
      now=$(rss_kb "$pid")
      (( now > peak )) && peak=$now
      sleep 0.01
    done
    wait "$save"
    took=$(ms_since "$t0")
    label=""
    [ "$run" = restarted ] && label="after a restart: "
    saves+=("${label}save ${took} ms, RSS +$(( (peak - before) / 1024 )) MB (from $(( before / 1024 )) MB)")
  done
  size=$(stat -c %s "$file")
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  pid=""
  peer="http://127.0.0.1:$(free_ports 1)"
  t0=$(date +%s%N)
  ETCDCTL_API=3 etcdctl snapshot restore "$file" --name r --data-dir "$work/r-etcdctl" \
    --initial-cluster "r=$peer" --initial-advertise-peer-urls "$peer" >/dev/null 2>&1
  t_etcdctl=$(ms_since "$t0")
  t0=$(date +%s%N)
  "$bin" snapshot restore "$file" --name r --data-dir "$work/r-etcdeck" \
    --initial-cluster "r=$peer" --initial-advertise-peer-urls "$peer" >/dev/null 2>&1
  t_etcdeck=$(ms_since "$t0")
  rm -rf "$work/r-etcdctl" "$work/r-etcdeck"
  printf '%s: %d keys of 256 B, snapshot %d bytes; %s; restore: etcdctl %d ms, etcdeck %d ms\n' \
    "$SERVER" "$KEYS" "$size" "$(IFS=';'; echo "${saves[*]}" | sed 's/;/; /g')" "$t_etcdctl" "$t_etcdeck"
done
