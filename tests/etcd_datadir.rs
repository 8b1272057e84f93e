//! `etcdeck node` started on etcd 3.4's own data dirs: one `etcdctl snapshot restore` made, and a
//! copy of a member's dir taken after kill -9 during load. The node serves what etcd serves on the
//! same files (every key with its revisions, hashkv, leases, users, roles, member and cluster IDs)
//! and every write etcd acknowledged; etcd's files are left untouched. A dir a running etcd holds
//! and a damaged WAL are refused, naming the file, with nothing written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::etcd_snapshot::{fill, filled_and_saved, seen};
use crate::support::{
    etcd_tools, free_port, run_etcdctl, wait_endpoints_healthy, EtcdCluster, EtcdeckNode, RestoredEtcd,
};

/// Every file under `dir` with its bytes' SHA-256 (hex) or "dir": what "untouched" means.
fn tree(dir: &Path) -> BTreeMap<PathBuf, String> {
    use sha2::{Digest, Sha256};
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                out.insert(p.clone(), "dir".to_string());
                stack.push(p);
            } else {
                let bytes = std::fs::read(&p).expect("read");
                out.insert(p, format!("{:x}", Sha256::digest(&bytes)));
            }
        }
    }
    out
}

fn copy_dir(from: &Path, to: &Path) {
    let ok = std::process::Command::new("cp").arg("-a").arg(from).arg(to).status().expect("cp");
    assert!(ok.success(), "cp -a {} {}", from.display(), to.display());
}

/// Node flags for the member `name` of etcd's cluster, on its own URLs.
fn node_flags(name: &str, peer: &str) -> Vec<String> {
    vec![
        format!("--listen-peer-urls={peer}"),
        format!("--initial-advertise-peer-urls={peer}"),
        format!("--initial-cluster={name}={peer}"),
    ]
}

/// Starts a node on `data`, expecting a refusal; returns its log.
fn refused(name: &str, data: &Path, peer: &str) -> String {
    let client = format!("http://127.0.0.1:{}", free_port());
    let flags = node_flags(name, peer);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut node = EtcdeckNode::spawn_at(name, data, &client, &flags);
    let code = node.wait_exit(Duration::from_secs(20));
    let log = node.log_text();
    assert!(code.is_some_and(|c| c != 0), "the node should refuse {}: {log}", data.display());
    log
}

