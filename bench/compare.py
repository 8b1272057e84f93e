#!/usr/bin/env python3
"""etcdeck side by side with etcd, on this machine, in one run.

Starts Debian's etcd and etcdeck nodes with the same settings (one member, then three members on
127.0.0.1-3), runs the same `etcdeck bench` workloads against each in alternation, then
`etcdctl check perf --load=l` and `--load=xl` against each, and prints one table: etcdeck, etcd,
and their ratio. Then, on fresh single members, the RSS with 10,000 watchers, and the RSS and
data-dir size after loading 1,000,000 keys with 256-byte values.

    bench/compare.py                       # everything (about 20 minutes on 2 cores)
    CHECK_PERF=0 KEYS=100000 bench/compare.py
    ONLY=put-1000 MEMBERS=1 bench/compare.py

Needs etcd and etcdctl (Debian: apt-get install etcd-server etcd-client).
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "etcdeck")
KEYS = int(os.environ.get("KEYS", "1000000"))
CHECK_PERF = os.environ.get("CHECK_PERF", "1") == "1"
ONLY = [w for w in os.environ.get("ONLY", "").split(",") if w]
MEMBERS = [int(m) for m in os.environ.get("MEMBERS", "1,3").split(",")]

# name, bench arguments, the figure compared ("rps": requests/s, "p50"/"p99": latency)
WORKLOADS = [
    ("put-1000", ["put", "--clients=1000", "--conns=100", "--key-size=8", "--val-size=256",
                  "--key-space-size=100000", "--total=100000"], ["rps", "p99"]),
    ("put-1", ["put", "--clients=1", "--conns=1", "--key-size=8", "--val-size=256",
               "--key-space-size=100000", "--total=3000"], ["p50", "rps"]),
    ("range-l-100", ["range", "foo", "--consistency=l", "--clients=100", "--conns=10",
                     "--total=50000"], ["rps", "p99"]),
    ("range-s-100", ["range", "foo", "--consistency=s", "--clients=100", "--conns=10",
                     "--total=50000"], ["rps", "p99"]),
    ("txn-put-100", ["txn-put", "--clients=100", "--conns=10", "--txn-ops=4", "--val-size=256",
                     "--key-space-size=100000", "--total=20000"], ["rps", "p99"]),
    ("watch-latency", ["watch-latency", "--clients=100", "--conns=10", "--total=500",
                       "--put-rate=200"], ["p99", "p50"]),
    ("lease-keepalive", ["lease-keepalive", "--clients=100", "--conns=10", "--total=30000"],
     ["rps", "p99"]),
]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Cluster:
    """n members of `kind` (etcd or etcdeck) on 127.0.0.1..n, data under `work`."""

    def __init__(self, kind, n, work):
        self.kind, self.procs, self.urls, self.dirs = kind, [], [], []
        ports = [(free_port(), free_port()) for _ in range(n)]
        hosts = [f"127.0.0.{i + 1}" for i in range(n)]
        peers = [f"http://{h}:{p}" for h, (_, p) in zip(hosts, ports)]
        initial = ",".join(f"m{i + 1}={u}" for i, u in enumerate(peers))
        for i, (host, (client, _)) in enumerate(zip(hosts, ports)):
            url = f"http://{host}:{client}"
            data = tempfile.mkdtemp(prefix=f"{kind}-{n}-m{i + 1}-", dir=work)
            os.rmdir(data)
            program = ["etcd"] if kind == "etcd" else [BIN, "node"]
            args = program + [
                f"--name=m{i + 1}", f"--data-dir={data}", f"--listen-client-urls={url}",
                f"--advertise-client-urls={url}", f"--listen-peer-urls={peers[i]}",
                f"--initial-advertise-peer-urls={peers[i]}", f"--initial-cluster={initial}",
                f"--initial-cluster-token=compare-{kind}-{n}-{os.getpid()}",
                "--quota-backend-bytes=8589934592",
            ]
            log = open(data + ".log", "w")
            self.procs.append(subprocess.Popen(args, stdout=log, stderr=log))
            self.urls.append(url)
            self.dirs.append(data)
        self.endpoints = ",".join(self.urls)
        deadline = time.time() + 30
        while not self.healthy():
            if time.time() > deadline:
                sys.exit(f"compare: {kind} x{n} did not become healthy")
            time.sleep(0.2)
        # etcd refuses nothing here, but give elections a moment to settle.
        time.sleep(1)

    def healthy(self):
        r = subprocess.run(["etcdctl", f"--endpoints={self.endpoints}", "endpoint", "health"],
                           env={**os.environ, "ETCDCTL_API": "3"}, capture_output=True)
        return r.returncode == 0

    def leader_pid(self):
        r = subprocess.run(["etcdctl", f"--endpoints={self.endpoints}", "endpoint", "status", "-w", "json"],
                           env={**os.environ, "ETCDCTL_API": "3"}, capture_output=True, text=True)
        for i, st in enumerate(json.loads(r.stdout)):
            s = st["Status"]
            if s["leader"] == s["header"]["member_id"]:
                return self.procs[i].pid
        return self.procs[0].pid

    def stop(self):
        for p in self.procs:
            p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def bench(endpoints, args):
    r = subprocess.run([BIN, f"--endpoints={endpoints}", "bench", *args, "-w", "json"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return {"error": (r.stderr or r.stdout).strip()[-300:]}
    out = json.loads(r.stdout)
    return out[-1] if isinstance(out, list) else out


def figure(report, what):
    if "error" in report:
        return None
    if what == "rps":
        return report["requestsPerSec"]
    p = {"p50": 50.0, "p99": 99.0}[what]
    return next(x["latency"] for x in report["percentiles"] if x["percentile"] == p)


def check_perf(endpoints, load):
    r = subprocess.run(["etcdctl", f"--endpoints={endpoints}", "check", "perf", f"--load={load}"],
                       env={**os.environ, "ETCDCTL_API": "3"}, capture_output=True, text=True)
    text = (r.stdout + r.stderr).replace("\r", "\n")
    # etcdctl's two "too long"/"too high" lines carry no FAIL: prefix.
    verdict = [l.strip() for l in text.splitlines()
               if l.startswith(("PASS", "FAIL", "Slowest request took too long", "Stddev too high"))]
    return "; ".join(verdict) if verdict else text.strip()[-200:]


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def du_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total


def fmt(what, x):
    if x is None:
        return "error"
    return f"{x:,.0f}/s" if what == "rps" else f"{x * 1000:.2f} ms"


def row(cells):
    print("| " + " | ".join(cells) + " |", flush=True)


def main():
    for tool in ("etcd", "etcdctl"):
        if shutil.which(tool) is None:
            sys.exit(f"compare: {tool} is needed (Debian: apt-get install etcd-server etcd-client)")
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    work = tempfile.mkdtemp(prefix="etcdeck-compare-")
    try:
        cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
        print(f"machine: {os.cpu_count()} cores, {cpu}; etcd {subprocess.run(['etcd', '--version'], capture_output=True, text=True).stdout.split()[2]}")
        print()
        row(["members", "workload", "figure", "etcdeck", "etcd", "etcdeck / etcd"])
        row(["---"] * 6)
        for n in MEMBERS:
            clusters = {kind: Cluster(kind, n, work) for kind in ("etcdeck", "etcd")}
            for name, args, figures in WORKLOADS:
                if ONLY and name not in ONLY:
                    continue
                # Alternation: etcdeck, etcd, etcdeck, etcd; the better of the two runs each.
                runs = {kind: [] for kind in clusters}
                for _ in range(2):
                    for kind, c in clusters.items():
                        runs[kind].append(bench(c.endpoints, args))
                for what in figures:
                    best = {}
                    for kind, reports in runs.items():
                        vals = [v for v in (figure(r, what) for r in reports) if v is not None]
                        best[kind] = (max(vals) if what == "rps" else min(vals)) if vals else None
                    a, b = best["etcdeck"], best["etcd"]
                    ratio = f"{a / b:.2f}x" if a and b else "-"
                    row([str(n), name, what, fmt(what, a), fmt(what, b), ratio])
                for kind, reports in runs.items():
                    for r in reports:
                        if "error" in r:
                            print(f"  {kind} {name}: {r['error']}", file=sys.stderr)
            if CHECK_PERF:
                for load in ("l", "xl"):
                    verdicts = {kind: check_perf(c.endpoints, load) for kind, c in clusters.items()}
                    row([str(n), f"check perf --load={load}", "verdict", verdicts["etcdeck"], verdicts["etcd"], ""])
            for c in clusters.values():
                c.stop()

        print()
        row(["single member", "etcdeck", "etcd", "etcdeck / etcd"])
        row(["---"] * 4)
        # 10,000 watchers (100 streams of 100 on 10 connections): the server's peak RSS.
        if not ONLY or "watchers" in ONLY:
            peak = {}
            for kind in ("etcdeck", "etcd"):
                c = Cluster(kind, 1, work)
                bench(c.endpoints, ["watch", "--clients=10", "--conns=10", "--streams=100",
                                    "--watch-per-stream=100", "--watched-key-total=100",
                                    "--key-space-size=100", "--sequential-keys", "--put-total=1000"])
                with open(f"/proc/{c.procs[0].pid}/status") as f:
                    peak[kind] = next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))
                c.stop()
            row(["peak RSS, 10,000 watchers", f"{peak['etcdeck'] / 1024:.0f} MB", f"{peak['etcd'] / 1024:.0f} MB",
                 f"{peak['etcdeck'] / peak['etcd']:.2f}x"])
        # KEYS keys with 256-byte values: RSS and data-dir size once loaded.
        if not ONLY or "keys" in ONLY:
            rss, size, took = {}, {}, {}
            for kind in ("etcdeck", "etcd"):
                c = Cluster(kind, 1, work)
                t = time.time()
                r = bench(c.endpoints, ["put", "--clients=64", "--conns=8", "--sequential-keys",
                                        f"--key-space-size={KEYS}", f"--total={KEYS}", "--key-size=8",
                                        "--val-size=256"])
                took[kind] = time.time() - t
                if "error" in r:
                    print(f"  {kind} load: {r['error']}", file=sys.stderr)
                time.sleep(2)
                rss[kind] = rss_kb(c.procs[0].pid)
                c.stop()
                size[kind] = du_bytes(c.dirs[0])
            row([f"RSS after {KEYS:,} keys", f"{rss['etcdeck'] / 1024:.0f} MB", f"{rss['etcd'] / 1024:.0f} MB",
                 f"{rss['etcdeck'] / rss['etcd']:.2f}x"])
            row([f"data dir after {KEYS:,} keys", f"{size['etcdeck'] / 2**20:.0f} MB", f"{size['etcd'] / 2**20:.0f} MB",
                 f"{size['etcdeck'] / size['etcd']:.2f}x"])
            row([f"time to load {KEYS:,} keys", f"{took['etcdeck']:.0f} s", f"{took['etcd']:.0f} s",
                 f"{took['etcdeck'] / took['etcd']:.2f}x"])
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
