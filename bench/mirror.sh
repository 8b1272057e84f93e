#!/usr/bin/env bash
# Mirror throughput and lag: etcdeck mirror beside etcdctl make-mirror (3.4), on the same load, in
# one run. Starts two one-member clusters of SERVER (etcd, Debian's etcd 3.4, the default; or
# etcdeck) on free loopback ports, a source and a destination. For each RATE (default 1000 and 5000
# writes/s) and each tool, a fresh prefix is mirrored while examples/mirror_lag writes SECONDS
# (default 20) seconds of puts at that rate (values: the send time) and watches the destination:
# events applied per second at the destination, lag from send to arrival (p50, p99, max, after the
# first fifth of the run), how long the last writes took to arrive once sending stopped, and the
# mirror process's CPU per event (utime + stime).
#
#   bench/mirror.sh
#   RATES="1000 5000 10000" SECONDS_EACH=30 bench/mirror.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
RATES=${RATES:-"1000 5000"}
SECONDS_EACH=${SECONDS_EACH:-20}
SERVER=${SERVER:-etcd}
need_tools etcd etcdctl python3
cargo build --release --quiet --bin etcdeck --example mirror_lag
bin=$PWD/target/release/etcdeck
lag=$PWD/target/release/examples/mirror_lag

work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"' EXIT
server_command
start_member src "$work/src" "${server[@]}"
src=$url
start_member dst "$work/dst" "${server[@]}"
dst=$url

# CPU seconds (utime + stime) of process PID so far.
cpu_seconds() {
  python3 -c '
import os, sys
f = open("/proc/%s/stat" % sys.argv[1]).read().rsplit(")", 1)[1].split()
print((int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK"))' "$1"
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); $SERVER $("${server[@]}" --version 2>/dev/null | head -1 || true); commit $(git rev-parse --short HEAD)"
printf '%-22s %6s %9s %9s %9s %9s %9s %8s %11s\n' tool rate "sent/s" "applied/s" "p50 ms" "p99 ms" "max ms" "drain s" "CPU µs/ev"
for rate in $RATES; do
  for tool in etcdctl etcdeck; do
    prefix="/bench/$tool-$rate/"
    case $tool in
      etcdctl) ETCDCTL_API=3 etcdctl --endpoints="$src" make-mirror --prefix "$prefix" "$dst" >"$work/$tool-$rate.out" 2>&1 & ;;
      etcdeck) "$bin" mirror --from "$src" --to "$dst" --prefix "$prefix" --status-interval 1h >"$work/$tool-$rate.out" 2>&1 & ;;
    esac
    mpid=$!
    pids+=("$mpid")
    sleep 1
    before=$(cpu_seconds "$mpid")
    result=$("$lag" "$src" "$dst" "$prefix" "$prefix" "$rate" "$SECONDS_EACH")
    after=$(cpu_seconds "$mpid")
    kill "$mpid" 2>/dev/null || true
    wait "$mpid" 2>/dev/null || true
    python3 - "$tool" "$result" "$before" "$after" <<'EOF'
import json, sys
tool, r, before, after = sys.argv[1], json.loads(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
label = {"etcdctl": "etcdctl make-mirror", "etcdeck": "etcdeck mirror"}[tool]
per_event = (after - before) * 1e6 / max(r["arrived"], 1)
print("%-22s %6d %9.0f %9.0f %9.1f %9.1f %9.1f %8.2f %11.1f" % (label, r["rate"], r["sent_per_s"], r["applied_per_s"],
      r["lag_p50_ms"], r["lag_p99_ms"], r["lag_max_ms"], r["drain_s"], per_event))
if r["arrived"] != r["sent"]:
    print("  %s: %d of %d writes arrived" % (label, r["arrived"], r["sent"]))
EOF
  done
done