fn member_and_cluster(etcdctl: &Path, url: &str) -> (u64, u64) {
    let (ok, out, err) = run_etcdctl(etcdctl, &[url.to_string()], &["endpoint", "status", "-w", "json"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    let h = &v[0]["Status"]["header"];
    (h["member_id"].as_u64().expect("member"), h["cluster_id"].as_u64().expect("cluster"))
}

#[test]
fn a_node_starts_on_a_dir_etcdctl_snapshot_restore_made_and_serves_what_etcd_serves_there() {
    let Some(tools) = etcd_tools() else { return };
    let (mut cluster, lease, dir, saved) = filled_and_saved(&tools);
    cluster.kill(0);

    let peer = format!("http://127.0.0.1:{}", free_port());
    let restored = dir.path().join("r1.etcd");
    let initial_cluster = format!("r1={peer}");
    let client = format!("http://127.0.0.1:{}", free_port());
    let member = RestoredEtcd {
        name: "r1",
        data_dir: &restored,
        client_url: &client,
        peer_url: &peer,
        initial_cluster: &initial_cluster,
        token: None,
    };
    member.restore(&tools.etcdctl, &saved);
    let for_node = dir.path().join("copy.etcd");
    copy_dir(&restored, &for_node);
    let etcds_files = tree(&for_node);

    // The node on the copy.
    let flags = node_flags("r1", &peer);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut node = EtcdeckNode::spawn_at("r1", &for_node, &client, &flags);
    node.wait_serving(Duration::from_secs(30));
    let log = node.log_text();
    assert!(log.contains("imported etcd member"), "{log}");
    let on_node = seen(&tools.etcdctl, &client, &lease);
    let ids_node = member_and_cluster(&tools.etcdctl, &client);
    node.kill();
    // etcd's files are as they were; the node's own are beside them.
    let after = tree(&for_node);
    for (path, hash) in &etcds_files {
        assert_eq!(after.get(path), Some(hash), "{} changed", path.display());
    }

    // etcd on the original.
    let etcd = member.start(&tools.etcd, &dir.path().join("r1.log"), &[]);
    wait_endpoints_healthy(
        &tools.etcdctl,
        std::slice::from_ref(&client),
        "etcd on the restored dir",
        Duration::from_secs(20),
    );
    let on_etcd = seen(&tools.etcdctl, &client, &lease);
    let ids_etcd = member_and_cluster(&tools.etcdctl, &client);
    drop(etcd);
    eprintln!("etcd: {} · {}; node: {} · {}", on_etcd[0], on_etcd[3], on_node[0], on_node[3]);
    for (e, n) in on_etcd.iter().zip(&on_node) {
        assert_eq!(n, e, "etcd served the first, the node the second");
    }
    assert_eq!(ids_node, ids_etcd, "member and cluster IDs");
}

#[test]
fn a_node_starts_on_a_copy_of_a_member_killed_under_load_and_serves_every_acknowledged_write() {
    let Some(tools) = etcd_tools() else { return };
    let mut cluster = EtcdCluster::start(&tools, 1);
    cluster.wait_healthy(Duration::from_secs(20));
    let lease = fill(&|args| cluster.etcdctl(args));
    let url = cluster.members[0].client_url.clone();
    let peer = cluster.members[0].peer_url.clone();
    let name = cluster.members[0].name.clone();
    let member_dir = cluster.dir().join(format!("{name}.etcd"));

    // While etcd runs, its dir is refused, and nothing is written to it.
    let before = tree(&member_dir.join("member").join("snap"));
    let other_peer = format!("http://127.0.0.1:{}", free_port());
    let log = refused(&name, &member_dir, &other_peer);
    assert!(log.contains("member/snap/db is locked: a running etcd holds this data dir"), "{log}");
    assert!(!member_dir.join("member").join("etcdeck-member.json").exists());
    assert!(!member_dir.join("member").join("etcdeck").exists());
    assert!(!member_dir.join("member").join("lock").exists());
    assert_eq!(tree(&member_dir.join("member").join("snap")).len(), before.len());

    // Load: 8 writers, each key recorded once etcd acknowledged it; etcd is killed under them.
    let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers = {
        let (acked, stop, url) = (acked.clone(), stop.clone(), url.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().expect("runtime");
            rt.block_on(async move {
                let client = etcd_client::Client::connect([url.as_str()], None).await.expect("connect");
                let mut tasks = Vec::new();
                for w in 0..8 {
                    let (mut kv, acked, stop) = (client.kv_client(), acked.clone(), stop.clone());
                    tasks.push(tokio::spawn(async move {
                        for n in 0u64.. {
                            if stop.load(std::sync::atomic::Ordering::Relaxed) {
                                break;
                            }
                            let (k, v) = (format!("load/{w}/{n:06}"), format!("value-{w}-{n}"));
                            let put = tokio::time::timeout(
                                Duration::from_secs(2),
                                kv.put(k.clone(), v.clone(), None),
                            );
                            match put.await {
                                Ok(Ok(_)) => acked.lock().expect("lock").push((k, v)),
                                _ => break,
                            }
                        }
                    }));
                }
                for t in tasks {
                    let _ = t.await;
                }
            });
        })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while acked.lock().expect("lock").len() < 1500 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    cluster.kill(0);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writers.join().expect("writers");
    let acked = acked.lock().expect("lock").clone();
    assert!(acked.len() >= 100, "only {} writes were acknowledged before the kill", acked.len());

    let dir = tempfile::tempdir().expect("temp dir");
    let copy = dir.path().join("copy.etcd");
    copy_dir(&member_dir, &copy);
    let etcds_files = tree(&copy);

    // A copy with one bit flipped in a WAL record is refused, naming the file and offset, and
    // nothing is written.
    let damaged = dir.path().join("damaged.etcd");
    copy_dir(&member_dir, &damaged);
    let wal = std::fs::read_dir(damaged.join("member").join("wal"))
        .expect("wal dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .min()
        .expect("a WAL segment");
    let mut bytes = std::fs::read(&wal).expect("read");
    bytes[200] ^= 0x20;
    std::fs::write(&wal, &bytes).expect("write");
    let damaged_files = tree(&damaged);
    let log = refused(&name, &damaged, &peer);
    assert!(log.contains(&format!("{}: at offset", wal.display())), "{log}");
    assert!(log.contains("etcd's files were left as they are"), "{log}");
    assert_eq!(tree(&damaged), damaged_files, "a refused start wrote to the dir");

    // The node on the copy serves every acknowledged write.
    let client = format!("http://127.0.0.1:{}", free_port());
    let flags = node_flags(&name, &peer);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut node = EtcdeckNode::spawn_at(&name, &copy, &client, &flags);
    node.wait_serving(Duration::from_secs(30));
    let log = node.log_text();
    let (ok, out, err) = run_etcdctl(
        &tools.etcdctl,
        std::slice::from_ref(&client),
        &["get", "load/", "--prefix", "-w", "json"],
    );
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    let served: BTreeMap<String, String> = v["kvs"]
        .as_array()
        .map(|kvs| {
            kvs.iter()
                .map(|kv| {
                    let text = |f: &str| {
                        use base64::Engine as _;
                        let b = base64::engine::general_purpose::STANDARD
                            .decode(kv[f].as_str().unwrap_or_default())
                            .expect("base64");
                        String::from_utf8(b).expect("utf-8")
                    };
                    (text("key"), text("value"))
                })
                .collect()
        })
        .unwrap_or_default();
    let lost: Vec<&(String, String)> = acked.iter().filter(|(k, v)| served.get(k) != Some(v)).collect();
    eprintln!(
        "{} writes acknowledged before kill -9; the node serves {} load keys, {} acknowledged ones missing; {}",
        acked.len(),
        served.len(),
        lost.len(),
        log.lines().find(|l| l.contains("imported etcd member")).unwrap_or_default()
    );
    assert!(lost.is_empty(), "acknowledged writes missing: {:?}", &lost[..lost.len().min(5)]);
    let on_node = seen(&tools.etcdctl, &client, &lease);
    node.kill();
    let after = tree(&copy);
    for (path, hash) in &etcds_files {
        assert_eq!(after.get(path), Some(hash), "{} changed", path.display());
    }
    // A second start is the node's own dir now: no import.
    let mut node = EtcdeckNode::spawn_at(&name, &copy, &client, &flags);
    node.wait_serving(Duration::from_secs(30));
    assert_eq!(node.log_text().matches("imported etcd member").count(), 1);
    node.kill();

    // etcd restarted on its own dir serves the same.
    cluster.restart(0);
    cluster.wait_healthy(Duration::from_secs(20));
    let on_etcd = seen(&tools.etcdctl, &url, &lease);
    eprintln!("etcd: {} · {}; node: {} · {}", on_etcd[0], on_etcd[3], on_node[0], on_node[3]);
    for (e, n) in on_etcd.iter().zip(&on_node) {
        assert_eq!(n, e, "etcd served the first, the node the second");
    }
}

/// A WAL holding an entry the node cannot apply (a v2 API write, etcd's --enable-v2) is refused,
/// naming the segment, the offset and the entry, and nothing is written.
#[test]
fn a_wal_entry_the_node_cannot_apply_is_refused_by_name() {
    let Some(tools) = etcd_tools() else { return };
    let mut cluster = EtcdCluster::start_full(&tools, 1, None, &["--enable-v2"]);
    cluster.wait_healthy(Duration::from_secs(20));
    let url = cluster.members[0].client_url.clone();
    let (name, peer) = (cluster.members[0].name.clone(), cluster.members[0].peer_url.clone());
    assert!(cluster.etcdctl(&["put", "v3-key", "x"]).0);
    let mut v2 = std::process::Command::new(&tools.etcdctl);
    crate::support::without_etcdctl_env(&mut v2);
    let out = v2
        .env("ETCDCTL_API", "2")
        .args(["--endpoints", &url, "set", "/v2-key", "y"])
        .output()
        .expect("etcdctl");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    cluster.kill(0);
    let dir = tempfile::tempdir().expect("temp dir");
    let copy = dir.path().join("copy.etcd");
    copy_dir(&cluster.dir().join(format!("{name}.etcd")), &copy);
    let before = tree(&copy);
    let log = refused(&name, &copy, &peer);
    assert!(log.contains("a v2 API request (PUT /1/v2-key)"), "{log}");
    assert!(log.contains(".wal: at offset"), "{log}");
    assert_eq!(tree(&copy), before, "a refused start wrote to the dir");
}
