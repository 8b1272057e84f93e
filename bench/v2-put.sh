#!/usr/bin/env bash
# The v2 API's puts (`--enable-v2`), etcdeck node and Debian's etcd side by side in one run: one
# member each on a fresh data dir, TOTAL sequential PUT /v2/keys requests (100-byte values, a new key
# each, one keep-alive connection) against each in turn, ROUNDS times alternating. Prints the time
# per put and the server's user+system CPU per put (from /proc). The keys pile up round after
# round, so a cost that grew with the store would show.
#
#   bench/v2-put.sh                 # 3 rounds of 5000 puts
#   TOTAL=20000 ROUNDS=2 bench/v2-put.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
need_tools etcd etcdctl python3
SERVER=etcdeck pick_server
TOTAL=${TOTAL:-5000}
ROUNDS=${ROUNDS:-3}
members_workdir

# One round against the member at URL (PID), keys under PREFIX: "ms per put, µs of server CPU per put".
round() { # url, pid, prefix
  local before after took
  before=$(cpu_ticks "$2")
  took=$(python3 - "$1" "$3" "$TOTAL" <<'PY'
import http.client, sys, time, urllib.parse
url, prefix, total = urllib.parse.urlparse(sys.argv[1]), sys.argv[2], int(sys.argv[3])
c = http.client.HTTPConnection(url.hostname, url.port)
body = "value=" + "x" * 100
start = time.monotonic()
for i in range(total):
    c.request("PUT", f"/v2/keys/{prefix}/k{i}", body=body,
              headers={"Content-Type": "application/x-www-form-urlencoded"})
    r = c.getresponse()
    r.read()
    if r.status not in (200, 201):
        sys.exit(f"PUT answered {r.status}")
print(time.monotonic() - start)
PY
)
  after=$(cpu_ticks "$2")
  python3 -c "print(f'{$took / $TOTAL * 1e3:.3f} ms/put, {($after - $before) / $ticks / $TOTAL * 1e6:.0f} µs CPU/put')"
}

start_member etcdeck "$work/etcdeck" "$bin" node --enable-v2
ours_url=$url ours_pid=$pid
start_member etcd "$work/etcd" etcd --enable-v2
etcd_url=$url etcd_pid=$pid
echo "commit $(git rev-parse --short HEAD), $(nproc) cores, $TOTAL sequential v2 puts per round"
for r in $(seq "$ROUNDS"); do
  echo "round $r: etcdeck $(round "$ours_url" "$ours_pid" "r$r") · etcd $(round "$etcd_url" "$etcd_pid" "r$r")"
done
