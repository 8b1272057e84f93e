# Shared by the bench scripts: free loopback ports and waiting for etcd endpoints to be healthy.

# Prints N free loopback TCP ports, space-separated.
free_ports() {
  python3 -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))' "$1"
}

# Waits up to 10 s until `etcdctl endpoint health` passes for ENDPOINTS (comma-separated); exits
# the script otherwise.
wait_healthy() {
  for _ in $(seq 100); do
    ETCDCTL_API=3 etcdctl --endpoints="$1" endpoint health >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "bench: $1 did not become healthy" >&2
  exit 1
}

# Builds the release binary (`bin`) and sets `server` to the command that runs a member: etcdeck's
# node, or with SERVER=etcd Debian's etcd.
pick_server() {
  SERVER=${SERVER:-etcdeck}
  cargo build --release --quiet
  bin=$PWD/target/release/etcdeck
  case $SERVER in
    etcdeck) server=("$bin" node) ;;
    etcd) need_tools etcd; server=(etcd) ;;
    *) echo "bench: SERVER is etcdeck or etcd" >&2; exit 1 ;;
  esac
}

# Exits the script unless every named tool is on PATH.
need_tools() {
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is needed (Debian: apt-get install etcd-server etcd-client tmux)" >&2; exit 1; }
  done
}

# The screen of tmux session SESSION on server socket SOCK.
tmux_screen() {
  tmux -L "$1" capture-pane -p -t "$2"
}

# Waits until the screen of SESSION on SOCK matches an extended regex, for up to SECONDS; exits the
# script with the screen otherwise.
tmux_wait() { # sock, session, regex, seconds
  for _ in $(seq $(( $4 * 20 ))); do
    tmux_screen "$1" "$2" | grep -qE -- "$3" && return 0
    sleep 0.05
  done
  echo "bench: waited $4 s for: $3" >&2
  tmux_screen "$1" "$2" >&2
  exit 1
}

# Starts one member — the command given: etcd, or etcdeck node — named NAME on free loopback ports,
# its data in DATA and its log in DATA.log; sets `url`, `peer` and `pid` (also added to `pids`), and
# waits until it is healthy.
start_member() { # name, data dir, command...
  local name=$1 data=$2
  shift 2
  local -a ports
  read -r -a ports <<<"$(free_ports 2)"
  url="http://127.0.0.1:${ports[0]}"
  peer="http://127.0.0.1:${ports[1]}"
  "$@" --name "$name" --data-dir "$data" --listen-client-urls "$url" --advertise-client-urls "$url" \
    --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" --initial-cluster "$name=$peer" \
    --quota-backend-bytes=8589934592 >"$data.log" 2>&1 &
  pid=$!
  # Stopped at exit even if it never answers (members_workdir's trap).
  pids+=("$pid")
  wait_healthy "$url"
}

# Sets `work` (a new temp dir), `sock` (tmux server socket name: $1) and `pid` (none yet), and a trap
# that, on exit, stops that tmux server (whatever `sock` names then) and the member, and removes `work`.
bench_workdir() { # sock
  work=$(mktemp -d)
  sock=$1
  pid=""
  trap 'tmux -L "$sock" kill-server 2>/dev/null || true; [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
}

# Sets `server` to the command that runs a member, from SERVER: etcd (Debian's) or etcdeck (`bin` node).
server_command() {
  case $SERVER in
    etcd) server=(etcd) ;;
    etcdeck) server=("$bin" node) ;;
    *) echo "bench: SERVER is etcd or etcdeck" >&2; exit 1 ;;
  esac
}

# Loads KEYS keys (20-byte zero-padded numbers) of VALUE bytes into `url` with `etcdeck bench put`.
load_keys() { # keys, value size
  local start
  start=$(date +%s)
  "$bin" bench put --endpoints="$url" --conns=8 --clients=64 --total="$1" --sequential-keys \
    --key-space-size="$1" --decimal-keys --key-size=20 --val-size="$2" | grep -E 'Requests/sec' | sed 's/^ */load: /'
  echo "load: $1 keys of $2 bytes into $SERVER in $(( $(date +%s) - start )) s"
}

# A scratch dir for members' data (`work`) and the list of their pids (`pids`), both cleaned up at
# exit; `ticks`, the clock ticks per second `cpu_ticks` counts in.
members_workdir() {
  work=$(mktemp -d)
  pids=()
  trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"' EXIT
  ticks=$(getconf CLK_TCK)
}

# A process's CPU time so far, user and system, in clock ticks.
cpu_ticks() { # pid
  awk '{print $14 + $15}' "/proc/$1/stat"
}
