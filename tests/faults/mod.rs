//! etcdeck under faults: a three-member cluster on loopback, clients and watchers running while
//! members are killed, paused and cut apart, and then the whole history checked: linearizable key by
//! key, no acknowledged write lost, revisions unique and in real-time order, every watcher's events
//! ordered, unique, atomic and complete, equal HashKV on every member, a leader soon after healing.
//!
//! The short profile runs in CI (about two minutes). Longer runs, and replays:
//!
//! ```sh
//! FAULTS_SECS=3600 cargo test --release --test main faults:: -- --nocapture
//! FAULTS_SEED=1234 cargo test --release --test main faults:: -- --nocapture
//! FAULTS_KINDS=SnapshotKilled,KillLeader cargo test --test main faults:: -- --nocapture
//! ```
//!
//! A failed run prints the end of each member's log and each one's status; with
//! `FAULTS_STACKS=DIR` it also writes every member's threads' stacks (through gdb) to `DIR/nN.txt`
//! while they still run, for a member that hangs.

mod console;
mod history;
mod lincheck;
mod proxy;
mod workload;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::{free_port, EtcdeckNode};
use proxy::{Link, Net};

/// The election timeout the members run with (the tests' timers: heartbeat 50 ms).
const ELECTION: Duration = Duration::from_millis(500);
/// Entries after which a member snapshots its store; a member kept away for more than this plus the
/// 5 000 entries kept for slow followers needs a raft snapshot to catch up.
const SNAPSHOT_COUNT: u64 = 500;

/// A step of splitmix64, the seeded generator every random choice here comes from.
pub fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = splitmix(self.0);
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Three etcdeck members on 127.0.0.1-3, their peer links through the fault proxy.
pub struct Cluster {
    pub nodes: Vec<EtcdeckNode>,
    pub client_urls: Vec<String>,
    pub net: Net,
    paused: Vec<bool>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    fn start(rt: &tokio::runtime::Runtime, n: usize, seed: u64) -> Cluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let hosts: Vec<IpAddr> = (0..n).map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + i as u8))).collect();
        let net = Net::new(hosts.clone(), seed);
        let mut advertised = Vec::new();
        let mut listen = Vec::new();
        for (i, host) in hosts.iter().enumerate() {
            let real = SocketAddr::new(*host, free_port());
            let proxy_addr = SocketAddr::new(*host, free_port());
            let listener = rt
                .block_on(tokio::net::TcpListener::bind(proxy_addr))
                .unwrap_or_else(|e| panic!("proxy on {proxy_addr}: {e}"));
            rt.spawn(net.clone().serve(i, listener, real));
            advertised.push(format!("http://{proxy_addr}"));
            listen.push(format!("http://{real}"));
        }
        let initial: Vec<String> =
            advertised.iter().enumerate().map(|(i, u)| format!("n{}={u}", i + 1)).collect();
        let initial = initial.join(",");
        let mut nodes = Vec::new();
        let mut client_urls = Vec::new();
        for i in 0..n {
            let client = format!("http://{}:{}", hosts[i], free_port());
            let flags = [
                format!("--listen-peer-urls={}", listen[i]),
                format!("--initial-advertise-peer-urls={}", advertised[i]),
                format!("--initial-cluster={initial}"),
                "--initial-cluster-token=etcdeck-faults".to_string(),
                format!("--snapshot-count={SNAPSHOT_COUNT}"),
            ];
            let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
            let data: PathBuf = dir.path().join(format!("n{}", i + 1));
            nodes.push(EtcdeckNode::spawn_at(&format!("n{}", i + 1), &data, &client, &flags));
            client_urls.push(client);
        }
        for node in &mut nodes {
            node.wait_serving(Duration::from_secs(30));
        }
        Cluster { nodes, client_urls, net, paused: vec![false; n], _dir: dir }
    }

    fn signal(&mut self, i: usize, stop: bool) {
        if let Some(pid) = self.nodes[i].pid() {
            let sig = if stop { libc::SIGSTOP } else { libc::SIGCONT };
            // SAFETY: kill(2) on the PID of a child this handle started and has not reaped.
            unsafe {
                libc::kill(pid as i32, sig);
            }
            self.paused[i] = stop;
        }
    }
}

