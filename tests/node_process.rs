//! `etcdeck node` as a process: configuration and data-dir errors, systemd readiness, a clean stop,
//! restarts that keep everything, and a crash in the middle of acknowledged writes.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use etcd_client::{Client, GetOptions, PutOptions};

use crate::node_kv::within;
use crate::support::{etcdeck_bin, free_port, http_get, EtcdeckNode};

/// Runs `etcdeck node` with `args` and no ETCD_* variables; returns (exit code, stderr).
fn node(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut cmd = Command::new(etcdeck_bin());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("ETCD") {
            cmd.env_remove(name);
        }
    }
    // A free peer port unless the case sets one (the node always listens for peers, as etcd does).
    let peer_set = args.iter().any(|a| a.contains("listen-peer-urls") || a.contains("config-file"))
        || env.iter().any(|(k, _)| *k == "ETCD_LISTEN_PEER_URLS" || *k == "ETCD_CONFIG_FILE");
    let peer_flag: &[&str] = if peer_set { &[] } else { &["--listen-peer-urls=http://127.0.0.1:0"] };
    let mut child = cmd
        .arg("node")
        .args(args)
        .args(peer_flag)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run etcdeck node");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            out.push(e.path().display().to_string());
            out.extend(listing(&e.path()));
        }
    }
    out.sort();
    out
}

#[test]
fn bad_configuration_exits_1_with_one_line_before_touching_the_disk() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("d");
    let data_flag = format!("--data-dir={}", data.display());
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (vec!["--bogus=1"], vec![], "flag provided but not defined: -bogus"),
        (vec!["--heartbeat-interval=abc"], vec![], "-heartbeat-interval"),
        (vec!["--heartbeat-interval=500", "--election-timeout=100"], vec![], "election-timeout"),
        (vec!["--initial-cluster-state=maybe"], vec![], "initial-cluster-state"),
        (vec![], vec![("ETCD_SNAPSHOT_COUNT", "lots")], "ETCD_SNAPSHOT_COUNT"),
        (
            vec!["--name=x", "--initial-cluster=y=http://127.0.0.1:2380"],
            vec![],
            "couldn't find local name \"x\"",
        ),
        (
            vec![
                "--listen-client-urls=https://127.0.0.1:2379",
                "--advertise-client-urls=https://127.0.0.1:2379",
            ],
            vec![],
            "TLS key/cert (--cert-file, --key-file) must be provided for client url https://127.0.0.1:2379 with HTTPS scheme",
        ),
        (
            vec![
                "--listen-client-urls=https://127.0.0.1:2379",
                "--advertise-client-urls=https://127.0.0.1:2379",
                "--cert-file=/nonexistent/server.crt",
                "--key-file=/nonexistent/server.key",
            ],
            vec![],
            "client TLS: cannot read /nonexistent/server.crt",
        ),
        (
            vec!["--listen-client-urls=unix://127.0.0.1:2379", "--advertise-client-urls=http://127.0.0.1:2379"],
            vec![],
            "--listen-client-urls unix://127.0.0.1:2379: this node serves http:// and https:// URLs only",
        ),
        (
            vec!["--initial-cluster-state=existing"],
            vec![],
            "cannot fetch cluster info from peer urls: could not retrieve cluster information from the given URLs",
        ),
    ];
    for (args, env, expected) in cases {
        let mut all = vec![data_flag.as_str()];
        all.extend(args.iter().copied());
        let (code, err) = node(&all, &env);
        assert_eq!(code, Some(1), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(!data.exists(), "{args:?} created the data dir");
    }
}

