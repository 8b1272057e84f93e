//! The migration the README documents, end to end under load: a three-member etcd 3.4 cluster
//! becomes an etcdeck cluster (each etcd member stopped, an etcdeck node started on its data dir
//! with the same flags), then goes back (a write freeze, `etcdctl snapshot save` from etcdeck,
//! `etcdctl snapshot restore` on every member, etcd started on the restored dirs). Every write
//! acknowledged on either side is served at the end, and `endpoint hashkv --cluster` at a
//! revision taken before each switch is the same after it, on every member.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::{
    etcd_tools, free_port, run_etcdctl, wait_endpoints_healthy, EtcdCluster, EtcdeckNode, RestoredEtcd,
};

/// Writers that keep putting new keys through every endpoint, recording each acknowledged one;
/// failed writes (the cluster down during a switch) are retried with the next key.
struct Load {
    acked: Arc<Mutex<Vec<(String, String)>>>,
    paused: Arc<AtomicBool>,
    in_flight: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    failed: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(endpoints: Vec<String>) -> Self {
        let load = Load {
            acked: Arc::default(),
            paused: Arc::default(),
            in_flight: Arc::default(),
            stop: Arc::default(),
            failed: Arc::default(),
            thread: None,
        };
        let (acked, paused, in_flight, stop, failed) = (
            load.acked.clone(),
            load.paused.clone(),
            load.in_flight.clone(),
            load.stop.clone(),
            load.failed.clone(),
        );
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().expect("runtime");
            rt.block_on(async move {
                let options = etcd_client::ConnectOptions::new()
                    .with_connect_timeout(Duration::from_secs(1))
                    .with_timeout(Duration::from_secs(2));
                let client = etcd_client::Client::connect(endpoints, Some(options)).await.expect("connect");
                let mut tasks = Vec::new();
                for w in 0..4 {
                    let mut kv = client.kv_client();
                    let (acked, paused, in_flight, stop, failed) =
                        (acked.clone(), paused.clone(), in_flight.clone(), stop.clone(), failed.clone());
                    tasks.push(tokio::spawn(async move {
                        let mut n = 0u64;
                        while !stop.load(SeqCst) {
                            if paused.load(SeqCst) {
                                tokio::time::sleep(Duration::from_millis(10)).await;
                                continue;
                            }
                            in_flight.fetch_add(1, SeqCst);
                            if paused.load(SeqCst) {
                                in_flight.fetch_sub(1, SeqCst);
                                continue;
                            }
                            n += 1;
                            let (k, v) = (format!("load/{w}/{n:07}"), format!("v{w}.{n}"));
                            let put = tokio::time::timeout(
                                Duration::from_secs(3),
                                kv.put(k.clone(), v.clone(), None),
                            );
                            match put.await {
                                Ok(Ok(_)) => acked.lock().expect("lock").push((k, v)),
                                _ => {
                                    failed.fetch_add(1, SeqCst);
                                    tokio::time::sleep(Duration::from_millis(50)).await;
                                }
                            }
                            in_flight.fetch_sub(1, SeqCst);
                        }
                    }));
                }
                for t in tasks {
                    let _ = t.await;
                }
            });
        });
        Load { thread: Some(thread), ..load }
    }

    fn acked(&self) -> usize {
        self.acked.lock().expect("lock").len()
    }

    /// Waits (up to `limit`) until `more` writes beyond now are acknowledged.
    fn wait_for(&self, more: usize, limit: Duration) {
        let target = self.acked() + more;
        let deadline = Instant::now() + limit;
        while self.acked() < target {
            assert!(Instant::now() < deadline, "the load made no progress: {} acknowledged", self.acked());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The write freeze before a snapshot: returns once no write is in flight.
    fn pause(&self) {
        self.paused.store(true, SeqCst);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.in_flight.load(SeqCst) > 0 {
            assert!(Instant::now() < deadline, "writes still in flight after 10 s");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn resume(&self) {
        self.paused.store(false, SeqCst);
    }

    fn finish(mut self) -> (Vec<(String, String)>, usize) {
        self.stop.store(true, SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().expect("load thread");
        }
        (self.acked.lock().expect("lock").clone(), self.failed.load(SeqCst))
    }
}

fn ctl_json(etcdctl: &Path, endpoints: &[String], args: &[&str]) -> serde_json::Value {
    let mut all = args.to_vec();
    all.extend(["-w", "json"]);
    let (ok, out, err) = run_etcdctl(etcdctl, endpoints, &all);
    assert!(ok, "etcdctl {args:?}: {err}");
    serde_json::from_str(&out).expect("json")
}

/// `endpoint hashkv --rev R` on each endpoint: (hash, compact revision) per endpoint.
fn hashkv(etcdctl: &Path, endpoints: &[String], rev: i64) -> Vec<(u64, i64)> {
    endpoints
        .iter()
        .map(|e| {
            let v = ctl_json(
                etcdctl,
                std::slice::from_ref(e),
                &["endpoint", "hashkv", "--rev", &rev.to_string()],
            );
            let h = &v[0]["HashKV"];
            (h["hash"].as_u64().expect("hash"), h["compact_revision"].as_i64().unwrap_or(0))
        })
        .collect()
}

fn revision(etcdctl: &Path, endpoints: &[String]) -> i64 {
    let v = ctl_json(etcdctl, &endpoints[..1], &["endpoint", "status"]);
    v[0]["Status"]["header"]["revision"].as_i64().expect("revision")
}

/// Every load key the cluster serves, with its value.
fn served(etcdctl: &Path, endpoints: &[String]) -> BTreeMap<String, String> {
    use base64::Engine as _;
    let v = ctl_json(etcdctl, &endpoints[..1], &["get", "load/", "--prefix"]);
    let text = |s: &serde_json::Value| {
        let b =
            base64::engine::general_purpose::STANDARD.decode(s.as_str().unwrap_or_default()).expect("base64");
        String::from_utf8(b).expect("utf-8")
    };
    v["kvs"]
        .as_array()
        .map(|kvs| kvs.iter().map(|kv| (text(&kv["key"]), text(&kv["value"]))).collect())
        .unwrap_or_default()
}

#[test]
fn a_three_member_etcd_cluster_becomes_etcdeck_and_back_under_load_losing_nothing() {
    let Some(tools) = etcd_tools() else { return };
    let etcdctl = tools.etcdctl.clone();
    let mut cluster = EtcdCluster::start(&tools, 3);
    cluster.wait_healthy(Duration::from_secs(30));
    let endpoints = cluster.client_urls();
    let initial_cluster: String =
        cluster.members.iter().map(|m| format!("{}={}", m.name, m.peer_url)).collect::<Vec<_>>().join(",");
    // Some history first: a compaction, a lease with a key, a user and a role.
    assert!(cluster.etcdctl(&["put", "before", "x"]).0);
    let (_, out, _) = cluster.etcdctl(&["lease", "grant", "900"]);
    let lease = out.split_whitespace().nth(1).expect("lease id").to_string();
    assert!(cluster.etcdctl(&["put", "--lease", &lease, "leased", "y"]).0);
    assert!(cluster.etcdctl(&["role", "add", "reader"]).0);
    assert!(cluster.etcdctl(&["user", "add", "alice:secret"]).0);
    let load = Load::start(endpoints.clone());
    load.wait_for(300, Duration::from_secs(20));
    let rev = revision(&etcdctl, &endpoints);
    assert!(cluster.etcdctl(&["compact", &(rev / 2).to_string()]).0);
    load.wait_for(300, Duration::from_secs(20));

    // etcd → etcdeck: each member stopped (under load) and a node started on its data dir.
    let r1 = revision(&etcdctl, &endpoints);
    let etcd_hash = hashkv(&etcdctl, &endpoints, r1);
    assert!(etcd_hash.windows(2).all(|w| w[0] == w[1]), "etcd's members disagree at {r1}: {etcd_hash:?}");
    let t = Instant::now();
    for i in 0..3 {
        cluster.stop(i);
    }
    let mut nodes: Vec<EtcdeckNode> = cluster
        .members
        .iter()
        .map(|m| {
            let flags = [
                format!("--listen-peer-urls={}", m.peer_url),
                format!("--initial-advertise-peer-urls={}", m.peer_url),
                format!("--initial-cluster={initial_cluster}"),
            ];
            let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
            let data = cluster.dir().join(format!("{}.etcd", m.name));
            EtcdeckNode::spawn_at(&m.name, &data, &m.client_url, &flags)
        })
        .collect();
    for n in &mut nodes {
        n.wait_serving(Duration::from_secs(30));
        assert!(n.log_text().contains("imported etcd member"), "{}", n.log_text());
    }
    wait_endpoints_healthy(&etcdctl, &endpoints, "the etcdeck cluster", Duration::from_secs(30));
    let downtime = t.elapsed();
    load.wait_for(300, Duration::from_secs(30));
    let node_hash = hashkv(&etcdctl, &endpoints, r1);
    assert_eq!(node_hash, etcd_hash, "hashkv at revision {r1}: etcd's members, then the etcdeck nodes");
    let (ok, out, _) = run_etcdctl(&etcdctl, &endpoints[..1], &["user", "list"]);
    assert!(ok && out.contains("alice"), "{out}");
    let (ok, out, _) = run_etcdctl(&etcdctl, &endpoints[..1], &["lease", "timetolive", &lease, "--keys"]);
    assert!(ok && out.contains("leased"), "{out}");

    // etcdeck → etcd: a write freeze, a snapshot, etcdctl's restore on every member.
    load.pause();
    let r2 = revision(&etcdctl, &endpoints);
    let deck_hash = hashkv(&etcdctl, &endpoints, r2);
    assert!(deck_hash.windows(2).all(|w| w[0] == w[1]), "the nodes disagree at {r2}: {deck_hash:?}");
    let dir = tempfile::tempdir().expect("temp dir");
    let saved = dir.path().join("etcdeck.snapshot");
    let (ok, _, err) =
        run_etcdctl(&etcdctl, &endpoints[..1], &["snapshot", "save", &saved.display().to_string()]);
    assert!(ok, "{err}");
    let t = Instant::now();
    for n in &mut nodes {
        n.kill();
    }
    let token = format!("back-{}", free_port());
    let mut etcds = Vec::new();
    for m in &cluster.members {
        let data = dir.path().join(format!("{}.etcd", m.name));
        let member = RestoredEtcd {
            name: &m.name,
            data_dir: &data,
            client_url: &m.client_url,
            peer_url: &m.peer_url,
            initial_cluster: &initial_cluster,
            token: Some(&token),
        };
        member.restore(&etcdctl, &saved);
        let log = dir.path().join(format!("{}.log", m.name));
        etcds.push(member.start(&tools.etcd, &log, &["--heartbeat-interval=50", "--election-timeout=500"]));
    }
    wait_endpoints_healthy(
        &etcdctl,
        &endpoints,
        "etcd restored from etcdeck's snapshot",
        Duration::from_secs(30),
    );
    let freeze = t.elapsed();
    let back_hash = hashkv(&etcdctl, &endpoints, r2);
    assert_eq!(back_hash, deck_hash, "hashkv at revision {r2}: the etcdeck nodes, then etcd restored");
    load.resume();
    load.wait_for(300, Duration::from_secs(30));
    let (acked, failed) = load.finish();

    let now = served(&etcdctl, &endpoints);
    let lost: Vec<&(String, String)> = acked.iter().filter(|(k, v)| now.get(k) != Some(v)).collect();
    let end = revision(&etcdctl, &endpoints);
    let final_hash = hashkv(&etcdctl, &endpoints, end);
    eprintln!(
        "migration: {} writes acknowledged ({} failed while members switched), {} lost; etcd → etcdeck: hashkv at {r1} \
         {:?} on both, {:.1} s from the first stop to a healthy etcdeck cluster; etcdeck → etcd: hashkv at {r2} {:?} on \
         both, {:.1} s from the freeze's snapshot to a healthy etcd cluster; final revision {end}, hashkv {:?}",
        acked.len(),
        failed,
        lost.len(),
        etcd_hash[0],
        downtime.as_secs_f64(),
        deck_hash[0],
        freeze.as_secs_f64(),
        final_hash
    );
    assert!(lost.is_empty(), "acknowledged writes lost: {:?}", &lost[..lost.len().min(5)]);
    assert!(
        final_hash.windows(2).all(|w| w[0] == w[1]),
        "etcd's members disagree at the end: {final_hash:?}"
    );
}
