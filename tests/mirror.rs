//! `etcdeck mirror` against real etcd 3.4 and etcdeck nodes: killed -9 at random points under a
//! steady write and delete load, it resumes from the checkpoint in the destination, never applies a
//! key's older value after a newer one, and ends equal to the source (checked by `mirror verify`
//! and by a plain comparison); with the source compacted past its checkpoint it reconciles; it
//! writes a TLS destination; it refuses a different source and a destination it did not write.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use etcdeck::etcd::mirror::{checkpoint_key, Checkpoint};

use crate::support::{self, etcd_tools, etcdeck, ChildGuard, EtcdCluster, EtcdeckNode};

/// Mirror flags for every run: a small transaction size so that one source revision (a txn of five
/// keys, a prefix delete) is split across destination transactions, and resumed inside.
const MIRROR: &[&str] =
    &["--prefix", "/m/", "--dest-prefix", "/copy/m/", "--max-txn-ops", "4", "--status-interval", "1s"];

fn client(endpoint: &str) -> (tokio::runtime::Runtime, etcd_client::Client) {
    support::blocking_client(endpoint)
}

/// A write load on the source until stopped: puts ("seq-N", N increasing) and deletes on 200 keys
/// under /m/, five-key transactions, prefix deletes, and writes outside the prefix.
struct Load {
    stop: Arc<AtomicBool>,
    writes: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(endpoint: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let writes = Arc::new(AtomicU64::new(0));
        let (flag, count, endpoint) = (stop.clone(), writes.clone(), endpoint.to_string());
        let seed =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
        eprintln!("load seed {seed}");
        let thread = std::thread::spawn(move || {
            use etcd_client::{DeleteOptions, Txn, TxnOp};
            let (rt, mut c) = client(&endpoint);
            let mut x = seed | 1;
            let mut next = || {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            };
            let mut seq = 0u64;
            while !flag.load(Ordering::Relaxed) {
                seq += 1;
                let r = next();
                let key = format!("/m/k{:03}", r % 200);
                let result = rt.block_on(async {
                    match r % 20 {
                        0..=11 => c.put(key, format!("seq-{seq}"), None).await.map(drop),
                        12..=15 => c.delete(key, None).await.map(drop),
                        16 => c.put("/other/x", format!("seq-{seq}"), None).await.map(drop),
                        17 => {
                            // Five keys in one revision.
                            let ops: Vec<TxnOp> = (0..5)
                                .map(|i| {
                                    TxnOp::put(
                                        format!("/m/t{:02}", (r / 20 + i) % 40),
                                        format!("seq-{seq}"),
                                        None,
                                    )
                                })
                                .collect();
                            c.txn(Txn::new().and_then(ops)).await.map(drop)
                        }
                        18 => c
                            .delete(format!("/m/t{}", r % 4), Some(DeleteOptions::new().with_prefix()))
                            .await
                            .map(drop),
                        _ => c.put(format!("/m/k{:03}", r % 200), format!("seq-{seq}"), None).await.map(drop),
                    }
                });
                if result.is_ok() {
                    count.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        Self { stop, writes, thread: Some(thread) }
    }

    fn stop(&mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.writes.load(Ordering::Relaxed)
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Watches the destination and records any put whose "seq-N" is not newer than the key's last one:
/// an event applied twice, or out of order (each N is put once per key on the source).
struct Order {
    regressions: Arc<Mutex<Vec<String>>>,
    seen: Arc<AtomicU64>,
    _guard: tokio::runtime::Runtime,
}

impl Order {
    fn watch(endpoint: &str) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let regressions = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::new(AtomicU64::new(0));
        let (out, count, endpoint) = (regressions.clone(), seen.clone(), endpoint.to_string());
        let mut c =
            rt.block_on(etcd_client::Client::connect([endpoint], None)).expect("connect to the destination");
        let mut stream = rt
            .block_on(c.watch("/copy/m/", Some(etcd_client::WatchOptions::new().with_prefix())))
            .expect("watch the destination");
        rt.spawn(async move {
            let _keep = c;
            let mut last: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
            while let Ok(Some(resp)) = stream.message().await {
                for e in resp.events() {
                    let Some(kv) = e.kv() else { continue };
                    count.fetch_add(1, Ordering::Relaxed);
                    if e.event_type() != etcd_client::EventType::Put {
                        continue;
                    }
                    let seq: u64 =
                        String::from_utf8_lossy(kv.value()).trim_start_matches("seq-").parse().unwrap_or(0);
                    let before = last.insert(kv.key().to_vec(), seq).unwrap_or(0);
                    if seq <= before {
                        out.lock().unwrap().push(format!(
                            "{}: seq-{seq} after seq-{before} (destination revision {})",
                            String::from_utf8_lossy(kv.key()),
                            kv.mod_revision()
                        ));
                    }
                }
            }
        });
        Self { regressions, seen, _guard: rt }
    }
}

fn mirror(from: &str, to: &str, log: &Path, extra: &[&str]) -> ChildGuard {
    let err = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("mirror log");
    let child = etcdeck()
        .args(["mirror", "--from", from, "--to", to])
        .args(MIRROR)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err)
        .spawn()
        .expect("start etcdeck mirror");
    ChildGuard(child)
}

fn kill(mut guard: ChildGuard) {
    let _ = guard.0.kill();
    let _ = guard.0.wait();
}

/// The checkpoint in the destination, if any.
fn checkpoint(dest: &str) -> Option<Checkpoint> {
    let (rt, mut c) = client(dest);
    let resp = rt.block_on(c.get(checkpoint_key(b"/copy/m/"), None)).ok()?;
    resp.kvs().first().map(|kv| Checkpoint::decode(kv.value()).expect("a checkpoint"))
}

fn revision(endpoint: &str) -> i64 {
    let (rt, mut c) = client(endpoint);
    rt.block_on(c.get("/", None)).expect("read").header().expect("header").revision()
}

fn keys(endpoint: &str, prefix: &str) -> BTreeMap<String, String> {
    let (rt, mut c) = client(endpoint);
    let resp = rt.block_on(c.get(prefix, Some(etcd_client::GetOptions::new().with_prefix()))).expect("read");
    resp.kvs()
        .iter()
        .map(|kv| {
            (String::from_utf8_lossy(kv.key()).into_owned(), String::from_utf8_lossy(kv.value()).into_owned())
        })
        .collect()
}

/// Waits (bounded) until the destination's checkpoint has reached the source's revision. The last
/// write must be in the mirrored prefix: against etcd before 3.4.25 (and etcdeck, which reports
/// 3.4.0) the checkpoint moves with the prefix's events, not with writes elsewhere.
fn wait_caught_up(source: &str, dest: &str, log: &Path) {
    let target = revision(source);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if checkpoint(dest).is_some_and(|cp| cp.revision >= target && cp.sub == 0) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the mirror did not reach source revision {target} in 60 s: {:?}\n{}",
            checkpoint(dest),
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn verify(source: &str, dest: &str) -> (Option<i32>, String) {
    let out = etcdeck()
        .args([
            "mirror",
            "verify",
            "--from",
            source,
            "--to",
            dest,
            "--prefix",
            "/m/",
            "--dest-prefix",
            "/copy/m/",
        ])
        .output()
        .expect("run mirror verify");
    (
        out.status.code(),
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
    )
}

/// The whole scenario on one source and one destination: kill -9 six times under load, a
/// compaction past the checkpoint while the mirror is down, then catch up and compare.
fn survives_kills_and_compaction(source: &str, dest: &str, compact: impl Fn(i64)) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mirror.log");
    let order = Order::watch(dest);
    let mut load = Load::start(source);
    let mut x =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() as u64;
    for round in 0..6 {
        let child = mirror(source, dest, &log, &[]);
        // A random point: 300 to 1,500 ms into the run (the copy, or the watch).
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let wait = 300 + (x >> 33) % 1200;
        std::thread::sleep(Duration::from_millis(wait));
        kill(child);
        eprintln!(
            "round {round}: killed after {wait} ms; checkpoint {:?}",
            checkpoint(dest).map(|c| (c.revision, c.sub))
        );
    }
    // Down: the source moves on, then compacts past the checkpoint.
    std::thread::sleep(Duration::from_millis(500));
    let at = checkpoint(dest).expect("a checkpoint").revision;
    let now = revision(source);
    assert!(now > at + 1, "the load wrote while the mirror was down");
    compact(now);
    let child = mirror(source, dest, &log, &[]);
    std::thread::sleep(Duration::from_millis(1500));
    let writes = load.stop();
    // The load's last write may be outside the prefix: one more inside it marks the end.
    let (rt, mut c) = client(source);
    rt.block_on(c.put("/m/zz-end", "seq-999999999", None)).expect("put the end marker");
    wait_caught_up(source, dest, &log);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.matches("resuming from the checkpoint").count() >= 6, "{text}");
    assert!(text.contains("the source compacted past the checkpoint"), "{text}");
    assert!(text.contains("reconciled at source revision"), "{text}");
    let (code, report) = verify(source, dest);
    assert_eq!(code, Some(0), "mirror verify: {report}\n{text}");
    assert!(report.contains("the revision of the destination's mirror checkpoint"), "{report}");
    let src = keys(source, "/m/");
    let dst: BTreeMap<String, String> =
        keys(dest, "/copy/m/").into_iter().map(|(k, v)| (k.replacen("/copy/m/", "/m/", 1), v)).collect();
    assert!(!src.is_empty());
    assert_eq!(src, dst, "the destination differs from the source");
    assert!(keys(dest, "/other/").is_empty(), "keys outside the prefix were mirrored");
    kill(child);
    let regressions = order.regressions.lock().unwrap().clone();
    assert!(
        regressions.is_empty(),
        "a key was applied twice or went back to an older value:\n{}",
        regressions.join("\n")
    );
    eprintln!(
        "{writes} source writes, {} destination events, {} keys equal",
        order.seen.load(Ordering::Relaxed),
        src.len()
    );
}

#[test]
fn mirror_of_etcd_survives_kill_9_and_compaction_and_ends_equal() {
    let Some(tools) = etcd_tools() else { return };
    let source = EtcdCluster::start(&tools, 1);
    let dest = EtcdCluster::start(&tools, 1);
    source.wait_healthy(Duration::from_secs(20));
    dest.wait_healthy(Duration::from_secs(20));
    let (s, d) = (source.members[0].client_url.clone(), dest.members[0].client_url.clone());
    survives_kills_and_compaction(&s, &d, |rev| {
        let (ok, _, err) = source.etcdctl(&["compact", &rev.to_string()]);
        assert!(ok, "compact: {err}");
    });
}

#[test]
fn mirror_of_etcdeck_survives_kill_9_and_compaction_and_ends_equal() {
    let source = EtcdeckNode::start("src", &[]);
    let dest = EtcdeckNode::start("dst", &[]);
    let (s, d) = (source.client_url.clone(), dest.client_url.clone());
    survives_kills_and_compaction(&s, &d, |rev| {
        let (rt, mut c) = client(&s);
        rt.block_on(c.compact(rev, None)).expect("compact");
    });
}

#[test]
fn mirror_writes_a_tls_destination() {
    let Some(tools) = etcd_tools() else { return };
    let pki = support::TestPki::create();
    let source = EtcdeckNode::start("src", &[]);
    let dest = EtcdCluster::start_with(&tools, 1, Some(&pki.server()));
    let d = dest.members[0].client_url.clone();
    let (rt, mut c) = client(&source.client_url);
    for i in 0..30 {
        rt.block_on(c.put(format!("/m/k{i}"), format!("v{i}"), None)).unwrap();
    }
    let tls = [
        format!("--dest-cacert={}", pki.path("ca.crt").display()),
        format!("--dest-cert={}", pki.path("client.crt").display()),
        format!("--dest-key={}", pki.path("client.key").display()),
    ];
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mirror.log");
    let metrics = format!("127.0.0.1:{}", support::free_port());
    let mut flags: Vec<&str> = tls.iter().map(String::as_str).collect();
    flags.extend(["--listen-metrics", &metrics]);
    let child = mirror(&source.client_url, &d, &log, &flags);
    rt.block_on(c.put("/m/late", "after the copy", None)).unwrap();
    let target = revision(&source.client_url);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = etcdeck()
            .args(["mirror", "verify", "--from", &source.client_url, "--to", &d, "--prefix", "/m/"])
            .args(["--dest-prefix", "/copy/m/"])
            .args(&tls)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.code() == Some(0) && text.contains(&format!("at revision {target} ")) {
            assert!(text.contains("compared 31 source keys and 31 destination keys"), "{text}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not mirrored over TLS in 30 s: {text}{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let text = support::http_get(&metrics, "/metrics").expect("metrics served");
    for needle in [
        format!("etcdeck_mirror_checkpoint_revision {target}\n"),
        "etcdeck_mirror_lag_revisions 0\n".into(),
        "etcdeck_mirror_synced_keys_total 31\n".into(),
        "etcdeck_mirror_errors_total{side=\"destination\"} 0\n".into(),
        "etcdeck_mirror_reconcile_runs_total 0\n".into(),
    ] {
        assert!(text.contains(&needle), "{needle} in:\n{text}");
    }
    kill(child);
    // Without the client certificate the destination refuses the handshake: a retry, not an exit.
    let child = mirror(&source.client_url, &d, &log, &[&tls[0]]);
    std::thread::sleep(Duration::from_secs(2));
    let mut child = child;
    assert!(child.0.try_wait().unwrap().is_none(), "the mirror exited on a refused connection");
    kill(child);
}

#[test]
fn mirror_refuses_a_different_source_and_a_destination_it_did_not_write() {
    let first = EtcdeckNode::start("first", &[]);
    let other = EtcdeckNode::start("other", &["--initial-cluster-token=another-cluster"]);
    let dest = EtcdeckNode::start("dst", &[]);
    let (rt, mut c) = client(&first.client_url);
    rt.block_on(c.put("/m/a", "1", None)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mirror.log");
    let child = mirror(&first.client_url, &dest.client_url, &log, &[]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while checkpoint(&dest.client_url).is_none_or(|cp| cp.phase != etcdeck::etcd::mirror::Phase::Watch) {
        assert!(Instant::now() < deadline, "{}", std::fs::read_to_string(&log).unwrap_or_default());
        std::thread::sleep(Duration::from_millis(50));
    }
    kill(child);
    let out = etcdeck()
        .args(["mirror", "--from", &other.client_url, "--to", &dest.client_url])
        .args(MIRROR)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("is of a mirror of source cluster") && err.contains("refusing to resume"), "{err}");
    assert_eq!(keys(&dest.client_url, "/copy/m/").len(), 1, "the refused mirror wrote nothing");

    // Keys no mirror wrote: refused, unless --reconcile.
    let (rt2, mut d) = client(&dest.client_url);
    rt2.block_on(d.put("/mine/x", "operator's", None)).unwrap();
    let run = |extra: &[&str]| {
        let mut cmd = etcdeck();
        cmd.args(["mirror", "--from", &other.client_url, "--to", &dest.client_url, "--prefix", "/m/"])
            .args(["--dest-prefix", "/mine/", "--status-interval", "1s"])
            .args(extra);
        cmd
    };
    let out = run(&[]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("the destination already has 1 keys under \"/mine/\" and no mirror checkpoint"),
        "{err}"
    );
    assert_eq!(keys(&dest.client_url, "/mine/").len(), 1);
    let mut reconciling = ChildGuard(run(&["--reconcile"]).stderr(Stdio::piped()).spawn().unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    while keys(&dest.client_url, "/mine/").contains_key("/mine/x") {
        assert!(Instant::now() < deadline, "--reconcile did not make the destination equal");
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = reconciling.0.kill();
    let _ = reconciling.0.wait();

    // etcdctl's argument errors.
    let out = etcdeck()
        .args(["mirror", "--to", &dest.client_url, "--dest-prefix", "/a", "--no-dest-prefix"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(128));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("`--dest-prefix` and `--no-dest-prefix` cannot be set at the same time, choose one"));
}

/// A destination out of space (etcd's NOSPACE alarm): the batch is refused, the checkpoint stays
/// before it, the mirror reports and retries; once the destination has room again it goes on and
/// ends equal to the source.
#[test]
fn mirror_waits_out_a_destination_without_space_and_loses_nothing() {
    let Some(tools) = etcd_tools() else { return };
    let source = EtcdeckNode::start("src", &[]);
    let dest = EtcdCluster::start_full(&tools, 1, None, &["--quota-backend-bytes=8388608"]);
    dest.wait_healthy(Duration::from_secs(20));
    let d = dest.members[0].client_url.clone();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mirror.log");
    let metrics = format!("127.0.0.1:{}", support::free_port());
    let child = mirror(&source.client_url, &d, &log, &["--listen-metrics", &metrics]);
    // 12 MB of values: more than the destination's 8 MB quota.
    let (rt, mut c) = client(&source.client_url);
    let value = "v".repeat(200_000);
    for i in 0..60 {
        rt.block_on(c.put(format!("/m/big{i:02}"), value.clone(), None)).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("destination: etcdserver: mvcc: database space exceeded; retrying in") {
            break;
        }
        assert!(Instant::now() < deadline, "no NOSPACE reported in 30 s:\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let stuck = checkpoint(&d).map(|cp| (cp.revision, cp.sub));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        checkpoint(&d).map(|cp| (cp.revision, cp.sub)),
        stuck,
        "the checkpoint stays before the refused batch"
    );
    let text = support::http_get(&metrics, "/metrics").unwrap_or_default();
    assert!(!text.contains("etcdeck_mirror_errors_total{side=\"destination\"} 0\n"), "{text}");
    // Room again: the destination restarted with a larger quota, its alarm disarmed.
    let (name, peer) = (dest.members[0].name.clone(), dest.members[0].peer_url.clone());
    let data = dest.dir().join(format!("{name}.etcd"));
    let mut dest = dest;
    dest.stop(0);
    let mut again = std::process::Command::new(&tools.etcd);
    again
        .args(["--name", &name, "--data-dir", &data.display().to_string()])
        .args(["--listen-client-urls", &d, "--advertise-client-urls", &d])
        .args(["--listen-peer-urls", &peer, "--initial-advertise-peer-urls", &peer])
        .args(["--initial-cluster", &format!("{name}={peer}")])
        .arg("--quota-backend-bytes=1073741824")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _etcd = support::Killed(again.spawn().unwrap());
    support::wait_endpoints_healthy(
        &tools.etcdctl,
        std::slice::from_ref(&d),
        "the destination",
        Duration::from_secs(20),
    );
    let (ok, _, err) = support::run_etcdctl(&tools.etcdctl, std::slice::from_ref(&d), &["alarm", "disarm"]);
    assert!(ok, "{err}");
    wait_caught_up(&source.client_url, &d, &log);
    let (code, report) = verify(&source.client_url, &d);
    assert_eq!(code, Some(0), "{report}");
    assert!(report.contains("compared 60 source keys and 60 destination keys"), "{report}");
    kill(child);
}

/// Values near etcd's request limit (1.5 MiB by default): batches hold several keys only while
/// they stay under 1 MiB, so the destination takes each one, in the copy and in the watch.
#[test]
fn mirror_carries_values_near_the_request_limit() {
    let Some(tools) = etcd_tools() else { return };
    let source = EtcdeckNode::start("src", &[]);
    let dest = EtcdCluster::start(&tools, 1);
    dest.wait_healthy(Duration::from_secs(20));
    let d = dest.members[0].client_url.clone();
    let (rt, mut c) = client(&source.client_url);
    let value = "v".repeat(900_000);
    for i in 0..4 {
        rt.block_on(c.put(format!("/m/copy{i}"), value.clone(), None)).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mirror.log");
    let child = mirror(&source.client_url, &d, &log, &[]);
    wait_caught_up(&source.client_url, &d, &log);
    // While it watches: four more in quick succession, which arrive together.
    for i in 0..4 {
        rt.block_on(c.put(format!("/m/watch{i}"), value.clone(), None)).unwrap();
    }
    wait_caught_up(&source.client_url, &d, &log);
    let (code, report) = verify(&source.client_url, &d);
    assert_eq!(code, Some(0), "{report}\n{}", std::fs::read_to_string(&log).unwrap_or_default());
    assert!(report.contains("compared 8 source keys and 8 destination keys"), "{report}");
    kill(child);
}