#[test]
fn a_data_dir_in_use_foreign_or_damaged_is_refused_and_left_as_it_was() {
    let mut running = EtcdeckNode::start("first", &[]);
    let data = running.data_dir.clone();
    let data_flag = format!("--data-dir={}", data.display());
    let port = free_port();
    let advertise = format!("--advertise-client-urls=http://127.0.0.1:{port}");
    let port = format!("--listen-client-urls=http://127.0.0.1:{port}");

    let (code, err) = node(&["--name=first", &data_flag, &port, &advertise], &[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("in use by another running node"), "{err}");

    assert_eq!(running.terminate(), Some(0), "SIGTERM stops the node cleanly");
    let before = listing(&data);
    let (code, err) = node(&["--name=second", &data_flag, &port, &advertise], &[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("belongs to member \"first\""), "{err}");

    let identity = data.join("member").join("etcdeck-member.json");
    std::fs::write(&identity, "{ not json").expect("damage");
    let (code, err) = node(&["--name=first", &data_flag, &port, &advertise], &[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("is damaged"), "{err}");
    assert_eq!(listing(&data), before, "nothing added or removed");

    // What looks like an etcd data dir (member/snap/db) but whose backend is damaged is refused,
    // naming the file and the offset, and left as it was (tests/etcd_datadir.rs starts nodes on
    // real ones).
    let etcd_dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(etcd_dir.path().join("member").join("snap")).expect("mkdir");
    std::fs::write(etcd_dir.path().join("member").join("snap").join("db"), b"bolt").expect("write");
    let before = listing(etcd_dir.path());
    let (code, err) = node(&[&format!("--data-dir={}", etcd_dir.path().display()), &port, &advertise], &[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("member/snap/db: at offset 16") && err.contains("etcd's files were left as they are"),
        "{err}"
    );
    assert_eq!(listing(etcd_dir.path()), before);

    // A member/ dir written by neither is not touched.
    let foreign = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(foreign.path().join("member").join("other")).expect("mkdir");
    let before = listing(foreign.path());
    let (code, err) = node(&[&format!("--data-dir={}", foreign.path().display()), &port, &advertise], &[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("written neither by etcdeck") && err.contains("nor by etcd"), "{err}");
    assert_eq!(listing(foreign.path()), before);
}

#[test]
fn systemd_hears_ready_once_clients_are_served() {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket_path = dir.path().join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).expect("bind notify socket");
    socket.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    let port = free_port();
    let mut child = Command::new(etcdeck_bin())
        .args([
            "node",
            &format!("--data-dir={}", dir.path().join("d").display()),
            &format!("--listen-client-urls=http://127.0.0.1:{port}"),
            &format!("--advertise-client-urls=http://127.0.0.1:{port}"),
            "--listen-peer-urls=http://127.0.0.1:0",
        ])
        .env("NOTIFY_SOCKET", &socket_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start node");
    let mut buf = [0u8; 64];
    let got = socket.recv(&mut buf);
    let health = http_get(&format!("127.0.0.1:{port}"), "/health");
    let _ = child.kill();
    let _ = child.wait();
    let n = got.expect("a notification");
    assert_eq!(&buf[..n], b"READY=1");
    assert!(
        health.as_ref().is_some_and(|h| h.contains("\"true\"")),
        "serving when READY=1 arrives: {health:?}"
    );
}

async fn client(url: &str) -> Client {
    within(Client::connect([url], None)).await.expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_data_revisions_history_leases_and_identity() {
    let mut n = EtcdeckNode::start("keeper", &[]);
    let mut c = client(&n.client_url).await;
    within(c.put("k", "1", None)).await.expect("put");
    within(c.put("k", "2", None)).await.expect("put");
    let lease = within(c.lease_grant(600, None)).await.expect("grant").id();
    within(c.put("leased", "v", Some(PutOptions::new().with_lease(lease)))).await.expect("put");
    let status = within(c.status()).await.expect("status");
    let ids = status.header().map(|h| (h.cluster_id(), h.member_id())).expect("header");
    let hash = within(c.hash_kv(0)).await.expect("hashkv").hash();
    drop(c);
    assert_eq!(n.terminate(), Some(0));
    n.restart();

    let mut c = client(&n.client_url).await;
    let got = within(c.get("k", None)).await.expect("get");
    assert_eq!(got.kvs()[0].value(), b"2");
    assert_eq!(
        (got.kvs()[0].create_revision(), got.kvs()[0].mod_revision(), got.kvs()[0].version()),
        (2, 3, 2)
    );
    assert_eq!(
        within(c.get("k", Some(GetOptions::new().with_revision(2)))).await.expect("get").kvs()[0].value(),
        b"1"
    );
    let ttl = within(c.lease_time_to_live(lease, None)).await.expect("ttl");
    assert_eq!(ttl.granted_ttl(), 600, "the lease survived");
    let status = within(c.status()).await.expect("status");
    assert_eq!(status.header().map(|h| (h.cluster_id(), h.member_id())), Some(ids), "same identity");
    assert_eq!(within(c.hash_kv(0)).await.expect("hashkv").hash(), hash, "same history");
    let put = within(c.put("k", "3", None)).await.expect("put");
    assert_eq!(put.header().map(|h| h.revision()), Some(5), "revisions go on from where they were");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_kill_9_every_acknowledged_put_is_there() {
    let mut n = EtcdeckNode::start("crash", &[]);
    let url = n.client_url.clone();
    // Crash in the middle of the writes.
    let acked = crate::node_damage::acked_puts(vec![url], "crash/", || n.kill()).await;
    n.restart();
    let mut c = client(&n.client_url).await;
    let stored =
        within(c.get("crash/", Some(GetOptions::new().with_prefix().with_keys_only()))).await.expect("get");
    let stored: std::collections::BTreeSet<String> =
        stored.kvs().iter().map(|kv| kv.key_str().unwrap_or("").to_string()).collect();
    let missing: Vec<&String> = acked.iter().filter(|k| !stored.contains(*k)).collect();
    eprintln!("kill -9 after {} acknowledged puts; {} missing after restart", acked.len(), missing.len());
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged puts lost, e.g. {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(5)]
    );
}

#[test]
fn etcdeck_status_reads_a_node_as_it_reads_etcd() {
    let n = EtcdeckNode::start("seen", &[]);
    let out = crate::support::etcdeck()
        .args(["status", "--endpoints", &n.client_url])
        .output()
        .expect("run etcdeck status");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("leader seen (8e9e05c52164694d) · 1/1 members up · quorum ok"), "{stdout}");
}

fn contents(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    listing(dir)
        .into_iter()
        .filter(|p| Path::new(p).is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap_or_default();
            (p, bytes)
        })
        .collect()
}

/// A node that took 20 puts and was stopped.
async fn stopped_with_keys(name: &str) -> EtcdeckNode {
    let mut n = EtcdeckNode::start(name, &[]);
    let mut c = client(&n.client_url).await;
    for i in 0..20 {
        within(c.put(format!("k{i}"), "v", None)).await.expect("put");
    }
    drop(c);
    assert_eq!(n.terminate(), Some(0));
    n
}

/// Starts member `name` once more on `n`'s data dir, on a fresh client port: (exit code, stderr).
fn start_again(n: &EtcdeckNode, name: &str) -> (Option<i32>, String) {
    node(
        &[
            &format!("--name={name}"),
            &format!("--data-dir={}", n.data_dir.display()),
            &format!("--listen-client-urls=http://127.0.0.1:{}", free_port()),
            "--advertise-client-urls=http://127.0.0.1:2379",
        ],
        &[],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_raft_log_is_reported_and_nothing_is_changed() {
    let n = stopped_with_keys("damaged").await;
    let wal_dir = n.data_dir.join("member").join("wal");
    let segment = listing(&wal_dir).into_iter().find(|p| p.ends_with(".wal")).expect("a WAL segment");
    let mut bytes = std::fs::read(&segment).expect("read");
    assert!(bytes.len() > 400, "{} bytes", bytes.len());
    for b in &mut bytes[200..210] {
        *b ^= 0xff;
    }
    std::fs::write(&segment, &bytes).expect("damage");
    let before = contents(&n.data_dir);
    let (code, err) = start_again(&n, "damaged");
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("corrupt record") && err.contains("crc mismatch"), "{err}");
    assert!(contents(&n.data_dir) == before, "the data dir was changed");
}

/// A store that lost a record (as sled can after a write failed on a full disk) no longer adds up
/// to the tally written with it: the member refuses to start, naming the store and what it found,
/// instead of replaying the log past the hole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_lost_a_record_is_refused_with_its_path_and_the_reason() {
    let n = stopped_with_keys("holes").await;
    let db = n.data_dir.join("member").join("snap").join("db");
    {
        let sled = sled::open(&db).expect("open the store's sled");
        let tree = sled.open_tree("mvcc").expect("tree");
        let record = tree.scan_prefix(b"k").nth(10).expect("a record").expect("read").0;
        tree.remove(record).expect("remove");
        sled.flush().expect("flush");
    }
    let (code, err) = start_again(&n, "holes");
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains(&db.display().to_string()) && err.contains("lost records"), "{err}");
    assert!(err.contains("writes this member acknowledged may be missing"), "{err}");
    assert!(err.contains("etcdctl member remove"), "{err}");
}

#[test]
fn a_start_on_a_busy_port_writes_nothing_to_the_data_dir() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let busy_url = format!("http://{}", busy.local_addr().expect("addr"));
    let client = format!("http://127.0.0.1:{}", free_port());
    let run = |data: &Path, client_url: &str, peer_url: &str| {
        node(
            &[
                "--name=busy",
                &format!("--data-dir={}", data.display()),
                &format!("--listen-client-urls={client_url}"),
                &format!("--advertise-client-urls={client_url}"),
                &format!("--listen-peer-urls={peer_url}"),
            ],
            &[],
        )
    };
    let root = tempfile::tempdir().expect("temp dir");
    let peer = "http://127.0.0.1:0";

    // No data dir yet, an empty one, and one a member ran on: the client port, then the peer port, busy.
    let absent = root.path().join("absent");
    let empty = root.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    let mut ran = EtcdeckNode::start_in("busy", &root.path().join("ran"), &[]);
    assert_eq!(ran.terminate(), Some(0));
    let ran = ran.data_dir.clone();
    for (client_url, peer_url) in [(busy_url.as_str(), peer), (client.as_str(), busy_url.as_str())] {
        for dir in [&absent, &empty, &ran] {
            let before = contents(dir);
            let listed = listing(dir);
            let (code, err) = run(dir, client_url, peer_url);
            assert_eq!(code, Some(1), "{err}");
            assert!(
                err.contains(&format!("cannot listen on {busy_url}"))
                    && err.contains("Address already in use"),
                "{err}"
            );
            assert_eq!(err.lines().count(), 1, "one line: {err}");
            assert!(
                contents(dir) == before && listing(dir) == listed,
                "{} was changed: {err}",
                dir.display()
            );
        }
        assert!(!absent.exists(), "the data dir was created");
    }
    drop(busy);
}