/// What one run found.
#[derive(Default)]
pub struct Report {
    pub operations: usize,
    pub cycles: usize,
    pub violations: Vec<String>,
    pub lost: Vec<String>,
    pub faults: Vec<String>,
    pub watch_events: usize,
    pub unknown: usize,
    pub compactions: usize,
    pub reasons: Vec<(String, usize)>,
    /// Every watch stream: watcher, prefix, start, events, how it ended.
    pub segments: String,
    /// The end of each member's own log, kept when the run found a violation.
    pub member_logs: Vec<String>,
    /// Each member's Status answer at the end, kept when the run found a violation.
    pub statuses: Vec<String>,
}

#[derive(Clone, Copy, Debug)]
enum Fault {
    KillFollower,
    KillLeader,
    KillTwo,
    PauseLeader,
    IsolateLeader,
    IsolateFollower,
    Delay,
    Lossy,
    SnapshotCatchUp,
    /// A member behind the log gets a raft snapshot, and the member sending it or the one
    /// receiving it is killed -9 while it travels.
    SnapshotKilled,
}

const FAULTS: [Fault; 10] = [
    Fault::KillFollower,
    Fault::KillLeader,
    Fault::KillTwo,
    Fault::PauseLeader,
    Fault::IsolateLeader,
    Fault::IsolateFollower,
    Fault::Delay,
    Fault::Lossy,
    Fault::SnapshotCatchUp,
    Fault::SnapshotKilled,
];

/// The values written for a snapshot that is to be cut: 6 000 of them make a store of about 50 MB,
/// which takes the debug build long enough to send that it can be caught on the way.
const LARGE_VALUE: usize = 8 << 10;

/// Runs the workload for `duration` with fault cycles, then heals, waits for the watchers and checks.
pub fn run(duration: Duration, seed: u64) -> Report {
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let mut cluster = Cluster::start(&rt, 3, seed);
    let mut report = Report::default();
    let shared = Arc::new(workload::Shared::new(Instant::now()));
    let handles = workload::spawn(&rt, &cluster.client_urls, shared.clone(), seed);
    let mut rng = Rng::new(seed ^ 0xfa17);
    let started = Instant::now();
    // The faults come in a shuffled order that still goes through every kind early on.
    let mut order: Vec<Fault> = Vec::new();
    while started.elapsed() < duration {
        if order.is_empty() {
            order = kinds_from_env();
            for i in (1..order.len()).rev() {
                order.swap(i, rng.below(i as u64 + 1) as usize);
            }
        }
        let fault = order.pop().expect("a fault");
        std::thread::sleep(Duration::from_millis(500 + rng.below(1000)));
        let outcome = cycle(&rt, &mut cluster, fault, &mut rng);
        report.cycles += 1;
        match outcome {
            Ok(line) => report.faults.push(line),
            Err(v) => {
                report.faults.push(format!("{fault:?}: {v}"));
                report.violations.push(v);
            }
        }
    }
    // Everything healed and running: stop the clients, write each key once more so every watcher has
    // an event to reach, and wait for the watchers.
    cluster.net.heal();
    std::thread::sleep(Duration::from_millis(500));
    let finished = workload::finish(&rt, handles, &cluster.client_urls, &shared, Duration::from_secs(20));
    if let Err(v) = finished {
        report.violations.push(v);
    }
    let checks = history::check_all(&rt, &shared, &cluster.client_urls);
    report.operations = checks.operations;
    report.watch_events = checks.watch_events;
    report.unknown = checks.unknown;
    report.reasons = checks.reasons;
    report.compactions = shared.compactions.lock().unwrap().len();
    for seg in shared.segments.lock().unwrap().iter() {
        let evs: Vec<i64> = seg.responses.iter().flatten().map(|e| e.rev).collect();
        report.segments.push_str(&format!(
            "segment: watcher {} on member {} on {} from {}: {} events ({:?} .. {:?}), ended: {}\n",
            seg.watcher,
            seg.endpoint + 1,
            seg.prefix,
            seg.start,
            evs.len(),
            evs.first(),
            evs.last(),
            seg.end
        ));
    }
    report.violations.extend(checks.violations);
    report.lost.extend(checks.lost);
    if !report.violations.is_empty() || !report.lost.is_empty() {
        report.member_logs = cluster.nodes.iter().map(|n| log_tail(&n.log_text(), 60)).collect();
        report.statuses = rt.block_on(workload::status_lines(&cluster.client_urls));
        // A member that is not there: how its process ended (a signal names what killed it).
        for (i, node) in cluster.nodes.iter_mut().enumerate() {
            if let Some(status) = node.exited() {
                report.statuses.push(format!("n{}: its process ended: {status}", i + 1));
            }
        }
        if let Ok(dir) = std::env::var("FAULTS_STACKS") {
            write_stacks(&cluster, std::path::Path::new(&dir));
        }
    }
    drop(cluster);
    rt.shutdown_timeout(Duration::from_secs(2));
    report
}

/// The member that all running members name as leader, within `limit`.
fn wait_leader(
    rt: &tokio::runtime::Runtime,
    urls: &[String],
    skip: &[usize],
    limit: Duration,
) -> Option<usize> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(l) = rt.block_on(workload::leader(urls, skip)) {
            return Some(l);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// One fault: injected, held, healed; Ok with a line for the log, Err with a violation.
fn cycle(
    rt: &tokio::runtime::Runtime,
    c: &mut Cluster,
    fault: Fault,
    rng: &mut Rng,
) -> Result<String, String> {
    let n = c.nodes.len();
    // Each fault starts from a whole cluster: every member back and serving.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !rt.block_on(workload::all_serving(&c.client_urls)) {
        if Instant::now() > deadline {
            return Err(format!("{fault:?}: not every member serves 30 s after the last fault"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let leader = wait_leader(rt, &c.client_urls, &[], Duration::from_secs(10))
        .ok_or_else(|| "no leader before the fault".to_string())?;
    let follower = (leader + 1 + rng.below(n as u64 - 1) as usize) % n;
    let hold = Duration::from_millis(1500 + rng.below(2000));
    let mut killed = Vec::new();
    let mut detail = String::new();
    // Where the follower's log stood before it was let catch up.
    let mut before = None;
    match fault {
        Fault::KillFollower => killed.push(follower),
        Fault::KillLeader => killed.push(leader),
        Fault::KillTwo => killed.extend([leader, follower]),
        _ => {}
    }
    for &i in &killed {
        c.nodes[i].kill();
    }
    match fault {
        Fault::PauseLeader => {
            c.signal(leader, true);
            std::thread::sleep(hold.max(ELECTION * 3));
            c.signal(leader, false);
        }
        Fault::IsolateLeader => {
            c.net.isolate(&[leader]);
            std::thread::sleep(hold);
        }
        Fault::IsolateFollower => {
            c.net.isolate(&[follower]);
            std::thread::sleep(hold);
        }
        Fault::Delay => {
            let d = Duration::from_millis(20 + rng.below(80));
            detail = format!(" {d:?}");
            c.net.set_all(Link::Delay(d));
            std::thread::sleep(hold);
        }
        Fault::Lossy => {
            let p = 20 + rng.below(80) as u32;
            detail = format!(" {p}/1000 per chunk");
            c.net.set_all(Link::Lossy(p));
            std::thread::sleep(hold);
        }
        Fault::SnapshotCatchUp => {
            // Kept away while the others write more than the leader's log keeps.
            c.net.isolate(&[follower]);
            let others: Vec<String> =
                (0..n).filter(|&i| i != follower).map(|i| c.client_urls[i].clone()).collect();
            let wrote = rt.block_on(workload::fill(
                &others,
                SNAPSHOT_COUNT + 5_000 + 500,
                1,
                Duration::from_secs(60),
            ));
            detail = format!(" after {wrote} writes");
        }
        Fault::SnapshotKilled => {
            c.net.isolate(&[follower]);
            let others: Vec<String> =
                (0..n).filter(|&i| i != follower).map(|i| c.client_urls[i].clone()).collect();
            let count = SNAPSHOT_COUNT + 5_000 + 500;
            let wrote = rt.block_on(workload::fill(&others, count, LARGE_VALUE, Duration::from_secs(90)));
            let victim = if rng.below(2) == 0 { leader } else { follower };
            before = Some(log_len(c, follower));
            c.net.heal();
            // The receiver stages the snapshot beside its store (member/snap/db.incoming.N).
            let snap = c.nodes[follower].data_dir.join("member").join("snap");
            let staging = || {
                std::fs::read_dir(&snap)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .any(|e| e.file_name().to_string_lossy().starts_with("db.incoming."))
            };
            let deadline = Instant::now() + Duration::from_secs(20);
            while !staging() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            let seen = staging();
            c.nodes[victim].kill();
            killed.push(victim);
            let who = if victim == leader { "sender" } else { "receiver" };
            detail =
                format!(" after {wrote} writes of {LARGE_VALUE} bytes, the {who} n{} killed", victim + 1);
            if !seen {
                return Err(format!("{fault:?}{detail}: n{} staged no snapshot in 20 s", follower + 1));
            }
        }
        _ => std::thread::sleep(hold),
    }
    let before = before.unwrap_or_else(|| log_len(c, follower));
    let logs: Vec<(usize, usize)> = killed.iter().map(|&i| (i, log_len(c, i))).collect();
    c.net.heal();
    for &i in &killed {
        c.nodes[i].respawn();
    }
    let healed = Instant::now();
    let new_leader = wait_leader(rt, &c.client_urls, &[], Duration::from_secs(15));
    let took = healed.elapsed();
    // How long each restarted member took to open its store and log (its own log says).
    let opened: Vec<String> = logs
        .iter()
        .map(|&(i, from)| {
            let log = c.nodes[i].log_text();
            let line = log.get(from..).and_then(|l| l.lines().find(|l| l.contains("opened the store")));
            let what = line.and_then(|l| {
                l.split_once(" (").map(|(_, rest)| rest.replace(") and the log in", ", with the log"))
            });
            format!("n{} opened: {}", i + 1, what.unwrap_or_else(|| "not yet".into()))
        })
        .collect();
    let opened = if opened.is_empty() { String::new() } else { format!(" ({})", opened.join(", ")) };
    let Some(new_leader) = new_leader else {
        return Err(format!("{fault:?}: no leader 15 s after healing{opened}"));
    };
    if took > Duration::from_secs(5) {
        return Err(format!("{fault:?}: a leader only {took:?} after healing (at most 5 s){opened}"));
    }
    if let Fault::SnapshotCatchUp | Fault::SnapshotKilled = fault {
        // The member comes back through a raft snapshot, and catches up.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let log = c.nodes[follower].log_text();
            if log.len() > before && log[before..].contains("applied the leader's snapshot") {
                // What a cut transfer or switch left beside the store is gone.
                let snap = c.nodes[follower].data_dir.join("member").join("snap");
                let left: Vec<String> = std::fs::read_dir(&snap)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with("db."))
                    .collect();
                if !left.is_empty() {
                    return Err(format!(
                        "{fault:?}{detail}: n{} left {left:?} beside its store",
                        follower + 1
                    ));
                }
                break;
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{fault:?}{detail}: n{} did not catch up through a raft snapshot in 30 s",
                    follower + 1
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok(format!(
        "{fault:?}{detail}: leader n{} before, n{} {} ms after healing{opened}",
        leader + 1,
        new_leader + 1,
        took.as_millis()
    ))
}

/// Every running member's threads' stacks, through gdb, to `dir/nN.txt`.
fn write_stacks(c: &Cluster, dir: &std::path::Path) {
    let _ = std::fs::create_dir_all(dir);
    for (i, node) in c.nodes.iter().enumerate() {
        let Some(pid) = node.pid() else { continue };
        let out = std::process::Command::new("gdb")
            .args(["-batch", "-p", &pid.to_string(), "-ex", "thread apply all bt"])
            .output();
        let text = match out {
            Ok(o) => format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)),
            Err(e) => format!("gdb: {e}"),
        };
        let _ = std::fs::write(dir.join(format!("n{}.txt", i + 1)), text);
    }
}

/// The last `lines` lines of a member's log.
fn log_tail(log: &str, lines: usize) -> String {
    let all: Vec<&str> = log.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn log_len(c: &Cluster, i: usize) -> usize {
    c.nodes[i].log_text().len()
}

/// The kinds of fault to inject: all, or those FAULTS_KINDS names (comma-separated, as the log
/// lines name them: `FAULTS_KINDS=SnapshotKilled`).
fn kinds_from_env() -> Vec<Fault> {
    let Ok(names) = std::env::var("FAULTS_KINDS") else { return FAULTS.to_vec() };
    let kinds: Vec<Fault> =
        FAULTS.iter().copied().filter(|f| names.split(',').any(|n| n.trim() == format!("{f:?}"))).collect();
    assert!(!kinds.is_empty(), "FAULTS_KINDS={names} names none of {FAULTS:?}");
    kinds
}

fn seed_from_env() -> u64 {
    match std::env::var("FAULTS_SEED") {
        Ok(s) => s.trim().parse().unwrap_or_else(|_| panic!("FAULTS_SEED={s} is not a number")),
        Err(_) => {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
                % 1_000_000_007
        }
    }
}

#[test]
fn a_three_member_cluster_stays_linearizable_and_its_watches_complete_through_faults() {
    let secs: u64 = match std::env::var("FAULTS_SECS") {
        Ok(s) => s.trim().parse().unwrap_or_else(|_| panic!("FAULTS_SECS={s} is not a number of seconds")),
        Err(_) => 100,
    };
    let seed = seed_from_env();
    println!("faults: seed {seed} ({secs} s); replay with FAULTS_SEED={seed}");
    let report = run(Duration::from_secs(secs), seed);
    for line in &report.faults {
        println!("  {line}");
    }
    println!(
        "faults: seed {seed}: {} operations ({} with unknown outcome), {} watch events, {} compactions, \
         {} fault cycles, {} violations, {} lost writes",
        report.operations,
        report.unknown,
        report.watch_events,
        report.compactions,
        report.cycles,
        report.violations.len(),
        report.lost.len()
    );
    if let Ok(path) = std::env::var("FAULTS_LOG") {
        let mut text = String::new();
        for v in report.violations.iter().chain(&report.lost) {
            text.push_str(v);
            text.push('\n');
        }
        text.push_str(&report.segments);
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("FAULTS_LOG={path}: {e}"));
    }
    for (why, n) in report.reasons.iter().take(8) {
        println!("  {n} operations failed or ended unknown: {why}");
    }
    for v in report.violations.iter().take(30) {
        println!("  violation: {v}");
    }
    for l in report.lost.iter().take(30) {
        println!("  lost: {l}");
    }
    for (i, log) in report.member_logs.iter().enumerate() {
        println!("--- the end of n{}'s log ---\n{log}", i + 1);
    }
    for line in &report.statuses {
        println!("status: {line}");
    }
    assert!(report.cycles >= 5 || secs < 60, "too few fault cycles");
    assert!(
        report.violations.is_empty() && report.lost.is_empty(),
        "seed {seed}: {} violations, {} lost writes (see above)",
        report.violations.len(),
        report.lost.len()
    );
}

/// etcd's require-leader streams (clientv3.WithRequireLeader: etcdctl's watch, the console's watch
/// tails): a member cut off from the others ends them with "etcdserver: no leader" after three
/// election timeouts and refuses new ones, so clients move to a member that has a leader; a watch
/// that did not ask keeps waiting, as on etcd.
#[test]
fn streams_that_require_a_leader_end_on_a_member_cut_off_from_the_others() {
    use etcd_client::{Client, ConnectOptions, WatchOptions};
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let cluster = Cluster::start(&rt, 3, 7);
    let leader = wait_leader(&rt, &cluster.client_urls, &[], Duration::from_secs(10)).expect("a leader");
    let follower = (leader + 1) % 3;
    let url = cluster.client_urls[follower].clone();
    rt.block_on(async move {
        let connect = |require: bool| {
            let url = url.clone();
            async move {
                let opts = ConnectOptions::new().with_require_leader(require).with_connect_timeout(Duration::from_secs(2));
                tokio::time::timeout(Duration::from_secs(5), Client::connect([url], Some(opts)))
                    .await
                    .expect("connect in time")
                    .expect("connect")
            }
        };
        let mut required = connect(true).await;
        let mut plain = connect(false).await;
        let mut watch = required.watch("/x", Some(WatchOptions::new().with_prefix())).await.expect("a watch");
        let mut plain_watch = plain.watch("/x", Some(WatchOptions::new().with_prefix())).await.expect("a watch");
        let created = tokio::time::timeout(Duration::from_secs(5), plain_watch.message()).await;
        assert!(matches!(created, Ok(Ok(Some(ref m))) if m.created()), "{created:?}");
        let (_keeper, mut keep_alive) = {
            let lease = required.lease_grant(60, None).await.expect("a lease").id();
            let (mut keeper, stream) = required.lease_keep_alive(lease).await.expect("keep-alive");
            keeper.keep_alive().await.expect("one keep-alive");
            (keeper, stream)
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), keep_alive.message()).await;

        cluster.net.isolate(&[follower]);
        let ended = tokio::time::timeout(Duration::from_secs(15), async {
            loop {
                match watch.message().await {
                    Ok(Some(_)) => continue,
                    other => return other,
                }
            }
        })
        .await
        .expect("the watch ends within 15 s");
        let status = match ended {
            Err(etcd_client::Error::GRpcStatus(s)) => s,
            other => panic!("the watch ended with {other:?}"),
        };
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert_eq!(status.message(), "etcdserver: no leader");
        let ka = tokio::time::timeout(Duration::from_secs(15), async {
            loop {
                match keep_alive.message().await {
                    Ok(Some(_)) => continue,
                    other => return other,
                }
            }
        })
        .await
        .expect("the keep-alive stream ends too");
        assert!(matches!(ka, Err(etcd_client::Error::GRpcStatus(ref s)) if s.message() == "etcdserver: no leader"), "{ka:?}");
        // A new one is refused at once; a watch that did not ask for a leader still waits.
        let mut again = connect(true).await;
        let refused = match again.watch("/x", Some(WatchOptions::new().with_prefix())).await {
            Err(e) => e.to_string(),
            Ok(mut s) => match s.message().await {
                Err(e) => e.to_string(),
                Ok(m) => panic!("a require-leader watch on a member without a leader was accepted: {m:?}"),
            },
        };
        assert!(refused.contains("etcdserver: no leader"), "{refused}");
        assert!(
            tokio::time::timeout(Duration::from_millis(500), plain_watch.message()).await.is_err(),
            "a plain watch is left alone"
        );

        // Healed, the member has a leader again and takes require-leader watches.
        cluster.net.heal();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let mut c = connect(true).await;
            if let Ok(mut s) = c.watch("/x", Some(WatchOptions::new().with_prefix())).await {
                if let Ok(Ok(Some(m))) = tokio::time::timeout(Duration::from_secs(2), s.message()).await {
                    if m.created() {
                        break;
                    }
                }
            }
            assert!(tokio::time::Instant::now() < deadline, "no require-leader watch 15 s after healing");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        drop(cluster);
    });
}
